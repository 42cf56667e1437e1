"""Benchmark the dashboard in a real browser against Streamlit's floor for the same page.

Cold starts (a new browser, and a returning one whose cache holds Streamlit's static files),
filter changes to a slice the caches hold and to slices never seen, and the Treatment page's
data calls in-process. Each browser figure is taken in the same run for the dashboard and for
bench/floor_page_app.py, which draws every element of the Treatment page from precomputed data:
the ratio of the two is what the dashboard's own work adds. How each figure is taken is in
bench/README.md.

Usage:
    .venv/bin/python bench/bench_app.py [--quick] [--cold-runs 5] [--changes 30]

Writes artifacts/bench/app.json; `python bench/render.py` puts it into docs/performance.md.
Only loopback addresses are used; every loop is bounded in count and by a deadline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.server import CHROMIUM, CHROMIUM_ARGS, free_port, streamlit_process  # noqa: E402

RESULTS = ROOT / "artifacts" / "bench" / "app.json"

STUDY = "Wehrli2022"  # in the Treatment page's response outcome: excluding it re-pools
# The three studies of that outcome (A, B, C), and studies without response counts whose
# exclusion changes the filters but not the numbers.
PAGE_STUDIES = ("LBCL2025", "Strati2020", "Wehrli2022")
SALT_STUDIES = ("Park2023", "Gazeau2023", "Strati2023", "FHCC_OHSU2025", "IPTW_ASH2025")
EXCLUDE_LABEL = "Exclude studies (sensitivity)"
NEW = ", new slices"
RETURNING = ", returning browser"
QUIET_MS = 300  # no chart change for this long (and no running indicator) = the redraw ended
CHANGE_TIMEOUT_MS = 15_000
PAGE_TIMEOUT_MS = 45_000


@dataclass(frozen=True)
class Target:
    """One app under test: how to start it and where its numbers are on the page."""

    name: str
    script: str
    cold_path: str  # the first page of a cold start
    numbers: str  # selector of the numbers on that first page
    filter_path: str  # the page whose filter change is timed
    env: tuple[tuple[str, str], ...] = ()


APP = Target("dashboard", "app.py", "/", '[data-testid="stMetricValue"]', "/treatment")
# The Treatment page's elements, all of them, from precomputed data.
FLOOR = Target("floor", "bench/floor_page_app.py", "/", '[data-testid="stMain"] strong', "/")


@dataclass
class Deadline:
    """The whole run's time budget; loops stop early (and say so) when it runs out."""

    seconds: float
    start: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


# Installed before any page script: stamps every websocket message with performance.now().
WS_HOOK = """
(() => {
  const Original = window.WebSocket;
  window.__wsTimes = [];
  window.WebSocket = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => {
        if (window.__wsTimes.length < 5000) window.__wsTimes.push(performance.now());
      });
    }
  };
})();
"""

