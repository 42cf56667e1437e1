"""The Treatment page's filter change in Chromium: the shipped data beside 10,000 synthetic cohorts.

For each data set a fresh `streamlit run` (loopback) and a fresh browser page open /treatment;
then the sidebar's "CAR-T product" filter gets products added one at a time in three rounds
(a, a+b, a+b+c; "Reset filters" between rounds, untimed), nine changes that each make a slice
never seen. A change is timed in the page: from the key press that commits the choice to the
last change inside the page's main area, once Streamlit's running indicator is gone and nothing
has moved for 300 ms. This is the figure a reader waits for, the browser's drawing included;
bench_scale_app.py gives the server's share under AppTest.

Usage:
    .venv/bin/python bench/bench_scale_browser.py [--cohorts 10000]

Writes artifacts/bench/scale_browser.json; `python bench/render.py` puts it into
docs/performance.md. Needs Debian's Chromium (`make system-deps`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_scale_app import database_for, shipped_database  # noqa: E402

from harness import provenance  # noqa: E402
from harness.server import CHROMIUM, CHROMIUM_ARGS, streamlit_process  # noqa: E402

RESULTS = ROOT / "artifacts" / "bench" / "scale_browser.json"
ROUNDS = (
    ("axi-cel", "tisa-cel", "liso-cel"),
    ("tisa-cel", "liso-cel", "brexu-cel"),
    ("liso-cel", "brexu-cel", "axi-cel"),
)
QUIET_MS = 300
TIMEOUT_MS = 120_000
OBSERVER = """() => {
  window.__lastMutation = performance.now();
  const main = document.querySelector('[data-testid="stMain"]');
  new MutationObserver(() => { window.__lastMutation = performance.now(); })
    .observe(main, {subtree: true, childList: true, attributes: true, characterData: true});
}"""
SETTLED = f"""() => !document.querySelector('[data-testid="stStatusWidget"]')
  && performance.now() - window.__lastMutation > {QUIET_MS}"""


def _settle(page: Any) -> None:
    page.wait_for_function(SETTLED, polling=50, timeout=TIMEOUT_MS)


def _choose(page: Any, product: str) -> float:
    """Add `product` to the CAR-T product filter; milliseconds to the settled page."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="CAR-T product")
    box.locator("input").click()
    page.keyboard.type(product)
    page.get_by_role("option", name=product, exact=True).wait_for(state="visible")
    start = page.evaluate("() => performance.now()")
    page.keyboard.press("Enter")
    page.wait_for_timeout(50)
    _settle(page)
    end = page.evaluate("() => window.__lastMutation")
    page.keyboard.press("Escape")
    _settle(page)
    return end - start


def changes_on(database: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    env = {"ANAKINRA_DB": str(database)}
    times: list[float] = []
    server = streamlit_process("app.py", env, log_prefix="bench-scale")
    with server as (base, _, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        started = time.perf_counter()
        page.goto(f"{base}/treatment")
        page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=TIMEOUT_MS)
        page.evaluate(OBSERVER)
        _settle(page)
        opened = time.perf_counter() - started
        for index, round_ in enumerate(ROUNDS):
            if index:
                page.get_by_role("button", name="Reset filters").click()
                page.wait_for_timeout(50)
                _settle(page)
            times += [_choose(page, product) for product in round_]
        nodes = page.evaluate("() => document.getElementsByTagName('*').length")
        browser.close()
    return {
        "open_s": opened,
        "changes_ms": times,
        "median_ms": statistics.median(times),
        "max_ms": max(times),
        "dom_nodes": nodes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cohorts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    sets = {
        "shipped": shipped_database(),
        f"{args.cohorts:,} cohorts": database_for(args.cohorts, args.seed),
    }
    command = shlex.join([".venv/bin/python", "bench/bench_scale_browser.py", *sys.argv[1:]])
    print("command:", command)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    rows = {}
    for name, database in sets.items():
        rows[name] = changes_on(database)
        r = rows[name]
        print(f"{name:>16}: open {r['open_s']:.1f} s, change median {r['median_ms']:.0f} ms "
              f"(max {r['max_ms']:.0f}), {r['dom_nodes']:,} DOM nodes")  # fmt: skip
    base = rows["shipped"]["median_ms"]
    ratios = {name: r["median_ms"] / base for name, r in rows.items()}
    for name, ratio in ratios.items():
        print(f"  change time / shipped data: {name}: {ratio:.2f}")
    figures = {
        **provenance.run_record(command, load_at_start),
        "rows": rows,
        "ratio_to_shipped": ratios,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
