"""evidence.meta.glmm against metafor 3.8-1 rma.glmm(measure="PLO"): reference/golden_glmm.json.

Tolerance: 1e-4 absolute for every compared number (estimate, se, tau2, CI and PI on both
scales, I2 in percentage points, H2, QE statistics and p-values, log-likelihood), the
project's target; QE.Wld also relative 1e-5 (see the comment in test_matches_metafor).

The module replays lme4's algorithm (stage-1 PIRLS and Laplace, stage-2 Nelder-Mead with
lme4's stopping rule, PIRLS restarted from the same linear predictor, deriv12's Hessian), so
it lands on R's stopping point rather than on the exact optimum: the largest differences over
the golden cases are about 1e-6 (SE) and 1e-7 or less elsewhere. Without that, R's stopping
point is only within about 1e-5 of the optimum, and where lme4's PIRLS noise enters
deriv12's Hessian (k2_het: R's SE 0.200, the curvature's SE 1.28) no optimiser could match
R's SE.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from evidence.meta import glmm
from evidence.meta.glmm import GlmmFit, fit_glmm_logit

REFERENCE = Path(__file__).parent / "reference"
GOLDEN = json.loads((REFERENCE / "golden_glmm.json").read_text())
CASES = GOLDEN["cases"]
Z975 = stats.norm.ppf(0.975)

# metafor returns numbers here without a warning, but the likelihood is nearly flat (tau2 not
# identified; separated data have no finite ML tau2): the fit gives R's numbers but
# converged=False with a message, so the dashboard falls back visibly.
NOT_IDENTIFIED = ("separated_k2", "separated_k4", "flat_zero_n")
FIT_CASES = sorted(
    name for name, c in CASES.items() if c["status"] == "ok" and name not in NOT_IDENTIFIED
)
ERROR_CASES = sorted(name for name, c in CASES.items() if c["status"] == "error")


def _fit(name: str) -> GlmmFit:
    return fit_glmm_logit(CASES[name]["x"], CASES[name]["n"])


def _derived(fit: GlmmFit) -> dict[str, float]:
    """CI and PI as metafor's predict() forms them for test='z' (R/predict.rma.r)."""
    half_ci = Z975 * fit.se
    half_pi = Z975 * math.sqrt(fit.se**2 + fit.tau2)
    model = {
        "ci_lb": fit.estimate - half_ci,
        "ci_ub": fit.estimate + half_ci,
        "pi_lb": fit.estimate - half_pi,
        "pi_ub": fit.estimate + half_pi,
    }
    back = {"bt_" + key: float(special.expit(value)) for key, value in model.items()}
    return {**model, **back, "bt_estimate": float(special.expit(fit.estimate))}


@pytest.mark.parametrize("name", FIT_CASES)
def test_matches_metafor(name: str) -> None:
    fit, expected = _fit(name), CASES[name]["results"]
    assert fit.converged, fit.message
    assert fit.message == ""
    for key in ("estimate", "se", "tau2"):
        assert getattr(fit, key) == pytest.approx(expected[key], abs=1e-4), key
    for key in ("i2", "h2", "qe_lrt", "qe_wald_p", "qe_lrt_p", "loglik"):
        assert getattr(fit, key) == pytest.approx(expected[key], abs=1e-4), key
    # R inverts the covariance of the saturated glm's study contrasts, whose condition number
    # is ~1e12 when the reference (last) study has 0 events (variance ~1e11): R's QE.Wld then
    # carries a relative error of ~1e-6 (proj_k50: 1.9e-4 on 96), this module's does not.
    assert fit.qe_wald == pytest.approx(expected["qe_wald"], rel=1e-5, abs=1e-4)
    assert fit.qe_df == expected["qe_df"]
    for key, value in _derived(fit).items():
        assert value == pytest.approx(expected[key], abs=1e-4), key


@pytest.mark.parametrize("name", ["stijnen2010_ctrl", "stijnen2010_trt", "debruin2009"])
def test_published_values_at_printed_precision(name: str) -> None:
    """Stijnen 2010 Table II and the rma.glmm help page, to the 4 dp they print."""
    fit = _fit(name)
    values = {"estimate": fit.estimate, "se": fit.se, "tau2": fit.tau2, **_derived(fit)}
    published = CASES[name]["published"]
    for key, printed in published.items():
        assert f"{values[key]:.4f}" == printed, key


@pytest.mark.parametrize("name", ERROR_CASES)
def test_metafor_errors_become_not_converged(name: str) -> None:
    fit = _fit(name)
    assert not fit.converged
    assert CASES[name]["error"].split(" (")[0] in fit.message


@pytest.mark.parametrize("name", NOT_IDENTIFIED)
def test_unidentified_fits_are_flagged_with_r_numbers(name: str) -> None:
    fit = _fit(name)
    assert not fit.converged
    assert "likelihood nearly flat" in fit.message
    assert fit.estimate == pytest.approx(CASES[name]["results"]["estimate"], abs=1e-4)