# Installed once the page is up: a MutationObserver that stamps the pooled text change and every
# chart change after `arm()`, and a capturing pointerdown listener that starts the clock.
OBSERVER = """
(quietMs) => {
  const pooled = () => {
    const el = document.querySelector('[data-testid="stMain"] strong')
      || document.querySelector('strong');
    return el ? el.textContent : null;
  };
  const b = {t0: null, baseline: null, tText: null, tChart: null, armed: false, mutations: 0};
  b.arm = () => {
    b.t0 = null; b.tText = null; b.tChart = null; b.mutations = 0;
    b.baseline = pooled(); b.armed = true; window.__wsTimes.length = 0;
  };
  document.addEventListener('pointerdown', (e) => {
    if (b.armed && b.t0 === null) b.t0 = e.timeStamp;
  }, true);
  const observer = new MutationObserver((records) => {
    if (!b.armed || b.t0 === null) return;
    const now = performance.now();
    for (const r of records) {
      const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (node && node.closest('[data-testid="stVegaLiteChart"]')) {
        b.tChart = now; b.mutations += 1; break;
      }
    }
    if (b.tText === null && pooled() !== b.baseline) b.tText = now;
  });
  observer.observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
  b.settled = () => {
    if (b.t0 === null || b.tText === null || b.tChart === null) return false;
    if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
    return performance.now() - Math.max(b.tText, b.tChart) > quietMs;
  };
  b.result = () => {
    const done = Math.max(b.tText, b.tChart);
    const before = window.__wsTimes.filter((t) => t >= b.t0 && t <= done);
    b.armed = false;
    return {
      latency: done - b.t0,
      text: b.tText - b.t0,
      chart: b.tChart - b.t0,
      firstMessage: before.length ? before[0] - b.t0 : null,
      lastMessage: before.length ? before[before.length - 1] - b.t0 : null,
      messages: before.length,
      mutations: b.mutations,
    };
  };
  window.__bench = b;
}
"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100): with 30 values the 95th is the 29th smallest."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ensure_database() -> str:
    """Build data/anakinra.duckdb from the shipped sheets if it is missing or behind them; what
    was found, in words (a database built from a panel's file is kept and timed as it is)."""
    from evidence.extraction import build

    return build.ensure_built().message


def server(
    target: Target, port: int | None = None
) -> AbstractContextManager[tuple[str, float, float]]:
    """`streamlit run` for `target`; yields (url, spawn time, health time), perf_counter values."""
    return streamlit_process(target.script, dict(target.env), port=port, log_prefix="bench")


def _new_page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(WS_HOOK)
    return context.new_page()


@contextmanager
def _fresh_page(browser: Any) -> Iterator[Any]:
    """A page in a new browser context: nothing cached, as on a first visit."""
    page = _new_page(browser)
    try:
        yield page
    finally:
        page.context.close()


@contextmanager
def _returning_page(context: Any) -> Iterator[Any]:
    """A page in a persistent context that keeps its HTTP cache between visits."""
    page = context.new_page()
    try:
        yield page
    finally:
        page.close()


def _settle(page: Any) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=PAGE_TIMEOUT_MS,
    )
    page.wait_for_timeout(QUIET_MS)


def cold_start(
    target: Target,
    open_page: Callable[[], AbstractContextManager[Any]],
    port: int | None = None,
) -> dict[str, float]:
    """One cold start: seconds from spawning the server to health, h1 and numbers visible."""
    with server(target, port) as (base, spawned, healthy), open_page() as page:
        page.goto(f"{base}{target.cold_path}", wait_until="commit")
        page.wait_for_function("() => window.__wsTimes.length > 0", timeout=PAGE_TIMEOUT_MS)
        connected = time.perf_counter()
        page.wait_for_selector("h1", state="visible", timeout=PAGE_TIMEOUT_MS)
        title = time.perf_counter()
        page.wait_for_selector(target.numbers, state="visible", timeout=PAGE_TIMEOUT_MS)
        numbers = time.perf_counter()
    return {
        "health": healthy - spawned,
        "connected": connected - spawned,
        "title": title - spawned,
        "numbers": numbers - spawned,
    }


@contextmanager
def returning_browsers(playwright: Any, targets: tuple[Target, ...]) -> Iterator[dict[str, Any]]:
    """Per target, a persistent browser profile that has opened the app once (untimed) on a port
    kept for its later cold starts, so the origin and its cached files are the same."""
    with tempfile.TemporaryDirectory(prefix="bench-profiles-") as root:
        opened: dict[str, Any] = {}
        try:
            for index, target in enumerate(targets):
                context = playwright.chromium.launch_persistent_context(
                    str(Path(root) / str(index)),
                    executable_path=CHROMIUM,
                    args=CHROMIUM_ARGS,
                    viewport={"width": 1280, "height": 800},
                )
                context.add_init_script(WS_HOOK)
                opened[target.name] = (context, free_port())
                cold_start(target, lambda c=context: _returning_page(c), opened[target.name][1])
            yield opened
        finally:
            for context, _ in opened.values():
                context.close()


