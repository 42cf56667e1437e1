"""Benchmark the meta-analysis engine against metafor on the same synthetic studies.

Times every method the dashboard offers (DL, REML, ML, PM; Freeman-Tukey; Hartung-Knapp; the
GLMM; leave-one-out; Mantel-Haenszel) on k = 15 studies (the project's sizes: n 5-60, events often
0) and on 100 / 1,000 / 10,000 / 100,000 synthetic studies (fixed seed); medians of several
repeats. metafor is timed inside R (bench/metafor_timing.R: the matching `rma`, `leave1out`,
`rma.mh` and `rma.glmm` call), each fit under a time cap in its own R process; Python calls run
in a forked child killed at the Python cap. The engine's pools do more than `rma` (a Q-profile CI
for tau², a prediction interval, per-study records). Prints a table with the ratio
metafor / Python and writes artifacts/bench/meta.json, which `python bench/render.py` puts into
docs/performance.md.

Usage:
    .venv/bin/python bench/bench_meta.py [--sizes 15,100,1000,10000,100000] [--cap 60]
                                         [--py-cap 60] [--no-r] [--only MH,GLMM]

Targets: every method under 20 ms at k = 15; the GLMM and MH at least as fast as rma.glmm and
rma.mh at every k; at k = 100,000 every inverse-variance method under 1 s; leave-one-out at
k = 10,000 under 2 s; the time of each method at 100,000 at most 15 times its time at 10,000.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evidence.meta import compare_groups, leave_one_out, pool_proportions  # noqa: E402
from harness import provenance  # noqa: E402

SEED = 20261124
R_SCRIPT = ROOT / "bench" / "metafor_timing.R"
RESULTS = ROOT / "artifacts" / "bench" / "meta.json"


def synthetic(k: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """k single-arm studies like the project's: n uniform on 5-60, logit p ~ N(-2.2, 0.8^2)."""
    rng = np.random.default_rng(seed + k)
    n = rng.integers(5, 61, size=k)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-2.2, 0.8, size=k)))
    return rng.binomial(n, p), n


def second_arm(k: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A comparison arm for Mantel-Haenszel: n uniform on 5-60, event risk 1.5 times the first
    arm's typical risk, so the pooled ratio is away from 1."""
    rng = np.random.default_rng(seed + 7 * k + 1)
    n = rng.integers(5, 61, size=k)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-1.8, 0.8, size=k)))
    return rng.binomial(n, p), n


@dataclass(frozen=True)
class Case:
    """One method: the engine's call and the metafor call it is timed against."""

    label: str
    python: Callable[[dict[str, np.ndarray]], object]
    metafor: str  # the `fun` of bench/metafor_timing.R
    metafor_call: str
    inverse_variance: bool = False


CASES = (
    Case("DL", lambda d: pool_proportions(d["x"], d["n"], method="DL"), "rma_dl",
         'rma(method = "DL")', True),
    Case("REML", lambda d: pool_proportions(d["x"], d["n"], method="REML"), "rma_reml",
         'rma(method = "REML")', True),
    Case("ML", lambda d: pool_proportions(d["x"], d["n"], method="ML"), "rma_ml",
         'rma(method = "ML")', True),
    Case("PM", lambda d: pool_proportions(d["x"], d["n"], method="PM"), "rma_pm",
         'rma(method = "PM")', True),
    Case("FT (REML)", lambda d: pool_proportions(d["x"], d["n"], method="REML",
                                                 transform="freeman-tukey"),
         "rma_ft", 'rma(measure = "PFT", method = "REML")', True),
    Case("HKSJ (REML)", lambda d: pool_proportions(d["x"], d["n"], method="REML", ci="hksj"),
         "rma_hksj", 'rma(method = "REML", test = "knha")', True),
    Case("leave-one-out (REML)", lambda d: leave_one_out(d["x"], d["n"], method="REML"),
         "leave1out", 'leave1out(rma(method = "REML"))'),
    Case("MH (OR)", lambda d: compare_groups(d["x"], d["n"], d["x2"], d["n2"], measure="OR",
                                             method="MH"),
         "rma_mh", 'rma.mh(measure = "OR")'),
    Case("GLMM", lambda d: pool_proportions(d["x"], d["n"], method="GLMM"), "rma_glmm",
         'rma.glmm(measure = "PLO")'),
)  # fmt: skip


def repeats_for(k: int) -> int:
    return {15: 51, 100: 21, 1000: 7}.get(k, 3)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _child(queue: mp.Queue, fn: Callable[[], object], repeats: int) -> None:
    queue.put(median_seconds(fn, repeats))


def time_python(fn: Callable[[], object], repeats: int, cap: float) -> float | None:
    """Median seconds of ``fn`` in a forked child killed after ``cap`` s (None if killed)."""
    queue: mp.Queue = mp.get_context("fork").Queue()
    child = mp.get_context("fork").Process(target=_child, args=(queue, fn, repeats))
    child.start()
    child.join(cap)
    if child.is_alive():
        child.terminate()
        child.join()
        return None
    return queue.get() if not queue.empty() else None


