"""Benchmark the dashboard in a real browser: cold start and filter-change latency.

The requirement: a filter change redraws the page's estimates and charts within 250 ms (95th
percentile) on the shipped data, and the first page appears within 3 s of a cold start. Streamlit
has a floor of its own (script rerun, websocket deltas, React and Vega redraw), so every figure
is measured side by side, in the same run and the same browser, against two floors drawn from
precomputed data: bench/floor_app.py, a minimal app with the Treatment page's first panel (its
chart spec too), and bench/floor_page_app.py, every element the Treatment page draws on a change
in the same structure (sidebar outside a keyed fragment, navigation and page inside, the URL
written by the callback). The ratio dashboard / whole-page floor is what the dashboard's own work
adds to Streamlit's cost for those elements.

What is measured
- Cold start (N runs per app): a fresh `streamlit run` process and a fresh browser context at `/`.
  Times from just before the process is spawned to (a) /_stcore/health answering ok, (b) the
  page's h1 visible, (c) its numbers visible (Overview: the first st.metric value; floor: the
  pooled line); also to the first websocket message (frontend loaded, session started).
  Chromium itself is launched once, before, and is not counted. Python's files are in the OS
  page cache after the first run, so this is a process cold start, not a disk one.
- Cold start, returning browser (same N): the same, but the browser has opened the app once
  before (a persistent profile, the server on the same port each time), as on the meeting-room
  machine of a panel that used the dashboard last week: Streamlit's JavaScript and fonts are
  served `immutable` for a year, so they come from the browser's cache. The server is as cold.
- Filter change (M changes per app, after two untimed warm-up changes): on /treatment (floor:
  /), the sidebar "Exclude studies (sensitivity)" toggles one study in and out, so every change
  really changes the pooled number. The dropdown is opened before the clock starts; the clock
  starts at the `pointerdown` event of the click that commits the change (the option, or the
  tag's remove button), read in the page as `event.timeStamp` (same clock as
  `performance.now()`). A MutationObserver in the page stamps `performance.now()` when the pooled
  text first differs from its value before the click and at every DOM change inside any Vega
  chart (the charts render to SVG). The change counts as redrawn when the text has changed, a
  chart has changed, Streamlit's running indicator (stStatusWidget) is absent and nothing in the
  charts changed for QUIET_MS; its time is the later of the text change and the last chart change
  (DOM commit; the paint follows within a frame). Python polls for that state with
  page.wait_for_function but the figures come from the in-page timestamps, not from the polling.
  A wrapped WebSocket stamps every server message, which splits the latency into "server"
  (click to the last message before the redraw ends) and "browser" (the rest).
- Server work for one exclusion to a slice not seen before, in this process without Streamlit:
  the Treatment page's data calls (cohort slice, four outcomes, subgroups) and its two charts as
  sent on a cache miss (rows as Arrow into layouts built once per process), beside the same two
  charts built whole by Altair. The browser changes above toggle between two slices the caches
  already hold; a change to a new slice adds this work.
- The same page's data calls through the dashboard's cached data layer (evidence.ui.data with
  Streamlit's caches, in-process): 35 exclusion sets never seen, then the same sets again. This
  is what caching adds to the work above (pickling, hashing) and what a cached slice still costs.

Usage:
    .venv/bin/python bench/bench_app.py [--quick] [--cold-runs 5] [--changes 30]

Only loopback addresses are used; every loop is bounded in count and by a deadline.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser_support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    streamlit_process,
)

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
FLOOR = Target("floor", "bench/floor_app.py", "/", '[data-testid="stMain"] strong', "/")
# The Treatment page's elements, all of them, from precomputed data.
FLOOR_PAGE = Target(
    "floor, whole page", "bench/floor_page_app.py", "/", '[data-testid="stMain"] strong', "/"
)


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
    """Build data/anakinra.duckdb from the shipped sheets if it is missing or stale."""
    from evidence import build

    rebuilt = build.ensure_built()
    return "rebuilt" if rebuilt else "up to date"


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


def cache_miss_work(repeats: int) -> dict[str, float]:
    """Milliseconds (median) of the Treatment page's server work for one exclusion to a slice not
    seen before, without Streamlit: the data calls, then the two charts as the dashboard sends
    them on a cache miss (rows as Arrow into a layout built once per process), and for comparison
    the two charts built whole by Altair (what a cache miss cost before layouts were reused)."""
    import warnings

    warnings.filterwarnings("ignore")
    from evidence import analysis, build, charts, db
    from evidence.filters import Filters
    from evidence.ui.vega import vega_spec

    con = db.connect_read_only(build.DATABASE)
    every = analysis.every_poolable_row(con)  # once per data version in the dashboard
    filters = Filters(exclude=(STUDY,)).within("treatment")
    assert filters is not None
    names = (
        "cohort slice",
        "4 outcomes (their rows, 4 pools)",
        "subgroups",
        "both charts' rows as sent",
        "both charts built whole by Altair",
    )
    timings: dict[str, list[float]] = {name: [] for name in names}
    layouts: dict[str, dict] = {}
    for _ in range(repeats):
        marks = [time.perf_counter()]
        cohorts = analysis.cohort_slice(con, filters)
        marks.append(time.perf_counter())
        poolable = analysis.in_slice(every, cohorts)  # as the dashboard: rows read once
        results = analysis.pool_outcomes(poolable, analysis.TREATMENT_OUTCOMES, filters)
        marks.append(time.perf_counter())
        subgroups = analysis.analyse_subgroups(results[0], "product", filters)
        marks.append(time.perf_counter())
        title = results[0].label
        if not layouts:  # once per process in the dashboard (st.cache_resource)
            layouts["forest"] = charts.forest_layout(title).to_dict(validate=False)
            layouts["subgroup"] = charts.subgroup_layout(title).to_dict(validate=False)
        marks.append(time.perf_counter())
        vega_spec(layouts["forest"], charts.forest_data(results[0].forest_records()))
        if subgroups is not None:
            rows = charts.subgroup_data(analysis.subgroup_records(subgroups))
            vega_spec(layouts["subgroup"], rows)
        marks.append(time.perf_counter())
        charts.forest_plot(results[0].forest_frame(), title).to_dict()
        if subgroups is not None:
            charts.subgroup_plot(analysis.subgroup_frame(subgroups), title).to_dict()
        marks.append(time.perf_counter())
        spans = list(itertools.pairwise(marks))
        del spans[3]  # the once-per-process layout build
        for name, (start, end) in zip(names, spans, strict=True):
            timings[name].append(1000 * (end - start))
    con.close()
    return {name: statistics.median(values) for name, values in timings.items()}


def data_layer_work() -> dict[str, float]:
    """Milliseconds (median) of the Treatment page's data calls through the dashboard's cached
    data layer (evidence.ui.data, Streamlit's caches in bare mode, no browser): the cohort
    counts, the four outcomes, the forest and subgroup specs, for 35 exclusion sets never seen
    before and then the same sets again (what a change to a cached slice costs the data layer)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # bare mode warns that there is no script run context
    from evidence import analysis
    from evidence.filters import Filters
    from evidence.ui import data

    active = data.active()

    def page(filters: Filters) -> None:
        data.summary(active, active.key, filters)
        results = data.outcomes(active, active.key, filters, analysis.TREATMENT_OUTCOMES)
        for result in results:
            if result.result is not None:
                data.forest_spec(result, None)
        if data.subgroups(results[0], filters, "product") is not None:
            data.subgroup_spec(results[0], filters, "product")

    states = [
        (salt, *studies)
        for salt in SALT_STUDIES
        for size in (0, 1, 2)
        for studies in itertools.combinations(PAGE_STUDIES, size)
    ]
    timings: dict[str, list[float]] = {"new slice": [], "cached slice": []}
    page(Filters().within("treatment"))  # layouts and imports, once per process
    for kind in timings:
        for excluded in states:
            filters = Filters(exclude=excluded).within("treatment")
            start = time.perf_counter()
            page(filters)
            timings[kind].append(1000 * (time.perf_counter() - start))
    return {kind: statistics.median(values) for kind, values in timings.items()}


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}"