def _open_dropdown(page: Any, study: str = STUDY) -> None:
    """Open the exclusion multiselect until the option is listed (a first click can be lost)."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=EXCLUDE_LABEL)
    option = page.get_by_role("option", name=study, exact=True)
    for _ in range(5):
        box.locator("input").click()
        page.keyboard.press("Control+A")
        page.keyboard.type(study)  # the list is virtualised: only matching options are drawn
        try:
            option.wait_for(state="visible", timeout=1_000)
            return
        except Exception:  # Playwright's TimeoutError: try another click
            continue
    raise RuntimeError("the exclusion dropdown did not open")


def _one_change(page: Any, exclude: bool, study: str = STUDY) -> dict[str, float]:
    """Commit one change (exclude or include `study` again) and return its in-page timings."""
    if exclude:
        _open_dropdown(page, study)
        page.evaluate("() => window.__bench.arm()")
        page.get_by_role("option", name=study, exact=True).click()
    else:
        page.evaluate("() => window.__bench.arm()")
        page.locator(f'button[aria-label="Remove {study}"]').click()
    page.wait_for_function("() => window.__bench.settled()", polling=50, timeout=CHANGE_TIMEOUT_MS)
    result = page.evaluate("() => window.__bench.result()")
    if exclude:
        page.keyboard.press("Escape")
    _settle(page)
    return result


def _untimed_change(page: Any, exclude: bool, study: str) -> None:
    """A change that is not timed (it may leave the pooled text as it was): wait until the
    sidebar shows it and the run it started has finished."""
    tag = page.locator(f'button[aria-label="Remove {study}"]')
    if exclude:
        _open_dropdown(page, study)
        page.get_by_role("option", name=study, exact=True).click()
        page.keyboard.press("Escape")
        tag.wait_for(state="visible", timeout=CHANGE_TIMEOUT_MS)
    else:
        tag.click()
        tag.wait_for(state="detached", timeout=CHANGE_TIMEOUT_MS)
    _settle(page)


def filter_changes(
    browser: Any, target: Target, changes: int, deadline: Deadline
) -> list[dict[str, float]]:
    """Time `changes` alternating exclude/include changes on a warm server."""
    results: list[dict[str, float]] = []
    with _observed_page(browser, target) as page:
        for exclude in (True, False):  # warm-up: caches filled, both states seen once
            _one_change(page, exclude)
        for index in range(changes):
            if deadline.left() < 15:
                print(f"  deadline: stopped {target.name} after {index} changes")
                break
            results.append(_one_change(page, exclude=index % 2 == 0))
    return results


@contextmanager
def _observed_page(browser: Any, target: Target) -> Iterator[Any]:
    """A fresh server with the target's filter page open, drawn, and the in-page observer on."""
    with server(target) as (base, _, _), _fresh_page(browser) as page:
        page.goto(f"{base}{target.filter_path}")
        page.wait_for_selector('[data-testid="stVegaLiteChart"] svg', timeout=PAGE_TIMEOUT_MS)
        _settle(page)
        page.evaluate(OBSERVER, QUIET_MS)
        yield page


def fresh_filter_changes(
    browser: Any, target: Target, changes: int, deadline: Deadline
) -> list[dict[str, float]]:
    """Time changes that each lead to a slice no cache has seen in this server process.

    Each timed change toggles one of the three studies of the Treatment page's response outcome,
    walking the exclusion sets {} -> {C} -> {B, C} -> {B} -> {A, B} -> {A} -> {A, C} (each new,
    never all three excluded). Between rounds, untimed changes clear A, B and C and exclude one
    more study that has no response counts: the pooled numbers go back to the start but the
    filters, and so every cache key, are new. (The floor keys its precomputed states on the
    three studies only, so after its first round it answers from memory: its floor.)
    """
    a, b, c = PAGE_STUDIES
    walk = ((True, c), (True, b), (False, c), (True, a), (False, b), (True, c))
    results: list[dict[str, float]] = []
    with _observed_page(browser, target) as page:
        for salt in SALT_STUDIES:
            for exclude, study in walk:
                if len(results) >= changes or deadline.left() < 15:
                    return results
                results.append(_one_change(page, exclude, study))
            for study in (a, c):  # back to none of the three: untimed
                _untimed_change(page, exclude=False, study=study)
            _untimed_change(page, exclude=True, study=salt)
    return results


