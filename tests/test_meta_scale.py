"""The O(k) inverse-variance engine on random cases, against what it replaced.

* `fit_rma` (sums over studies) against the previous k x k formulation, kept only here
  (tests/kxk_reference.py): every quantity, intercept-only, one moderator and subgroup designs,
  every estimator and test; hat values and standardized residuals against the k x k hat matrix.
* Leave-one-out (all k left-out fits in lockstep from sums) against k separate fits.
* The pieces: the vectorised zeroin against R's, the left-out sums against direct sums, the
  per-study columns against records built one by one.

Tolerance: 1e-9 relative (1e-12 absolute for values that are essentially zero, such as a tau²
of 1e-9); measured, the largest difference is about 1e-11 (a moderator coefficient near zero).
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from evidence.meta import leave_one_out, pool_proportions
from evidence.meta.effect_sizes import clopper_pearson, freeman_tukey, logit_proportion
from evidence.meta.heterogeneity import (
    FitError,
    fit_rma,
    fit_rma_or_dl,
    r_zeroin2,
    tau2_ci_qprofile,
    zeroin_many,
)
from evidence.meta.leaveout import LeftOutSums, leave1out
from tests import kxk_reference as kxk

REL, ABS = 1e-9, 1e-12
FIELDS = ("beta", "se", "ci_lb", "ci_ub", "zval", "pval", "tau2", "se_tau2", "qe", "qe_p")
FIELDS += ("i2", "h2", "vt", "qm", "qm_p", "weights", "s2w")


def close(actual: object, expected: object, what: str) -> None:
    a = np.atleast_1d(np.asarray(actual, dtype=float))
    e = np.atleast_1d(np.asarray(expected, dtype=float))
    assert a.shape == e.shape, what
    assert np.array_equal(np.isfinite(a), np.isfinite(e)), f"{what}: {a} vs {e}"
    ok = np.isfinite(e)
    assert np.allclose(a[ok], e[ok], rtol=REL, atol=ABS), f"{what}: {a[ok]} vs {e[ok]}"


def random_case(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k single-arm cohorts: n 5-200, logit p ~ N(mu, tau^2), some with no heterogeneity."""
    n = rng.integers(5, 201, size=k)
    tau = rng.choice([0.0, 0.3, 0.8, 1.5])
    p = 1 / (1 + np.exp(-rng.normal(rng.normal(-1, 1), tau, size=k)))
    return rng.binomial(n, p).astype(float), n.astype(float)