def time_r(data_path: Path, k: int, fun: str, cap: float) -> str:
    """Median seconds from bench/metafor_timing.R as text, or why there is none."""
    reps = {15: 11, 100: 5, 1000: 3}.get(k, 1)
    cmd = ["Rscript", str(R_SCRIPT), str(data_path), str(k), fun, str(reps), str(cap)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=cap + 30, check=False)
    except subprocess.TimeoutExpired:
        return f"did not finish in {cap:g} s"
    except FileNotFoundError:
        return "Rscript not found"
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return f"R failed: {run.stderr.strip()[-120:]}"
    out = json.loads(lines[-1])
    if out["status"] == "timeout":
        return f"did not finish in {cap:g} s"
    if out["status"] != "ok":
        return f"R error: {out['message'][:60]}"
    return f"{out['median_s']:.6f}"


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _lt(seconds: float | None, limit: float) -> bool:
    return seconds is not None and seconds < limit


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:10.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="15,100,1000,10000,100000")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds per metafor fit")
    parser.add_argument("--py-cap", type=float, default=60.0, help="seconds per Python timing")
    parser.add_argument("--no-r", action="store_true", help="skip the metafor timings")
    parser.add_argument("--only", default="", help="comma-separated labels (prefixes) of methods")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    cases = [c for c in CASES if not wanted or any(c.label.startswith(w) for w in wanted)]

    command = shlex.join([".venv/bin/python", "bench/bench_meta.py", *sys.argv[1:]])
    print("command:", command)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    table: list[dict[str, object]] = []
    print(f"seed {SEED}; n uniform 5-60; logit p ~ N(-2.2, 0.8^2); medians; cap {args.cap:g} s")
    print("load average at start (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    datasets: dict[int, dict[str, np.ndarray]] = {}
    for k in sizes:
        x, n = synthetic(k)
        x2, n2 = second_arm(k)
        datasets[k] = {"x": x, "n": n, "x2": x2, "n2": n2}
        print(f"  k={k}: {int(x.sum())} events in {int(n.sum())} patients, "
              f"{int((x == 0).sum())} studies with 0 events")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "bench_data.json"
        payload = {str(k): {key: v.tolist() for key, v in d.items()} for k, d in datasets.items()}
        data_path.write_text(json.dumps(payload))

        header = f"{'k':>7} {'method':<22} {'python ms':>12} {'metafor ms':>22} {'R/py':>9}"
        print("\n" + header + "\n" + "-" * len(header))
        for k, d in datasets.items():
            for case in cases:
                reps = repeats_for(k) if k <= 1000 else 3
                t = time_python(lambda c=case, d=d: c.python(d), reps, args.py_cap)
                r_text = "" if args.no_r else time_r(data_path, k, case.metafor, args.cap)
                r_sec = _float(r_text)
                r_col = fmt_ms(r_sec) if r_sec is not None else (r_text or "-")
                ratio = f"{r_sec / t:8.1f}x" if r_sec is not None and t else "-"
                py_col = fmt_ms(t) if t is not None else f"did not finish in {args.py_cap:g} s"
                print(f"{k:>7} {case.label:<22} {py_col:>12} {r_col:>22} {ratio:>9}")
                sys.stdout.flush()
                table.append(
                    {
                        "k": k,
                        "python": case.label,
                        "python_ms": None if t is None else round(1000 * t, 3),
                        "metafor": case.metafor_call,
                        "metafor_ms": None if r_sec is None else round(1000 * r_sec, 3),
                        "metafor_note": None if r_sec is not None else (r_text or None),
                        "python_cap_s": args.py_cap,
                        "inverse_variance": case.inverse_variance,
                    }
                )

    checks = targets(table, args.no_r)
    print("\nload average at end (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("targets:")
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        **provenance.run_record(command, load_at_start),
        "data": f"seed {SEED}; n uniform 5-60; logit p ~ N(-2.2, 0.8^2) (second arm for MH: "
        "logit p ~ N(-1.8, 0.8^2))",
        "metafor_cap_s": args.cap,
        "rows": table,
        "targets": [{"target": label, "met": ok} for label, ok in checks],
    }
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def targets(table: list[dict[str, object]], no_r: bool) -> list[tuple[str, bool]]:
    """The issue's targets, each with whether this run met it."""
    ms = {(r["k"], r["python"]): r["python_ms"] for r in table}
    checks: list[tuple[str, bool]] = []
    for row in table:
        k, label, t = row["k"], str(row["python"]), row["python_ms"]
        seconds = None if t is None else float(t) / 1000  # type: ignore[arg-type]
        if k == 15:
            checks.append((f"k=15 {label} < 20 ms", _lt(seconds, 0.02)))
        if k == 100_000 and row["inverse_variance"]:
            checks.append((f"k=100,000 {label} < 1 s", _lt(seconds, 1.0)))
        if k == 10_000 and label.startswith("leave-one-out"):
            checks.append((f"k=10,000 {label} < 2 s", _lt(seconds, 2.0)))
        if k == 100_000 and ms.get((10_000, label)) and t is not None:
            ratio = float(t) / float(ms[(10_000, label)])  # type: ignore[arg-type]
            checks.append(
                (f"{label}: time at 100,000 / at 10,000 = {ratio:.1f} <= 15", ratio <= 15)
            )
        if not no_r and (label.startswith("MH") or label == "GLMM"):
            r_sec, note = row["metafor_ms"], str(row["metafor_note"] or "")
            timed_out = r_sec is None and ("did not finish" in note or "error" in note.lower())
            faster = t is not None and (
                timed_out or (r_sec is not None and float(t) <= float(r_sec))
            )  # type: ignore[arg-type]
            checks.append((f"k={k:,} {label} at least as fast as metafor", faster))
    return checks


if __name__ == "__main__":
    main()