def data_layer_work() -> dict[str, float]:
    """Milliseconds (median) of the Treatment page's data calls through the dashboard's data
    facade (evidence.ui.data, Streamlit's caches in bare mode, no browser): the slice's counts,
    the four outcomes, the forest and subgroup specs, for 35 exclusion sets never seen before and
    then the same sets again (what a change to a cached slice costs the facade)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # bare mode warns that there is no script run context
    from evidence.filters import Slice
    from evidence.ui import data

    def page(rows: Slice | None) -> None:
        assert rows is not None
        evidence = data.slice(rows)
        evidence.caption()
        for pooled in evidence.outcomes("treatment"):
            if pooled.result is not None:
                evidence.forest_spec(pooled.outcome, None)
        if evidence.subgroups("icans_response", "product") is not None:
            evidence.subgroup_spec("icans_response", "product")

    states = [
        (salt, *studies)
        for salt in SALT_STUDIES
        for size in (0, 1, 2)
        for studies in itertools.combinations(PAGE_STUDIES, size)
    ]
    timings: dict[str, list[float]] = {"new slice": [], "cached slice": []}
    page(Slice().within("treatment"))  # layouts and imports, once per process
    for kind in timings:
        for excluded in states:
            rows = Slice(exclude=excluded).within("treatment")
            start = time.perf_counter()
            page(rows)
            timings[kind].append(1000 * (time.perf_counter() - start))
    return {kind: statistics.median(values) for kind, values in timings.items()}


def _commit(checkout: Path = ROOT) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def machine(browser_version: str) -> dict[str, Any]:
    import streamlit

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "streamlit": streamlit.__version__,
        "chromium": browser_version,
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def change_figures(runs: list[dict[str, float]]) -> dict[str, float | int | None]:
    """Median, p95 (nearest rank) and max of a series of changes, with the server's part (click
    to the last websocket message before the redraw ended) and the browser's (the rest)."""
    latency = [r["latency"] for r in runs]
    heard = [r for r in runs if r["lastMessage"] is not None]
    server_part = [r["lastMessage"] for r in heard]
    browser_part = [r["latency"] - r["lastMessage"] for r in heard]
    return {
        "changes": len(runs),
        "median_ms": round(statistics.median(latency), 1),
        "p95_ms": round(percentile(latency, 95), 1),
        "max_ms": round(max(latency), 1),
        "server_median_ms": round(statistics.median(server_part), 1) if heard else None,
        "browser_median_ms": round(statistics.median(browser_part), 1) if heard else None,
    }