def designs(rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    groups = rng.integers(0, 4, size=k)
    sub = np.column_stack([np.ones(k)] + [(groups == g).astype(float) for g in (1, 2, 3)])
    out = {
        "intercept": np.ones((k, 1)),
        "dose": np.column_stack([np.ones(k), rng.uniform(100, 800, k)]),
    }
    if np.linalg.matrix_rank(sub) == 4 and k > 8:
        out["subgroups"] = sub
    return out


CASES = [(seed, k) for seed, k in enumerate([3, 4, 6, 10, 15, 40, 120, 200])]


@pytest.mark.parametrize(("seed", "k"), CASES)
def test_fit_matches_the_kxk_formulation(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    x, n = random_case(rng, k)
    for transform in (logit_proportion, freeman_tukey):
        yi, vi = transform(x, n)
        for name, design in designs(rng, k).items():
            if design.shape[1] >= k:
                continue
            for method in ("REML", "DL", "ML", "PM", "EE"):
                for test in ("z", "knha", "adhoc"):
                    what = f"{name} {method} {test}"
                    try:
                        old = kxk.fit_rma(yi, vi, design, method=method, test=test)
                    except kxk.FitError:
                        with pytest.raises(FitError):
                            fit_rma(yi, vi, design, method=method, test=test)
                        continue
                    new = fit_rma(yi, vi, design, method=method, test=test)
                    for field in FIELDS:
                        close(getattr(new, field), getattr(old, field), f"{what} {field}")
                    assert new.iterations == old.iterations, what
                    _hat_and_residuals(new, yi, vi, design, what)
                    q_old = kxk.tau2_ci_qprofile(yi, vi, design, old)
                    q_new = tau2_ci_qprofile(yi, vi, design, new)
                    assert (q_old is None) == (q_new is None), what
                    if q_old is not None and q_new is not None:
                        for field in ("tau2_lb", "tau2_ub", "i2_lb", "i2_ub"):
                            close(getattr(q_new, field), getattr(q_old, field), f"{what} {field}")


def _hat_and_residuals(fit, yi, vi, x, what):  # type: ignore[no-untyped-def]
    """hatvalues and rstandard as metafor computes them, from k x k matrices."""
    w = 1 / (vi + fit.tau2)
    a_inv = np.linalg.inv(x.T @ np.diag(w) @ x)
    h = x @ a_inv @ x.T @ np.diag(w)
    resid = yi - x @ (a_inv @ x.T @ (w * yi))
    imh = np.eye(yi.size) - h
    ve = imh @ np.diag(vi + fit.tau2) @ imh.T
    close(fit.hat, np.minimum(np.diag(h), 1.0), f"{what} hat")
    assert np.allclose(fit.resid, resid, rtol=REL, atol=1e-12), f"{what} resid"
    with np.errstate(divide="ignore", invalid="ignore"):
        z = resid / np.sqrt(np.diag(ve))
    keep = np.diag(h) < 1 - 1e-9  # a study with all the weight has no residual to speak of
    assert np.allclose(fit.rstandard[keep], z[keep], rtol=1e-7, atol=1e-9), f"{what} rstandard"


LOO_CASES = [(seed, k) for seed, k in enumerate([3, 4, 5, 8, 20, 60, 250], start=100)]


@pytest.mark.parametrize(("seed", "k"), LOO_CASES)
def test_leave_one_out_matches_k_separate_fits(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    x, n = random_case(rng, k)
    for transform in ("logit", "freeman-tukey"):
        yi, vi = (logit_proportion if transform == "logit" else freeman_tukey)(x, n)
        for method in ("REML", "DL", "ML", "PM"):
            for test in ("z", "knha", "adhoc"):
                fast = leave1out(yi, vi, method, test)
                for i in range(k):
                    keep = np.arange(k) != i
                    fit, reason = fit_rma_or_dl(yi[keep], vi[keep], method=method, test=test)
                    what = f"{transform} {method} {test} without {i}"
                    assert bool(fast.fell_back[i]) == (reason is not None), what
                    for field, expected in {
                        "estimate": fit.beta[0],
                        "se": fit.se[0],
                        "statistic": fit.zval[0],
                        "p_value": fit.pval[0],
                        "ci_low": fit.ci_lb[0],
                        "ci_high": fit.ci_ub[0],
                        "q": fit.qe,
                        "q_p": fit.qe_p,
                        "tau2": fit.tau2,
                        "i2": fit.i2,
                        "h2": fit.h2,
                    }.items():
                        close(getattr(fast, field)[i], expected, f"{what} {field}")
                    spread = vi[i] * fit.s2w + fit.vb[0, 0] + fit.tau2 * fit.s2w
                    close(fast.rstudent[i], (yi[i] - fit.beta[0]) / math.sqrt(spread), what)


def test_leave_one_out_result_back_transforms_each_row() -> None:
    rng = np.random.default_rng(7)
    x, n = random_case(rng, 12)
    for transform in ("logit", "freeman-tukey"):
        loo = leave_one_out(x, n, method="REML", transform=transform, ci="hksj")
        for i, row in enumerate(loo.records()):
            keep = np.arange(12) != i
            ref = pool_proportions(x[keep], n[keep], method="REML", transform=transform, ci="hksj")
            close(row["proportion"], ref.proportion.estimate, f"{transform} proportion")
            close(row["proportion_ci_low"], ref.proportion.ci.low, f"{transform} ci low")
            close(row["proportion_ci_high"], ref.proportion.ci.high, f"{transform} ci high")
            assert row["method"] == ref.method


def test_leave_one_out_glmm_and_two_studies_refit() -> None:
    glmm = leave_one_out([2, 5, 9, 4], [10, 12, 20, 15], method="GLMM")
    ref = pool_proportions([5, 9, 4], [12, 20, 15], method="GLMM")
    assert glmm.records()[0]["estimate"] == ref.model.estimate and glmm.method_used[0] == "GLMM"
    two = leave_one_out([2, 5], [10, 12], method="REML")
    assert len(two) == 2 and two.records()[0]["tau2"] is None  # one study left: no tau²


def test_leave_one_out_is_linear_at_ten_thousand_studies() -> None:
    rng = np.random.default_rng(8)
    x, n = random_case(rng, 10_000)
    loo = leave_one_out(x, n, method="REML", ci="hksj")  # k refits would take minutes
    assert len(loo) == 10_000 and np.all(np.isfinite(loo.estimate))
    spot = 4_321
    keep = np.arange(10_000) != spot
    ref = pool_proportions(x[keep], n[keep], method="REML", ci="hksj")
    close(loo.estimate[spot], ref.model.estimate, "estimate")
    close(loo.tau2[spot], ref.tau2, "tau2")


def test_zeroin_many_takes_the_steps_of_r_zeroin2() -> None:
    rng = np.random.default_rng(9)
    shifts = rng.uniform(0.01, 50, size=200)
    scales = rng.uniform(0.1, 10, size=200)

    def f(i: int, t: float) -> float:
        return scales[i] * (math.log1p(t) - math.log1p(shifts[i])) + 1e-3 * (t - shifts[i]) ** 3

    lows = np.zeros(200)
    highs = np.full(200, 100.0)
    f_low = np.array([f(i, 0.0) for i in range(200)])
    f_high = np.array([f(i, 100.0) for i in range(200)])
    roots, its = zeroin_many(
        lambda rows, t: np.array([f(int(i), float(v)) for i, v in zip(rows, t, strict=True)]),
        lows,
        highs,
        f_low,
        f_high,
        1.22e-4,
        100,
    )
    for i in range(200):
        root, it = r_zeroin2(lambda t, i=i: f(i, t), 0.0, 100.0, f_low[i], f_high[i], 1.22e-4, 100)
        assert roots[i] == root and its[i] == it  # the same arithmetic: identical, not close


def test_left_out_sums_equal_direct_sums() -> None:
    rng = np.random.default_rng(10)
    y, v = rng.normal(0, 1, 500), rng.uniform(0.01, 2, 500)
    sums = LeftOutSums(y, v)
    idx = rng.integers(0, 500, size=300)
    # clustered values (series around pivots) and scattered ones (summed directly)
    t = np.concatenate([0.4 + rng.normal(0, 1e-3, 200), rng.uniform(0, 30, 100)])
    got = sums.at(idx, t, {(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (3, 0), "log"})
    for m, (i, tm) in enumerate(zip(idx, t, strict=True)):
        keep = np.arange(500) != i
        u = 1 / (v[keep] + tm)
        for a, b in ((1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (3, 0)):
            expected = float(np.sum(u**a * y[keep] ** b))
            assert got[a, b][m] == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert got["log"][m] == pytest.approx(float(np.sum(np.log(v[keep] + tm))), rel=1e-13)


def test_study_columns_read_as_records() -> None:
    r = pool_proportions([0, 3, 9, 12], [10, 12, 20, 12], method="REML", labels=list("ABCD"))
    rows = list(r.studies)
    assert [s.label for s in rows] == list("ABCD") and r.studies[-1] == rows[-1]
    assert r.studies[1:3] == (rows[1], rows[2]) and len(r.studies) == 4
    for s in rows:
        assert (s.ci.low, s.ci.high) == clopper_pearson(s.events, s.total)
    assert r.studies.column("ci_low")[0] == 0.0 and r.studies.column("ci_high")[3] == 1.0
    copy = pickle.loads(pickle.dumps(r))
    assert copy.studies == r.studies and hash(copy.studies) == hash(r.studies)
    with pytest.raises(ValueError):
        r.studies.column("weight")[0] = 1.0  # read-only


@pytest.mark.parametrize("k", [15, 400, 10_000])
def test_the_tau2_shown_lies_in_the_interval_shown(k: int) -> None:
    rng = np.random.default_rng(k)
    x, n = random_case(rng, k)
    for method in ("REML", "ML", "PM", "DL"):
        r = pool_proportions(x, n, method=method, ci="hksj")
        shown = r.tau2_interval
        if r.tau2_interval_method is None:
            assert shown.low is None and any("does not contain" in note for note in r.notes)
        else:
            assert shown.low is not None and shown.high is not None and r.tau2 is not None
            assert shown.low <= r.tau2 <= shown.high, (method, r.tau2, shown)
            expected = "profile likelihood" if method in ("REML", "ML") else "Q-profile"
            assert r.tau2_interval_method == expected
