"""The O(k) engine against live R metafor 3.8-1 on random cases of 200 to 2,000 studies.

The golden files (test_meta_iv.py) hold small published and edge cases; these are the sizes
where the k x k formulation stops being usable: every quantity both sides report (estimate,
SE, statistic, CI, prediction interval, tau² and its SE, Q, I², H², QM, each study's weight,
hat value and standardized residual, the Q-profile and profile-likelihood CIs of tau²,
leave-one-out and studentized deleted residuals (DL and REML at 200 studies: metafor refits k
times for them, and larger or more cases took minutes of CI); Mantel-Haenszel with its CMH,
Breslow-Day and Tarone tests), on data drawn from a fixed seed and sent to R as numbers.

Tolerance: 1e-9 relative, with 1e-12 absolute for quantities that are essentially zero (a tau²
of 1e-13); p-values 1e-7 relative, as in test_meta_iv.py (scipy's and R's tail routines).
Measured: see `python tests/test_meta_metafor_large.py`, which prints the largest differences.

Runs R once, for minutes (metafor's own k x k algebra is the cost; the engine's side takes
seconds). Marked r_reference, so `make test` (CI) runs it and `make unit` does not; it fails, not
skips, when CI is set and R or metafor is missing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evidence.meta import compare_groups, leave_one_out, pool_proportions
from evidence.meta.effect_sizes import freeman_tukey, log_ratio, logit_proportion, two_by_two
from evidence.meta.heterogeneity import fit_rma, tau2_ci_profile, tau2_ci_qprofile

SCRIPT = Path(__file__).parent / "reference" / "random_reference.R"
REL, ABS, REL_P = 1e-9, 1e-12, 1e-7
CI_FOR_TEST = {"z": "z", "knha": "hksj", "adhoc": "hksj-adhoc"}


def _proportions(rng: np.random.Generator, k: int, tau: float = 0.8) -> dict[str, list[int]]:
    n = rng.integers(5, 201, size=k)
    p = 1 / (1 + np.exp(-rng.normal(-1.0, tau, size=k)))
    return {"x": rng.binomial(n, p).tolist(), "n": n.tolist()}


def cases() -> list[dict[str, Any]]:
    """The random cases, from a fixed seed: the same numbers on every run."""
    rng = np.random.default_rng(20261201)
    out: list[dict[str, Any]] = []

    def pool(k: int, method: str, test: str, add: list[str], measure: str = "PLO") -> None:
        name = f"pool k={k} {measure} {method} {test}"
        out.append({"kind": "pool", "name": name, "measure": measure, "method": method,
                    "test": test, "add": add, **_proportions(rng, k)})  # fmt: skip

    for method in ("DL", "REML", "ML", "PM"):
        for test in ("z", "knha"):
            add = ["qp", "hat", "rstandard"] + (["pl"] if method in ("REML", "ML") else [])
            # leave-one-out where its path differs (DL closed form, REML iterated); metafor
            # refits k times for it, which for ML and PM too cost a minute of CI
            if method in ("DL", "REML"):
                add += ["leave1out"] + (["rstudent"] if test == "knha" else [])
            pool(200, method, test, add)
    pool(200, "DL", "adhoc", ["qp", "leave1out"])
    pool(200, "REML", "knha", ["qp", "pl", "hat", "leave1out"], measure="PFT")
    pool(500, "REML", "z", ["qp", "pl", "hat", "rstandard"])
    pool(500, "PM", "knha", ["qp", "hat"])
    pool(500, "ML", "knha", ["pl", "hat"])
    pool(1000, "REML", "knha", ["qp", "hat"])
    pool(1000, "DL", "z", ["qp", "hat"])
    pool(1000, "PM", "z", ["hat"])
    pool(1500, "REML", "z", ["hat"])  # metafor's REML at 2,000 alone took 32 s of CI
    pool(2000, "DL", "knha", ["hat"])
    for k, method, test in ((300, "REML", "knha"), (1000, "REML", "z"), (1000, "DL", "knha")):
        data = _proportions(rng, k)
        mod = rng.uniform(100, 800, size=k).round(0)
        name = f"metareg k={k} {method} {test}"
        out.append({"kind": "metareg", "name": name, "measure": "PLO", "method": method,
                    "test": test, "mod": mod.tolist(), "add": ["hat"], **data})  # fmt: skip
    for k, method, test in ((600, "REML", "z"), (1500, "PM", "knha")):
        data = _proportions(rng, k)
        group = rng.choice(["axi-cel", "tisa-cel", "liso-cel", "brexu-cel"], size=k).tolist()
        out.append({"kind": "subgroup", "name": f"subgroup k={k} {method} {test}",
                    "measure": "PLO", "method": method, "test": test, "group": group,
                    "add": ["hat"], **data})  # fmt: skip
    for k, measure in ((500, "OR"), (2000, "OR"), (2000, "RR")):
        n1, n2 = rng.integers(5, 201, size=k), rng.integers(5, 201, size=k)
        arms = {"ai": rng.binomial(n1, 0.15).tolist(), "n1i": n1.tolist(),
                "ci": rng.binomial(n2, 0.25).tolist(), "n2i": n2.tolist()}  # fmt: skip
        out.append({"kind": "mh", "name": f"mh k={k} {measure}", "measure": measure, **arms})
        if k == 500:
            out.append({"kind": "compare", "name": f"compare k={k} {measure} REML knha",
                        "measure": measure, "method": "REML", "test": "knha", **arms})  # fmt: skip
    return out


def run_metafor(workdir: Path) -> dict[str, dict[str, Any]]:
    """metafor's results for `cases()`, by case name (fails in CI when R is missing)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        if os.environ.get("CI"):
            pytest.fail("Rscript not found but CI is set: the metafor comparison cannot run")
        pytest.skip("Rscript not installed (outside CI)")
    given, got = workdir / "cases.json", workdir / "metafor.json"
    given.write_text(json.dumps(cases()))
    proc = subprocess.run(
        [rscript, str(SCRIPT), str(given), str(got)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0 and "there is no package called" in proc.stderr:
        if os.environ.get("CI"):
            pytest.fail(f"R package missing but CI is set: {proc.stderr[-500:]}")
        pytest.skip("metafor/jsonlite not installed in R (outside CI)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(got.read_text())
    assert found["versions"]["metafor"] == "3.8.1"
    return {r["name"]: r for r in found["results"]}


@pytest.fixture(scope="module")
def metafor(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_metafor(tmp_path_factory.mktemp("metafor_large"))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def differences(case: dict[str, Any], expected: dict[str, Any]) -> list[tuple[str, Any, Any, bool]]:
    """(quantity, engine, metafor, is a p-value) for every number of the case."""
    pairs: list[tuple[str, Any, Any, bool]] = []

    def add(name: str, ours: Any, theirs: Any, p_value: bool = False) -> None:
        ours_list = np.atleast_1d(np.asarray(ours, dtype=float)).tolist()
        theirs_list = _listed(theirs)
        assert len(ours_list) == len(theirs_list), name
        pairs.extend(
            (f"{name}[{i}]" if len(ours_list) > 1 else name, a, b, p_value)
            for i, (a, b) in enumerate(zip(ours_list, theirs_list, strict=True))
        )

    kind = case["kind"]
    if kind in ("pool", "metareg", "subgroup"):
        x, n = np.asarray(case["x"], dtype=float), np.asarray(case["n"], dtype=float)
        yi, vi = (logit_proportion if case["measure"] == "PLO" else freeman_tukey)(x, n)
        design = None
        if kind == "metareg":
            design = np.column_stack([np.ones(x.size), case["mod"]])
        if kind == "subgroup":
            levels = sorted(set(case["group"]))  # R's factor() order
            group = np.asarray(case["group"])
            design = np.column_stack([np.ones(x.size)] + [group == g for g in levels[1:]]).astype(
                float
            )
        fit = fit_rma(yi, vi, design, method=case["method"], test=case["test"])
        for name, ours in {
            "beta": fit.beta, "se": fit.se, "zval": fit.zval, "ci_lb": fit.ci_lb,
            "ci_ub": fit.ci_ub, "tau2": fit.tau2, "se_tau2": fit.se_tau2, "QE": fit.qe,
            "I2": fit.i2, "H2": fit.h2, "weights": fit.weights,
        }.items():  # fmt: skip
            add(name, ours, expected[name])
        add("pval", fit.pval, expected["pval"], True)
        add("QEp", fit.qe_p, expected["QEp"], True)
        if kind != "pool":
            add("QM", fit.qm, expected["QM"])
            add("QMp", fit.qm_p, expected["QMp"], True)
        if "hat" in expected:
            add("hat", fit.hat, expected["hat"])
        if "rstandard" in expected:
            add("rstandard", fit.rstandard, expected["rstandard"])
        if "qp" in expected:
            qp = tau2_ci_qprofile(yi, vi, design, fit)
            assert qp is not None
            for key in ("tau2_lb", "tau2_ub"):
                add(f"QP {key}", getattr(qp, key), expected["qp"][key])
            add("QP I2_lb", qp.i2_lb, expected["qp"]["I2_lb"])
            add("QP I2_ub", qp.i2_ub, expected["qp"]["I2_ub"])
        if "pl" in expected:
            pl = tau2_ci_profile(yi, vi, design, fit)
            assert pl is not None
            add("PL tau2_lb", pl.tau2_lb, expected["pl"]["tau2_lb"])
            add("PL tau2_ub", pl.tau2_ub, expected["pl"]["tau2_ub"])
        if kind == "pool":
            transform = "logit" if case["measure"] == "PLO" else "freeman-tukey"
            ci = CI_FOR_TEST[case["test"]]
            res = pool_proportions(x, n, method=case["method"], transform=transform, ci=ci)
            add("pool estimate", res.model.estimate, expected["beta"])
            add("pool tau2", res.tau2, expected["tau2"])
            add("pool pi_lb", res.model.pi.low, expected["pi_lb"])
            add("pool pi_ub", res.model.pi.high, expected["pi_ub"])
            if "leave1out" in expected or "rstudent" in expected:
                loo = leave_one_out(x, n, method=case["method"], transform=transform, ci=ci)
                l1 = expected.get("leave1out", {})
                for name, column in {
                    "estimate": loo.estimate, "se": loo.se, "ci_lb": loo.ci_low,
                    "ci_ub": loo.ci_high, "Q": loo.q, "tau2": loo.tau2, "I2": loo.i2,
                    "H2": loo.h2,
                }.items():  # fmt: skip
                    if name in l1:
                        add(f"leave1out {name}", column, l1[name])
                if "Qp" in l1:
                    add("leave1out Qp", loo.q_p, l1["Qp"], True)
                if "rstudent" in expected:
                    add("rstudent", loo.rstudent, expected["rstudent"])
    elif kind in ("mh", "compare"):
        ai, n1, ci_, n2 = (case[key] for key in ("ai", "n1i", "ci", "n2i"))
        if kind == "mh":
            res = compare_groups(ai, n1, ci_, n2, measure=case["measure"], method="MH")
            add("beta", res.model.estimate, expected["beta"])
            add("se", res.se, expected["se"])
            add("zval", res.statistic, expected["zval"])
            add("QE", res.heterogeneity.statistic, expected["QE"])
            add("QEp", res.heterogeneity.p_value, expected["QEp"], True)
            add("I2", res.i2, expected["I2"])
            add("H2", res.h2, expected["H2"])
            add("weights", res.studies.column("weight"), expected["weights"])
            if case["measure"] == "OR":
                assert res.cmh and res.breslow_day and res.tarone
                add("MH", res.cmh.statistic, expected["MH"])
                add("BD", res.breslow_day.statistic, expected["BD"])
                add("TA", res.tarone.statistic, expected["TA"])
        else:
            yi, vi = log_ratio(case["measure"], *two_by_two(ai, n1, ci_, n2))
            fit = fit_rma(yi, vi, method=case["method"], test=case["test"])
            for name, ours in {
                "beta": fit.beta, "se": fit.se, "tau2": fit.tau2, "QE": fit.qe, "I2": fit.i2,
                "H2": fit.h2, "weights": fit.weights, "ci_lb": fit.ci_lb, "ci_ub": fit.ci_ub,
            }.items():  # fmt: skip
                add(name, ours, expected[name])
            res = compare_groups(ai, n1, ci_, n2, measure=case["measure"], method="REML", ci="hksj")
            add("compare pi_lb", res.model.pi.low, expected["pi_lb"])
            add("compare pi_ub", res.model.pi.high, expected["pi_ub"])
    return pairs


def relative(a: Any, b: Any) -> float:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return 0.0 if (a is None or not math.isfinite(a)) == (b is None) else math.inf
    return abs(a - b) / max(abs(b), 1e-300)


CASES = cases()


@pytest.mark.r_reference
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_engine_matches_metafor_on_large_random_cases(
    case: dict[str, Any], metafor: dict[str, dict[str, Any]]
) -> None:
    for name, ours, theirs, p_value in differences(case, metafor[case["name"]]):
        if theirs is None:
            assert ours is None or not math.isfinite(ours), f"{name}: metafor NA, engine {ours}"
            continue
        rel = REL_P if p_value else REL
        assert ours == pytest.approx(theirs, rel=rel, abs=ABS), (
            f"{case['name']} {name}: {ours!r} vs metafor {theirs!r}"
        )


if __name__ == "__main__":  # the largest differences, for docs and reports
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        results = run_metafor(Path(tmp))
    worst: dict[str, tuple[float, str]] = {}
    seconds = 0.0
    for case in CASES:
        seconds += results[case["name"]]["seconds"]
        for name, ours, theirs, p_value in differences(case, results[case["name"]]):
            key = name.split("[")[0] + (" (p)" if p_value else "")
            d = relative(ours, theirs) if theirs is None or abs(theirs) > 1e-6 else 0.0
            if d >= worst.get(key, (-1.0, ""))[0]:
                worst[key] = (d, case["name"])
    for key, (d, where) in sorted(worst.items(), key=lambda kv: -kv[1][0]):
        print(f"{key:28s} {d:9.2e}  {where}")
    print(f"metafor time over all cases: {seconds:.0f} s", file=sys.stderr)