def cold_figures(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per milestone, seconds from spawning the server: min, median and max over the runs."""
    return {
        key: {
            "min_s": round(min(r[key] for r in runs), 3),
            "median_s": round(statistics.median(r[key] for r in runs), 3),
            "max_s": round(max(r[key] for r in runs), 3),
        }
        for key in ("health", "connected", "title", "numbers")
    }


def results(
    command: str,
    about: dict[str, Any],
    cold: dict[str, list[dict[str, float]]],
    changes: dict[str, list[dict[str, float]]],
    layer: dict[str, float],
) -> dict[str, Any]:
    """Everything the run measured, with the ratios to the floor, as one JSON document."""
    figures: dict[str, Any] = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "machine": about,
        "cold_start": {name: cold_figures(runs) for name, runs in cold.items() if runs},
        "filter_change": {name: change_figures(runs) for name, runs in changes.items() if runs},
        "facade_ms": {name: round(value, 2) for name, value in layer.items()},
        "targets": {"filter_change_p95_ms": 250, "cold_start_title_s": 3.0},
    }
    ratios: dict[str, float] = {}
    for suffix in ("", NEW):
        app, floor = changes.get(f"dashboard{suffix}"), changes.get(f"floor{suffix}")
        if app and floor:
            a, f = ([r["latency"] for r in runs] for runs in (app, floor))
            ratios[f"filter change{suffix}, median"] = statistics.median(a) / statistics.median(f)
            ratios[f"filter change{suffix}, p95"] = percentile(a, 95) / percentile(f, 95)
    for suffix in ("", RETURNING):
        app, floor = cold.get(f"dashboard{suffix}"), cold.get(f"floor{suffix}")
        if app and floor:
            median = statistics.median
            ratios[f"cold start{suffix}, title"] = median(r["title"] for r in app) / median(
                r["title"] for r in floor
            )
    figures["ratio_to_floor"] = {name: round(value, 2) for name, value in ratios.items()}
    return figures


def _timed(label: str, action: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    value = action()
    print(f"  {label}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 cold starts and 8 changes")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--budget", type=float, default=900, help="seconds for the whole run")
    parser.add_argument(
        "--app",
        default=APP.script,
        help="the dashboard script to time (another checkout's app.py for an A/B against a base "
        "commit; that checkout must have built its database)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args(argv)
    cold_runs, change_count = (2, 8) if args.quick else (args.cold_runs, args.changes)
    cold_runs, change_count = max(1, min(cold_runs, 20)), max(2, min(change_count, 200))
    command = " ".join(
        [".venv/bin/python", "bench/bench_app.py", *(shlex.quote(a) for a in sys.argv[1:])]
    )
    deadline = Deadline(args.budget)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: install Debian's chromium", file=sys.stderr)
        return 2
    print(f"database: {ensure_database()}", file=sys.stderr)

    from playwright.sync_api import sync_playwright

    app = replace(APP, script=args.app)
    targets = (app, FLOOR)
    cold: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
    changes: dict[str, list[dict[str, float]]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            about = machine(browser.version)
            for run in range(cold_runs):  # interleaved, so drift in load hits both apps alike
                if deadline.left() < 240:
                    print(f"  deadline: stopped cold starts after {run} runs", file=sys.stderr)
                    break
                for target in targets:
                    cold[target.name].append(
                        _timed(
                            f"cold start {target.name} #{run + 1}",
                            lambda t=target: cold_start(t, lambda: _fresh_page(browser)),
                        )
                    )
            with returning_browsers(playwright, targets) as returning:
                for run in range(cold_runs):
                    if deadline.left() < 180:
                        print(
                            f"  deadline: stopped returning cold starts at {run}", file=sys.stderr
                        )
                        break
                    for target in targets:
                        context, port = returning[target.name]
                        cold.setdefault(f"{target.name}{RETURNING}", []).append(
                            _timed(
                                f"cold start {target.name}{RETURNING} #{run + 1}",
                                lambda t=target, c=context, p=port: cold_start(
                                    t, lambda: _returning_page(c), p
                                ),
                            )
                        )
            for target in targets:
                changes[target.name] = _timed(
                    f"{change_count} changes {target.name}",
                    lambda t=target: filter_changes(browser, t, change_count, deadline),
                )
                changes[f"{target.name}{NEW}"] = _timed(
                    f"{change_count} changes to new slices {target.name}",
                    lambda t=target: fresh_filter_changes(browser, t, change_count, deadline),
                )
        finally:
            browser.close()
    layer = data_layer_work() if args.app == APP.script else {}  # this checkout's facade only
    about["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    figures = results(command, about, cold, changes, layer)
    figures["app"] = args.app
    if args.app != APP.script:  # another checkout: record the commit of the app timed
        figures["app_commit"] = _commit(Path(args.app).resolve().parent)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures["ratio_to_floor"], indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