# lme4 1.1-31, glmer(cbind(x, n - x) ~ 1 + (1 | study), binomial, nAGQ = 7, devFunOnly = TRUE)
# for x = (1, 15), n = (20, 25): stage-1 theta, the linear predictor lp0 every stage-2 PIRLS
# starts from, and the stage-2 deviance at R's optimum and at deriv12's points around it.
R_THETA1 = 1.6179671273840872
R_LP0 = (-2.48696408741085850, 0.31693992925911663)
R_PAR = (1.641283, -1.191059)
R_DEVFUN = {
    (0, 0): 6.09731794047650,
    (0, 1): 6.0973184210244504,  # PIRLS stopped early: 4.8e-7 above the smooth deviance
    (0, -1): 6.09731796052411,
    (1, 0): 6.09731797486585,
    (-1, 0): 6.09731841322063,
}


def test_lme4_internals_match_glmer() -> None:
    d = glmm._data(np.array([1.0, 15.0]), np.array([20.0, 25.0]))
    theta1, s1 = glmm._stage1(d)
    assert theta1 == pytest.approx(R_THETA1, abs=1e-7)
    assert s1.eta == pytest.approx(np.array(R_LP0), abs=1e-7)
    lp0 = np.array(R_LP0)
    for (i, j), value in R_DEVFUN.items():
        par = np.array(R_PAR) + 1e-4 * np.array([i, j])
        assert glmm._devfun(par, lp0, d)[0] == pytest.approx(value, abs=1e-10), (i, j)


def test_gauss_hermite_rule_is_lme4s() -> None:
    """GHrule(7) in lme4 integrates polynomials up to degree 13 against N(0, 1) exactly."""
    for power in range(0, 14, 2):
        moment = math.prod(range(power - 1, 0, -2)) if power else 1
        assert np.sum(glmm._GH_W * glmm._GH_Z**power) == pytest.approx(moment, rel=1e-13)


@pytest.mark.parametrize("name", sorted(CASES))
def test_converged_fits_are_finite(name: str) -> None:
    fit = _fit(name)
    if fit.converged:
        values = [getattr(fit, f) for f in GlmmFit.__dataclass_fields__ if f != "message"]
        assert all(math.isfinite(v) for v in values)
        assert fit.tau2 >= 0 and fit.se > 0 and 0 <= fit.i2 < 100 and fit.h2 >= 1


def test_boundary_tau2_is_exactly_zero_with_pooled_logit() -> None:
    """At tau2 = 0 the ML mu is the logit of the pooled proportion, as glmer's boundary fit."""
    fit = _fit("k3_tau0")
    x, n = np.array(CASES["k3_tau0"]["x"]), np.array(CASES["k3_tau0"]["n"])
    assert fit.tau2 == 0.0 and fit.i2 == 0.0 and fit.h2 == 1.0
    assert fit.estimate == pytest.approx(math.log(x.sum() / (n - x).sum()), abs=1e-8)
    assert fit.se == pytest.approx(
        1 / math.sqrt(n.sum() * x.sum() / n.sum() * (1 - x.sum() / n.sum())), abs=1e-6
    )


def test_study_order_does_not_matter() -> None:
    x, n = CASES["proj06"]["x"], CASES["proj06"]["n"]
    order = np.random.default_rng(1).permutation(len(x))
    a, b = fit_glmm_logit(x, n), fit_glmm_logit(np.array(x)[order], np.array(n)[order])
    for key in ("estimate", "se", "tau2", "i2", "qe_wald", "qe_lrt", "loglik"):
        # as in R, the order changes floating-point sums and so where Nelder-Mead stops
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-5), key


@pytest.mark.parametrize(
    ("events", "totals"),
    [
        ([1, 2], [10]),  # lengths differ
        ([1, -1], [10, 10]),
        ([11, 2], [10, 10]),
        ([1, float("nan")], [10, 10]),
        ([1.5, 2], [10, 10]),
        ([1, 2], [0, 10]),
        ([], []),
        ([[1, 2]], [[10, 10]]),
    ],
)
def test_bad_input_never_raises(events: list, totals: list) -> None:
    fit = fit_glmm_logit(events, totals)
    assert not fit.converged and fit.message


@pytest.mark.r_reference
def test_r_script_reproduces_committed_golden(tmp_path: Path) -> None:
    """Rerun tests/reference/glmm_reference.R and compare with the committed golden JSON."""
    if shutil.which("Rscript") is None:
        if os.environ.get("CI"):
            pytest.fail("Rscript not found but CI is set: the R reference check must run in CI")
        pytest.skip("Rscript not found (outside CI)")
    out = tmp_path / "golden.json"
    run = subprocess.run(
        ["Rscript", str(REFERENCE / "glmm_reference.R"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    fresh = json.loads(out.read_text())
    assert fresh["versions"] == GOLDEN["versions"], "R/metafor/lme4 changed: regenerate golden"
    assert fresh["cases"].keys() == CASES.keys()
    for name, case in CASES.items():
        new = fresh["cases"][name]
        assert (new["x"], new["n"], new["status"]) == (case["x"], case["n"], case["status"]), name
        assert new.get("error") == case.get("error"), name
        for key, value in case.get("results", {}).items():
            assert new["results"][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, key)
