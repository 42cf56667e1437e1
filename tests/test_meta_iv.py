"""Agreement of evidence.meta with R metafor 3.8-1 on the golden grid (tests/reference).

Tolerances (all far tighter than the 1e-6 the guideline panel needs):

* ``TOL_IV`` (abs 1e-9 + rel 1e-9) for every inverse-variance / MH quantity on the model and
  proportion scales: the Python code replays metafor's own algorithm (same HE start, Fisher
  scoring steps and 1e-5 stopping rule, R's Brent zeroin for PM), so the only differences are
  floating-point summation order; measured: max abs difference 5e-13 (Q of
  k = 18), max relative 6e-12 (tau² close to 0).
* ``TOL_P`` (rel 1e-7, abs 1e-15) for p-values: scipy's and R's tail-probability routines agree
  to ~1e-10 relative, and p-values as small as 1e-93 must be compared relatively.
* ``TOL_CP`` (rel 1e-9) for Clopper-Pearson limits: scipy ``beta.ppf`` vs R ``qbeta``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evidence.meta.comparisons import compare_groups
from evidence.meta.effect_sizes import (
    clopper_pearson,
    freeman_tukey,
    harmonic_mean,
    ipft_hm,
    log_ratio,
    two_by_two,
)
from evidence.meta.heterogeneity import fit_rma, predict, tau2_ci_qprofile
from evidence.meta.proportions import leave_one_out, pool_proportions
from evidence.meta.regression import meta_regression
from evidence.meta.results import StudyColumns
from evidence.meta.subgroups import subgroup_analysis

REF_DIR = Path(__file__).parent / "reference"
GOLDEN = json.loads((REF_DIR / "golden_iv.json").read_text())

TOL_IV = {"rel": 1e-9, "abs": 1e-9}
TOL_P = {"rel": 1e-7, "abs": 1e-15}
TOL_CP = {"rel": 1e-9, "abs": 1e-12}


def assert_close(actual: Any, expected: Any, tol: dict[str, float], what: str) -> None:
    """None on our side must match null (NA) in R; numbers must agree within tol."""
    if expected is None:
        assert actual is None or not math.isfinite(actual), f"{what}: R gives NA, got {actual}"
        return
    assert actual is not None, f"{what}: expected {expected}, got None"
    assert actual == pytest.approx(expected, rel=tol["rel"], abs=tol["abs"]), (
        f"{what}: {actual!r} vs metafor {expected!r} (diff {abs(actual - expected):.3g})"
    )


def _as_list(v: Any) -> list[Any]:
    """jsonlite writes length-1 R vectors as scalars."""
    return v if isinstance(v, list) else [v]


def case_id(case: dict[str, Any]) -> str:
    return str(case["name"])


# ---------------------------------------------------------------------------------------------
# pool_proportions vs rma.uni + predict.rma
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN["pool"], ids=case_id)
def test_pool_matches_metafor(case: dict[str, Any]) -> None:
    events, totals = _as_list(case["events"]), _as_list(case["totals"])
    res = pool_proportions(
        events, totals, method=case["method"], transform=case["transform"], ci=case["ci"]
    )
    exp = case["expected"]
    single = len(events) == 1
    pairs = {
        "estimate": res.model.estimate,
        "se": res.se,
        "ci_lb": res.model.ci.low,
        "ci_ub": res.model.ci.high,
        "zval": res.statistic,
        "bt_estimate": res.proportion.estimate,
        "bt_ci_lb": res.proportion.ci.low,
        "bt_ci_ub": res.proportion.ci.high,
    }
    if not single:  # k = 1: nothing pooled, heterogeneity and PI deliberately None
        pairs |= {
            "pi_lb": res.model.pi.low,
            "pi_ub": res.model.pi.high,
            "tau2": res.tau2,
            "se_tau2": res.tau2_se,
            "I2": res.i2,
            "H2": res.h2,
            "QE": res.heterogeneity.statistic,
            "bt_pi_lb": res.proportion.pi.low,
            "bt_pi_ub": res.proportion.pi.high,
            "tau2_lb": res.tau2_ci.low,
            "tau2_ub": res.tau2_ci.high,
            "I2_lb": res.i2_ci.low,
            "I2_ub": res.i2_ci.high,
        }
        assert res.k == exp["k"]
    else:
        assert res.tau2 is None and res.proportion.pi.low is None and res.notes
    for key, actual in pairs.items():
        if key == "zval" and exp[key] is not None and not math.isfinite(exp[key]):
            continue
        assert_close(actual, exp[key], TOL_IV, key)
    assert_close(res.p_value, exp["pval"], TOL_P, "pval")
    if not single:
        assert_close(res.heterogeneity.p_value, exp["QEp"], TOL_P, "QEp")
    weights = _as_list(exp["weights"])
    for s, w, yi, vi in zip(
        res.studies,
        weights,
        _as_list(case["studies"]["yi"]),
        _as_list(case["studies"]["vi"]),
        strict=True,
    ):
        assert_close(s.weight, w, TOL_IV, "weight")
        assert_close(s.yi, yi, TOL_IV, "yi")
        assert_close(s.vi, vi, TOL_IV, "vi")
    for s, lo, hi in zip(
        res.studies,
        _as_list(case["studies"]["cp_low"]),
        _as_list(case["studies"]["cp_high"]),
        strict=True,
    ):
        assert_close(s.ci.low, lo, TOL_CP, "Clopper-Pearson low")
        assert_close(s.ci.high, hi, TOL_CP, "Clopper-Pearson high")


# ---------------------------------------------------------------------------------------------
# rma.uni on given yi/vi (published statsmodels / PyMARE cases and EE)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN["generic"], ids=case_id)
def test_generic_rma_matches_metafor(case: dict[str, Any]) -> None:
    fit = fit_rma(
        np.array(case["yi"]), np.array(case["vi"]), method=case["method"], test=case["test"]
    )
    exp = case["expected"]
    _, _, _, _, pi_lb, pi_ub = predict(fit, np.ones((1, 1)))
    for key, actual in {
        "estimate": fit.beta[0],
        "se": fit.se[0],
        "ci_lb": fit.ci_lb[0],
        "ci_ub": fit.ci_ub[0],
        "zval": fit.zval[0],
        "tau2": fit.tau2,
        "I2": fit.i2,
        "H2": fit.h2,
        "QE": fit.qe,
        "pi_lb": pi_lb[0],
        "pi_ub": pi_ub[0],
    }.items():
        assert_close(float(actual), exp[key], TOL_IV, key)
    if exp["se_tau2"] is not None:
        assert_close(fit.se_tau2, exp["se_tau2"], TOL_IV, "se_tau2")
    qp = tau2_ci_qprofile(np.array(case["yi"]), np.array(case["vi"]), None, fit)
    if case["method"] == "EE":
        assert qp is None
    else:
        assert qp is not None
        for key, actual in {
            "tau2_lb": qp.tau2_lb,
            "tau2_ub": qp.tau2_ub,
            "I2_lb": qp.i2_lb,
            "I2_ub": qp.i2_ub,
            "H2_lb": qp.h2_lb,
            "H2_ub": qp.h2_ub,
        }.items():
            assert_close(actual, exp[key], TOL_IV, key)
    assert_close(float(fit.pval[0]), exp["pval"], TOL_P, "pval")
    assert_close(fit.qe_p, exp["QEp"], TOL_P, "QEp")


# ---------------------------------------------------------------------------------------------
# compare_groups vs rma.mh and rma(measure="OR"/"RR")
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN["compare"], ids=case_id)
def test_compare_matches_metafor(case: dict[str, Any]) -> None:
    ea, na, eb, nb = (_as_list(case[key]) for key in ("ea", "na", "eb", "nb"))
    res = compare_groups(
        ea, na, eb, nb, measure=case["measure"], method=case["method"], ci=case["ci"]
    )
    exp = case["expected"]
    single = len(ea) == 1
    pairs = {
        "estimate": res.model.estimate,
        "se": res.se,
        "ci_lb": res.model.ci.low,
        "ci_ub": res.model.ci.high,
        "zval": res.statistic,
    }
    if not single:
        pairs |= {"QE": res.heterogeneity.statistic, "I2": res.i2, "H2": res.h2}
    if case["method"] == "MH" and case["measure"] == "RR":
        # rma.mh reports the CMH, Breslow-Day and Tarone tests for the odds ratio only
        assert res.cmh is None and res.breslow_day is None and res.tarone is None
        pairs |= {"MH": None}
    elif case["method"] == "MH":
        assert res.cmh is not None and res.breslow_day is not None and res.tarone is not None
        pairs |= {"MH": res.cmh.statistic}
        assert_close(res.cmh.p_value, exp["MHp"], TOL_P, "MHp")
        assert_close(res.breslow_day.statistic, exp["BD"], TOL_IV, "Breslow-Day")
        assert_close(res.tarone.statistic, exp["TA"], TOL_IV, "Tarone")
        assert_close(res.breslow_day.p_value, exp["BDp"], TOL_P, "Breslow-Day p")
        assert_close(res.tarone.p_value, exp["TAp"], TOL_P, "Tarone p")
    elif not single:
        pairs |= {"tau2": res.tau2, "pi_lb": res.model.pi.low, "pi_ub": res.model.pi.high}
    for key, actual in pairs.items():
        assert_close(actual, exp[key], TOL_IV, key)
    assert_close(res.p_value, exp["pval"], TOL_P, "pval")
    if not single:
        assert_close(res.heterogeneity.p_value, exp["QEp"], TOL_P, "QEp")
    for s, w, yi, vi in zip(
        res.studies,
        _as_list(exp["weights"]),
        _as_list(exp["yi"]),
        _as_list(exp["vi"]),
        strict=True,
    ):
        assert_close(s.weight, w, TOL_IV, "weight")
        if case["method"] != "MH":
            assert_close(s.yi, yi, TOL_IV, "yi")
            assert_close(s.vi, vi, TOL_IV, "vi")
        elif s.yi is None:  # rma.mh's escalc drops double-zero studies (drop00=TRUE)
            assert s.events_a == s.events_b == 0 or (s.events_a, s.events_b) == (
                s.total_a,
                s.total_b,
            )
        else:
            assert_close(s.yi, yi, TOL_IV, "yi")


# ---------------------------------------------------------------------------------------------
# leave1out
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN["leave1out"], ids=case_id)
def test_leave_one_out_matches_metafor(case: dict[str, Any]) -> None:
    loo = leave_one_out(
        case["events"],
        case["totals"],
        method=case["method"],
        transform=case["transform"],
        ci=case["ci"],
    )
    exp = case["expected"]
    assert len(loo) == len(case["events"])
    for i, row in enumerate(loo.records()):
        for key, actual in {
            "estimate": row["estimate"],
            "se": row["se"],
            "ci_lb": row["ci_low"],
            "ci_ub": row["ci_high"],
            "Q": row["q"],
            "tau2": row["tau2"],
            "I2": row["i2"],
            "H2": row["h2"],
            "bt_estimate": row["proportion"],
            "bt_ci_lb": row["proportion_ci_low"],
            "bt_ci_ub": row["proportion_ci_high"],
        }.items():
            assert_close(actual, exp[key][i], TOL_IV, f"{key}[{i}]")
        assert_close(row["q_p"], exp["Qp"][i], TOL_P, f"Qp[{i}]")
        assert row["omitted"] == f"Study {i + 1}"


# ---------------------------------------------------------------------------------------------
# subgroup_analysis vs rma(mods = ~ factor(g)) and per-subgroup rma
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN["subgroup"], ids=case_id)
def test_subgroups_match_metafor(case: dict[str, Any]) -> None:
    res = subgroup_analysis(
        case["events"],
        case["totals"],
        case["groups"],
        method=case["method"],
        transform=case["transform"],
        ci=case["ci"],
    )
    exp = case["expected"]
    qmdf = _as_list(exp["QMdf"])
    assert res.moderator_test.df == qmdf[0]
    assert res.moderator_test.df2 == (qmdf[1] if len(qmdf) > 1 else None)
    for key, actual in {
        "QM": res.moderator_test.statistic,
        "tau2": res.tau2_common,
        "I2": res.i2_residual,
        "QE": res.residual_heterogeneity.statistic,
        "Qb_separate": res.separate_tau2_test.statistic,
    }.items():
        assert_close(actual, exp[key], TOL_IV, key)
    for key, actual in {
        "QMp": res.moderator_test.p_value,
        "QEp": res.residual_heterogeneity.p_value,
        "Qb_separate_p": res.separate_tau2_test.p_value,
    }.items():
        assert_close(actual, exp[key], TOL_P, key)
    assert res.separate_tau2_test.df == exp["Qb_separate_df"]
    for pool in res.subgroups:
        g = exp["per_group"][pool.name]
        r = pool.result
        assert pool.single_study == (r.k == 1)
        assert (r.fallback_reason is not None) == ("error" in g)  # REML failed in R too
        for key, actual in {
            "estimate": r.model.estimate,
            "se": r.se,
            "ci_lb": r.model.ci.low,
            "ci_ub": r.model.ci.high,
            "bt_estimate": r.proportion.estimate,
            "bt_ci_lb": r.proportion.ci.low,
            "bt_ci_ub": r.proportion.ci.high,
        }.items():
            assert_close(actual, g[key], TOL_IV, f"{pool.name}.{key}")
        if r.k > 1:
            assert_close(r.tau2, g["tau2"], TOL_IV, f"{pool.name}.tau2")
            assert_close(r.proportion.pi.low, g["bt_pi_lb"], TOL_IV, f"{pool.name}.bt_pi_lb")


# ---------------------------------------------------------------------------------------------
# meta_regression vs rma(mods = ~ x) + predict(newmods =)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN["metareg"], ids=case_id)
def test_meta_regression_matches_metafor(case: dict[str, Any]) -> None:
    res = meta_regression(
        case["events"],
        case["totals"],
        case["moderator"],
        method=case["method"],
        transform=case["transform"],
        ci=case["ci"],
    )
    exp = case["expected"]
    coefficients = (res.intercept, res.slope)
    for key, actual in {
        "beta": [c.estimate for c in coefficients],
        "se": [c.se for c in coefficients],
        "ci_lb": [c.ci.low for c in coefficients],
        "ci_ub": [c.ci.high for c in coefficients],
    }.items():
        for a, e in zip(actual, exp[key], strict=True):
            assert_close(a, e, TOL_IV, key)
    for a, e in zip([c.p_value for c in coefficients], exp["pval"], strict=True):
        assert_close(a, e, TOL_P, "pval")
    for key, actual in {
        "tau2": res.tau2,
        "I2": res.i2,
        "H2": res.h2,
        "QE": res.residual_heterogeneity.statistic,
        "QM": res.moderator_test.statistic,
    }.items():
        assert_close(actual, exp[key], TOL_IV, key)
    assert_close(res.moderator_test.p_value, exp["QMp"], TOL_P, "QMp")
    assert_close(res.residual_heterogeneity.p_value, exp["QEp"], TOL_P, "QEp")
    line = res.fitted_line(case["grid"])
    for key, actual in {
        "pred": line.model.estimate,
        "pred_ci_lb": line.model.ci_low,
        "pred_ci_ub": line.model.ci_high,
        "pred_pi_lb": line.model.pi_low,
        "pred_pi_ub": line.model.pi_high,
        "bt_pred": line.proportion.estimate,
        "bt_ci_lb": line.proportion.ci_low,
        "bt_ci_ub": line.proportion.ci_high,
        "bt_pi_lb": line.proportion.pi_low,
        "bt_pi_ub": line.proportion.pi_high,
    }.items():
        for i, (a, e) in enumerate(zip(actual, exp[key], strict=True)):
            assert_close(a, e, TOL_IV, f"{key}[{i}]")


# ---------------------------------------------------------------------------------------------
# Published values at their printed precision
# ---------------------------------------------------------------------------------------------


def _rounds_to(actual: float, printed: str) -> bool:
    """True if ``actual`` printed with as many decimals as ``printed`` gives the same number."""
    if "e" in printed.lower():
        return actual == pytest.approx(float(printed), rel=1e-12)
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(actual - float(printed)) <= 0.5 * 10**-decimals + 1e-12


PUBLISHED = {p["name"]: p for p in GOLDEN["published"]}


@pytest.mark.parametrize(
    "name",
    [n for n, p in PUBLISHED.items() if p["kind"] in ("pool", "pft_ee", "generic", "compare")],
)
def test_published_values(name: str) -> None:
    pub = PUBLISHED[name]
    values: dict[str, str] = pub["values"]
    if pub["kind"] == "pool":
        d = GOLDEN["datasets"]["prop"][pub["data"]]
        r = pool_proportions(
            d["x"], d["n"], method=pub["method"], transform=pub["transform"], ci=pub["ci"]
        )
        got = {
            "estimate": r.model.estimate,
            "se": r.se,
            "tau2": r.tau2,
            "bt_estimate": r.proportion.estimate,
            "bt_ci_lb": r.proportion.ci.low,
            "bt_ci_ub": r.proportion.ci.high,
        }
    elif pub["kind"] == "pft_ee":
        x = np.asarray(pub["x"], dtype=float)
        n = np.asarray(pub["n"], dtype=float)
        yi, vi = freeman_tukey(x, n)
        fit = fit_rma(yi, vi, method="EE")
        nh = harmonic_mean(n)
        got = {
            "bt_estimate": ipft_hm(float(fit.beta[0]), nh),
            "bt_ci_lb": ipft_hm(float(fit.ci_lb[0]), nh),
            "bt_ci_ub": ipft_hm(float(fit.ci_ub[0]), nh),
        }
        assert_close(got["bt_estimate"], pub["metafor"]["bt_estimate"], TOL_IV, "metafor EE")
    elif pub["kind"] == "compare":
        d = GOLDEN["datasets"]["compare"][pub["data"]]
        c = compare_groups(
            d["ea"],
            d["na"],
            d["eb"],
            d["nb"],
            measure=pub["measure"],
            method=pub["method"],
            ci=pub["ci"],
        )
        got = {
            "estimate": c.model.estimate,
            "se": c.se,
            "ci_lb": c.model.ci.low,
            "ci_ub": c.model.ci.high,
            "tau2": c.tau2,
            "I2": c.i2,
            "H2": c.h2,
            "QE": c.heterogeneity.statistic,
            "zval": c.statistic,
            "pi_lb": c.model.pi.low,
            "pi_ub": c.model.pi.high,
            "bt_estimate": c.ratio.estimate,
            "bt_ci_lb": c.ratio.ci.low,
            "bt_ci_ub": c.ratio.ci.high,
            "bt_pi_lb": c.ratio.pi.low,
            "bt_pi_ub": c.ratio.pi.high,
        }
        if pub["name"] == "bcg_logRR_REML":  # se of tau² printed by metafor
            yi, vi = log_ratio("RR", *two_by_two(d["ea"], d["na"], d["eb"], d["nb"]))
            got["se_tau2"] = fit_rma(yi, vi, method="REML").se_tau2
    else:
        d = GOLDEN["datasets"]["generic"][pub["data"]]
        fit = fit_rma(np.array(d["yi"]), np.array(d["vi"]), method=pub["method"], test=pub["test"])
        got = {
            "estimate": float(fit.beta[0]),
            "se": float(fit.se[0]),
            "ci_lb": float(fit.ci_lb[0]),
            "ci_ub": float(fit.ci_ub[0]),
            "tau2": fit.tau2,
            "se_tau2": fit.se_tau2,
            "QE": fit.qe,
            "QEp": fit.qe_p,
            "I2": fit.i2,
            "H2": fit.h2,
            "pval": float(fit.pval[0]),
        }
    for key, printed in values.items():
        actual = got[key]
        assert actual is not None
        if len(printed.replace("-", "").replace(".", "").lstrip("0")) >= 12:
            # full-precision values printed by statsmodels/PyMARE from metafor: 1e-9 relative
            assert actual == pytest.approx(float(printed), rel=1e-9, abs=1e-12), key
        else:
            assert _rounds_to(actual, printed), (
                f"{name} {key}: {actual} does not print as {printed}"
            )


# ---------------------------------------------------------------------------------------------
# Edge cases that must never crash or produce NaN
# ---------------------------------------------------------------------------------------------


def _no_nan(obj: Any, path: str = "result") -> None:
    """No NaN or inf anywhere in a result, nested records and studies included."""
    if isinstance(obj, float):
        assert math.isfinite(obj), f"{path} is {obj}"
    elif isinstance(obj, (tuple, StudyColumns)):  # per-study columns read as records
        for i, value in enumerate(obj):
            _no_nan(value, f"{path}[{i}]")
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            _no_nan(getattr(obj, f.name), f"{path}.{f.name}")


@pytest.mark.parametrize("method", ["REML", "DL", "ML", "PM"])
@pytest.mark.parametrize("transform", ["logit", "freeman-tukey"])
@pytest.mark.parametrize("ci", ["z", "hksj", "hksj-adhoc"])
def test_edge_cases_never_nan(method: str, transform: str, ci: str) -> None:
    for events, totals in [([], []), ([0], [10]), ([0, 0, 0], [5, 9, 12]), ([7, 7], [7, 7])]:
        r = pool_proportions(events, totals, method=method, transform=transform, ci=ci)
        _no_nan(r)
        if not events:
            assert r.proportion.estimate is None and r.tau2 is None
            assert "no studies" in r.notes[0].lower()
        if len(events) == 1:
            assert r.tau2 is None and r.k == 1 and r.proportion.estimate is not None
        if events and sum(events) == 0:
            assert any("0 events" in n for n in r.notes)


def test_pft_note_and_frame() -> None:
    r = pool_proportions([2, 5, 9], [10, 12, 20], method="REML", transform="freeman-tukey")
    assert any("Schwarzer" in n for n in r.notes)
    frame = r.to_frame()
    assert list(frame["row_type"]) == ["study", "study", "study", "pooled"]
    assert frame["weight"].iloc[:3].sum() == pytest.approx(100)


def test_clopper_pearson_extremes() -> None:
    assert clopper_pearson(0, 10)[0] == 0.0
    assert clopper_pearson(10, 10)[1] == 1.0


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError):
        pool_proportions([3], [2], method="REML")
    with pytest.raises(ValueError):
        pool_proportions([1, 2], [5, 6], method="XYZ")


# ---------------------------------------------------------------------------------------------
# Re-run R and compare with the committed golden file
# ---------------------------------------------------------------------------------------------


def _numbers_equal(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys differ"
        for key in a:
            _numbers_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _numbers_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        # same R and metafor: identical to the last printed digit; 1e-12 allows for a BLAS change
        assert a == pytest.approx(b, rel=1e-12, abs=1e-14), f"{path}: {a} vs {b}"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


@pytest.mark.r_reference
class TestGoldenRegeneratesFromR:
    """Fails (does not skip) in CI when Rscript or metafor is missing or disagrees."""

    def test_regenerated_equals_committed(self, tmp_path: Path) -> None:
        rscript = shutil.which("Rscript")
        if rscript is None:
            if os.environ.get("CI"):
                pytest.fail(
                    "Rscript not found but CI is set: the metafor reference cannot be checked"
                )
            pytest.skip("Rscript not installed (outside CI)")
        out = tmp_path / "golden_iv.json"
        proc = subprocess.run(
            [rscript, str(REF_DIR / "iv_reference.R"), str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0 and "there is no package called" in proc.stderr:
            if os.environ.get("CI"):
                pytest.fail(f"R package missing but CI is set: {proc.stderr[-500:]}")
            pytest.skip("metafor/jsonlite not installed in R (outside CI)")
        assert proc.returncode == 0, proc.stderr[-2000:]
        fresh = json.loads(out.read_text())
        committed = dict(GOLDEN)
        assert fresh["versions"]["metafor"] == committed["versions"]["metafor"], (
            "metafor version differs from the one the golden file was made with"
        )
        _numbers_equal(
            {k: v for k, v in fresh.items() if k != "versions"},
            {k: v for k, v in committed.items() if k != "versions"},
        )
