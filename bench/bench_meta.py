"""Benchmark the meta-analysis engine against metafor on the same synthetic studies.

Times ``evidence.meta.glmm.fit_glmm_logit`` and every pooling method of ``pool_proportions``, on
k = 15 studies (the project's sizes: n 5-60, events often 0) and on 100 /
1,000 / 10,000 synthetic studies (fixed seed); medians of several repeats. metafor is timed
inside R (bench/metafor_timing.R: ``rma`` REML on escalc PLO and ``rma.glmm``), each fit under a
time cap. Prints a table with the ratio metafor / Python and writes artifacts/bench/meta.json,
which `python bench/render.py` puts into docs/performance.md.

Usage:
    .venv/bin/python bench/bench_meta.py [--sizes 15,100,1000,10000] [--cap 120] [--py-cap 30]
                                         [--no-r]

Targets: every method under 20 ms at k = 15; the GLMM at least as fast as rma.glmm at every k.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evidence.meta.glmm import fit_glmm_logit  # noqa: E402
from evidence.meta.proportions import POOL_METHODS, pool_proportions  # noqa: E402

SEED = 20261124
R_SCRIPT = ROOT / "bench" / "metafor_timing.R"
RESULTS = ROOT / "artifacts" / "bench" / "meta.json"


def synthetic(k: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """k single-arm studies like the project's: n uniform on 5-60, logit p ~ N(-2.2, 0.8^2)."""
    rng = np.random.default_rng(seed + k)
    n = rng.integers(5, 61, size=k)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-2.2, 0.8, size=k)))
    return rng.binomial(n, p), n


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
    reps = {15: 11, 100: 5}.get(k, 1)
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
    parser.add_argument("--sizes", default="15,100,1000,10000")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per metafor fit")
    parser.add_argument("--py-cap", type=float, default=30.0, help="seconds per Python timing")
    parser.add_argument("--no-r", action="store_true", help="skip the metafor timings")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    command = shlex.join([".venv/bin/python", "bench/bench_meta.py", *sys.argv[1:]])
    print("command:", command)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    table: list[dict[str, object]] = []
    print(f"seed {SEED}; n uniform 5-60; logit p ~ N(-2.2, 0.8^2); medians; cap {args.cap:g} s")
    print("load average at start (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    datasets = {k: synthetic(k) for k in sizes}
    for k, (x, n) in datasets.items():
        print(f"  k={k}: {int(x.sum())} events in {int(n.sum())} patients, "
              f"{int((x == 0).sum())} studies with 0 events")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "bench_data.json"
        payload = {str(k): {"x": x.tolist(), "n": n.tolist()} for k, (x, n) in datasets.items()}
        data_path.write_text(json.dumps(payload))

        header = f"{'k':>6} {'method':<28} {'python ms':>10} {'metafor ms':>14} {'ratio R/py':>11}"
        print("\n" + header + "\n" + "-" * len(header))
        checks = []
        for k, (x, n) in datasets.items():
            reps = repeats_for(k)
            rows: list[tuple[str, float | None]] = []
            t_glmm = time_python(lambda x=x, n=n: fit_glmm_logit(x, n), reps, args.py_cap)
            rows.append(("fit_glmm_logit", t_glmm))
            for method in POOL_METHODS:
                t = time_python(
                    lambda x=x, n=n, m=method: pool_proportions(x, n, method=m),
                    reps if k <= 100 else 1,
                    args.py_cap,
                )
                rows.append((f"pool_proportions {method}", t))
                if k == 15:
                    checks.append((f"k=15 pool_proportions {method} < 20 ms", _lt(t, 0.02)))
            if k == 15:
                checks.append(("k=15 fit_glmm_logit < 20 ms", _lt(t_glmm, 0.02)))
            r_times = {}
            if not args.no_r:
                for fun in ("rma_glmm", "rma_reml"):
                    r_times[fun] = time_r(data_path, k, fun, args.cap)
            pairs = {"fit_glmm_logit": "rma_glmm", "pool_proportions REML": "rma_reml"}
            for label, t in rows:
                r_text = r_times.get(pairs.get(label, ""), "")
                r_sec = _float(r_text)
                r_col = fmt_ms(r_sec) if r_sec is not None else (r_text or "-")
                ratio = f"{r_sec / t:10.1f}x" if r_sec is not None and t else "-"
                py_col = fmt_ms(t) if t is not None else f"did not finish in {args.py_cap:g} s"
                print(f"{k:>6} {label:<28} {py_col:>10} {r_col:>14} {ratio:>11}")
                table.append(
                    {
                        "k": k,
                        "python": label,
                        "python_ms": None if t is None else round(1000 * t, 3),
                        "metafor": pairs.get(label),
                        "metafor_ms": None if r_sec is None else round(1000 * r_sec, 3),
                        "metafor_note": None if r_sec is not None else (r_text or None),
                        "python_cap_s": args.py_cap,
                    }
                )
                if label == "fit_glmm_logit" and r_times:
                    timed_out = r_sec is None and "did not finish" in r_text
                    faster = t is not None and (timed_out or (r_sec is not None and t <= r_sec))
                    checks.append((f"k={k} GLMM at least as fast as rma.glmm", faster))
            sys.stdout.flush()

    print("\nload average at end (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("targets:")
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "load_at_start": load_at_start},
        "data": f"seed {SEED}; n uniform 5-60; logit p ~ N(-2.2, 0.8^2)",
        "metafor_cap_s": args.cap,
        "rows": table,
        "targets": [{"target": label, "met": ok} for label, ok in checks],
    }
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
