"""The dashboard's server at 100, 1,000 and 10,000 synthetic cohorts beside the shipped data.

For each data set (the shipped extraction, and `python -m evidence.synthetic` sheets built with
`python -m evidence.extraction.build`), a fresh Python process runs the app under Streamlit's
AppTest (the server's script runs and caches, no browser), opens the Treatment page and makes
the same filter changes on each: the CAR-T product filter set to combinations never chosen
before, so every change is a new slice (cache misses all the way down). A change is timed from
setting the widget to the end of the rerun it triggers (the page fragment, as in the browser);
between changes an untimed full rerun brings the sidebar back into AppTest's tree. Then further
sessions open the page with other filters in the same process, as visitors of one server do,
and the process's resident memory (VmRSS) is read after each.

The ratio the issue asks for, a change at 10,000 cohorts against the same change on the shipped
data, is taken from the medians of this one run. The browser's share (drawing the charts) is
not in these figures; bench_app.py measures it on the shipped data.

Usage:
    .venv/bin/python bench/bench_scale_app.py [--sizes 100,1000,10000] [--changes 8]
                                              [--sessions 3]

Writes artifacts/bench/scale_app.json; `python bench/render.py` puts it into docs/performance.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness import provenance  # noqa: E402

RESULTS = ROOT / "artifacts" / "bench" / "scale_app.json"  # scale_app-METHOD.json with --method
WORK = ROOT / "artifacts" / "bench" / "scale"
# Product filters never chosen before in a run: every change is a new slice.
CHANGES = (
    ("axi-cel",), ("tisa-cel",), ("axi-cel", "tisa-cel"), ("liso-cel",), ("axi-cel", "liso-cel"),
    ("tisa-cel", "liso-cel"), ("brexu-cel",), ("axi-cel", "brexu-cel"), ("tisa-cel", "brexu-cel"),
    ("liso-cel", "brexu-cel"), ("axi-cel", "tisa-cel", "liso-cel"),
    ("axi-cel", "tisa-cel", "brexu-cel"),
)  # fmt: skip
# Filters of the further sessions (each a slice no earlier session chose).
SESSION_FILTERS = (("dose_band", ["le200"]), ("dose_band", ["gt200"]), ("route", ["SC"]),
                   ("route", ["IV"]), ("grading", ["ASTCT"]), ("grading", ["CTCAE"]))  # fmt: skip


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(database: str, changes: int, sessions: int, method: str) -> dict[str, Any]:
    """Run in a fresh process: open the Treatment page, time the changes, add sessions."""
    os.environ["ANAKINRA_DB"] = database
    sys.path.insert(0, str(ROOT))
    from streamlit.testing.v1 import AppTest

    def opened() -> tuple[AppTest, float]:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        start = time.perf_counter()
        at.run()
        at.switch_page("pages/treatment.py")
        at.run()
        if method:
            at.selectbox(key="view_method").set_value(method).run()
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at, time.perf_counter() - start

    before = rss_mb()
    at, open_s = opened()
    after_open = rss_mb()
    times = []
    for products in CHANGES[:changes]:
        start = time.perf_counter()
        at.multiselect(key="filter_product").set_value(list(products)).run()
        times.append(time.perf_counter() - start)
        assert not at.exception, [e.value for e in at.exception]
        at.run()  # untimed: the whole script, so the sidebar is in the tree for the next change
    after_changes = rss_mb()
    memory = [after_changes]
    others = []
    for key, value in SESSION_FILTERS[:sessions]:
        other, _ = opened()
        other.multiselect(key=f"filter_{key}").set_value(value).run()
        others.append(other)  # kept open, as a visitor's session is
        memory.append(rss_mb())
    per_session = [b - a for a, b in itertools.pairwise(memory)]
    return {
        "open_s": open_s,
        "changes_s": times,
        "median_change_ms": 1000 * statistics.median(times),
        "rss_start_mb": before,
        "rss_after_open_mb": after_open,
        "rss_after_changes_mb": after_changes,
        "rss_after_sessions_mb": memory,
        "rss_per_further_session_mb": statistics.mean(per_session) if per_session else None,
    }


def database_for(cohorts: int, seed: int) -> Path:
    """Sheets from evidence.synthetic built into a database (kept under artifacts/bench/scale)."""
    sheets, target = WORK / f"syn{cohorts}", WORK / f"syn{cohorts}.duckdb"
    if not target.exists():
        python = sys.executable
        gen = [python, "-m", "evidence.synthetic", "--cohorts", str(cohorts), "--out", str(sheets),
               "--seed", str(seed)]  # fmt: skip
        subprocess.run(gen, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        build = [python, "-m", "evidence.extraction.build", "--from", str(sheets), "--out",
                 str(target)]  # fmt: skip
        subprocess.run(build, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return target


def shipped_database() -> Path:
    target = ROOT / "data" / "anakinra.duckdb"
    subprocess.run(
        [sys.executable, "-m", "evidence.extraction.build", "--if-stale"], cwd=ROOT, check=True
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--changes", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument(
        "--method", default="", help="a pooling method code (reml_hksj, dl, ...); default GLMM"
    )
    parser.add_argument(
        "--child", nargs=4, metavar=("DB", "CHANGES", "SESSIONS", "METHOD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        database, changes, sessions, method = args.child
        print(json.dumps(child(database, int(changes), int(sessions), method)))
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    sets = {"shipped": shipped_database()}
    for size in (int(s) for s in args.sizes.split(",")):
        sets[f"{size:,} cohorts"] = database_for(size, args.seed)
    command = shlex.join([".venv/bin/python", "bench/bench_scale_app.py", *sys.argv[1:]])
    print("command:", command)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    rows = {}
    for name, database in sets.items():
        run = subprocess.run(
            [sys.executable, __file__, "--child", str(database), str(args.changes),
             str(args.sessions), args.method],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600,
        )  # fmt: skip
        lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
        if run.returncode != 0 or not lines:
            print(f"{name}: failed\n{run.stderr[-2000:]}", file=sys.stderr)
            return 1
        rows[name] = json.loads(lines[-1])
        r = rows[name]
        print(
            f"{name:>16}: open {r['open_s']:.2f} s, change median {r['median_change_ms']:.0f} ms "
            f"(max {1000 * max(r['changes_s']):.0f}), RSS after open {r['rss_after_open_mb']:.0f} "
            f"MB, after changes {r['rss_after_changes_mb']:.0f} MB, "
            f"+{r['rss_per_further_session_mb']:.1f} MB per further session"
        )
        sys.stdout.flush()
    base = rows["shipped"]["median_change_ms"]
    ratios = {name: r["median_change_ms"] / base for name, r in rows.items()}
    for name, ratio in ratios.items():
        print(f"  change time / shipped data: {name}: {ratio:.2f}")
    figures = {
        **provenance.run_record(command, load_at_start),
        "rows": rows,
        "ratio_to_shipped": ratios,
        "method": args.method or "glmm (the default)",
        "target": "a change at 10,000 cohorts within 2x the same change on the shipped data",
    }
    out = RESULTS.with_name(f"scale_app-{args.method}.json") if args.method else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