def _summary(values: list[float], scale: float = 1.0) -> str:
    scaled = [v * scale for v in values]
    return f"{min(scaled):.0f} / {statistics.median(scaled):.0f} / {max(scaled):.0f}"


def _machine(browser_version: str) -> list[str]:
    import streamlit

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.platform()}",
        f"- Load average at the start: {load}",
        f"- Python {platform.python_version()}, Streamlit {streamlit.__version__}, "
        f"Chromium {browser_version} (headless)",
    ]


def report(
    command: str,
    machine: list[str],
    cold: dict[str, list[dict[str, float]]],
    changes: dict[str, list[dict[str, float]]],
    work: dict[str, float],
    layer: dict[str, float],
) -> str:
    """The markdown block for the README."""
    lines = [f"Command: `{command}`", "", *machine, ""]
    lines += [
        "Cold start (ms from spawning `streamlit run` to ...; min / median / max over "
        f"{len(cold['dashboard'])} runs):",
        "",
        "| App | /_stcore/health ok | first websocket message | first page h1 visible "
        "| numbers visible |",
        "|---|---|---|---|---|",
    ]
    for name, runs in cold.items():
        cells = [
            _summary([r[key] for r in runs], 1000)
            for key in ("health", "connected", "title", "numbers")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Filter change on the sidebar's 'Exclude studies (sensitivity)' (ms from the committing "
        "click to pooled text and charts redrawn; in-page performance.now(); p95 nearest rank; "
        "server = click to the last websocket message before the redraw ended, browser = the "
        f"rest). Plain rows toggle between two slices already cached; '{NEW}' rows go to a "
        "slice not seen before every time:",
        "",
        "| App | changes | median | p95 | max | server (median) | browser (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in changes.items():
        if not runs:
            continue
        latency = [r["latency"] for r in runs]
        server_part = [r["lastMessage"] for r in runs if r["lastMessage"] is not None]
        browser_part = [
            r["latency"] - r["lastMessage"] for r in runs if r["lastMessage"] is not None
        ]
        lines.append(
            f"| {name} | {len(runs)} | {statistics.median(latency):.0f} | "
            f"{percentile(latency, 95):.0f} | {max(latency):.0f} | "
            f"{_ms(server_part) if server_part else '-'} | "
            f"{_ms(browser_part) if browser_part else '-'} |"
        )
    pairs = (
        ("dashboard", "floor"),
        ("dashboard", FLOOR_PAGE.name),
        (f"dashboard{NEW}", f"floor{NEW}"),
    )
    for app_name, floor_name in pairs:
        app = [r["latency"] for r in changes.get(app_name, [])]
        floor = [r["latency"] for r in changes.get(floor_name, [])]
        if app and floor:
            lines.append(
                f"| ratio {app_name} / {floor_name} | | "
                f"{statistics.median(app) / statistics.median(floor):.2f} | "
                f"{percentile(app, 95) / percentile(floor, 95):.2f} | | | |"
            )
    lines += [
        "",
        "Treatment page server work for one exclusion to a slice not seen before, in-process "
        "without Streamlit (ms, median; a change to a new slice adds the first four to the "
        "figures above): " + ", ".join(f"{name} {value:.1f}" for name, value in work.items()),
        "",
        "The same page's data calls through the dashboard's cached data layer (evidence.ui.data, "
        "in-process, no browser; ms, median of 35 exclusion sets): "
        + ", ".join(f"{name} {value:.1f}" for name, value in layer.items()),
        "",
        "Targets: filter change p95 ≤ 250 ms; first page ≤ 3 s from a cold start.",
    ]
    return "\n".join(lines)


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
    parser.add_argument("--budget", type=float, default=600, help="seconds for the whole run")
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

    targets = (APP, FLOOR)
    cold: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
    changes: dict[str, list[dict[str, float]]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            machine = _machine(browser.version)
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
                            f"  deadline: stopped returning cold starts after {run} runs",
                            file=sys.stderr,
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
            for target in (*targets, FLOOR_PAGE):
                changes[target.name] = _timed(
                    f"{change_count} changes {target.name}",
                    lambda t=target: filter_changes(browser, t, change_count, deadline),
                )
            for target in targets:
                changes[f"{target.name}{NEW}"] = _timed(
                    f"{change_count} changes to new slices {target.name}",
                    lambda t=target: fresh_filter_changes(browser, t, change_count, deadline),
                )
        finally:
            browser.close()
    work = cache_miss_work(repeats=5)
    layer = data_layer_work()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    machine.append(
        f"- Load average at the end: {load} (other work on the machine inflates both apps)"
    )
    print(report(command, machine, cold, changes, work, layer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
