# Tasks for the anakinra-for-ICANS evidence dashboard. `make help` lists them.
PYTHON ?= python3
# glibc keeps 64 MB of free heap instead of returning it at every free: at 100,000 studies each of
# the engine's arrays is 800 KB, and without this every one is faulted back in page by page
# (docs/performance.md, "Memory allocator"). The Dockerfile sets the same.
export MALLOC_TOP_PAD_ ?= 67108864
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
REPLICAS ?= 2
HOST ?= 127.0.0.1
SYSTEM_PACKAGES := chromium nginx r-cran-metafor r-cran-lme4 r-cran-jsonlite

.DEFAULT_GOAL := help
.PHONY: help run serve test unit lint format data check-data system-deps reference bench load docker clean

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# axe-core, pinned in package.json/package-lock.json: the browser tests inject it into every page.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

data: $(VENV)/.runtime ## Build data/anakinra.duckdb if missing or behind data/extraction (one built --from elsewhere is kept)
	$(PY) -m evidence.extraction.build --if-stale

check-data: $(VENV)/.runtime ## Validate the extraction sheets without writing anything
	$(PY) -m evidence.extraction.build --check

run: data ## Start the dashboard on http://localhost:$(PORT) (make run PORT=8600 for another port)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

serve: data ## REPLICAS dashboard processes behind nginx on http://localhost:$(PORT) (make serve REPLICAS=3 PORT=8600); Ctrl-C stops all
	@bash scripts/system-deps.sh nginx
	$(PY) -m harness.cluster serve --replicas $(REPLICAS) --port $(PORT) --host $(HOST)

system-deps: ## Install Chromium, nginx and R metafor/lme4 from Debian when missing (as root), else say what to install
	@bash scripts/system-deps.sh $(SYSTEM_PACKAGES)

lint: $(VENV)/.dev ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(VENV)/.dev node_modules/.installed system-deps lint data ## Everything CI runs: lint, unit, metafor reference, AppTest and browser tests (with axe-core)
	$(PY) -m pytest

unit: $(VENV)/.dev ## The quick check: every test that needs neither root, Chromium nor R
	$(PY) -m pytest -m "not browser and not r_reference"

reference: $(VENV)/.runtime system-deps ## Regenerate the metafor golden files and the agreement figures shipped in data/
	Rscript tests/reference/iv_reference.R tests/reference/golden_iv.json
	Rscript tests/reference/glmm_reference.R tests/reference/golden_glmm.json
	$(PY) -m evidence.agreement

bench: $(VENV)/.dev system-deps data ## Run the benchmarks and render docs/performance.md from their figures
	$(PY) bench/bench_meta.py
	$(PY) bench/bench_app.py
	$(PY) bench/bench_upload.py
	$(PY) bench/bench_scale_app.py
	$(PY) bench/bench_scale_app.py --method reml_hksj
	$(PY) bench/bench_scale_browser.py
	$(PY) bench/render.py

load: $(VENV)/.dev system-deps data ## The load test: 1 process, 2 replicas behind nginx (20, 50, 100 sessions), a replica killed; docs/performance.md (about 20 minutes)
	$(PY) bench/load.py --replicas 1 --sessions 20,50,100 --duration 75 --out artifacts/bench/load-1.json
	$(PY) bench/load.py --replicas 2 --sessions 20,50,100 --duration 75 --out artifacts/bench/load-2.json
	$(PY) bench/load.py --replicas 2 --sessions 50 --duration 75 --kill-at 30 --out artifacts/bench/load-kill.json
	$(PY) bench/render.py

docker: ## Build the container image (needs a Docker engine)
	docker build -t anakinra-dashboard .

clean: ## Remove the virtual environment, the built database and test artifacts
	rm -rf $(VENV) node_modules data/anakinra.duckdb data/anakinra.duckdb.sha256 artifacts .pytest_cache .ruff_cache
