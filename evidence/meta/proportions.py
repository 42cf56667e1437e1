"""Pooling single proportions (response, toxicity, incidence) across single-arm cohorts.

The binomial-normal GLMM is the primary model (Stijnen et al. 2010; Lin & Chu 2020; see the
project's methods document, docs/methods.md); when it fails to converge the logit
inverse-variance REML fit is shown instead and the reason is recorded in ``fallback_reason`` —
never silently. Inverse-variance fits reproduce ``metafor::rma.uni`` 3.8-1 (see
``heterogeneity.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from . import distributions
from .effect_sizes import (
    as_counts,
    back_transform,
    freeman_tukey,
    harmonic_mean,
    ilogit,
    logit_proportion,
)
from .heterogeneity import Z_CRIT, RmaFit, fit_rma_or_dl, predict, tau2_ci_qprofile
from .options import POOL_METHODS as POOL_METHODS  # re-exported: bench/bench_meta.py reads it
from .options import TEST_FOR_CI, study_labels, validate_pooling
from .results import Interval, LeaveOneOutRow, PoolResult, QTest, Scaled, clean, study_estimates

if TYPE_CHECKING:  # glmm itself is imported at the first GLMM fit (see pool_proportions)
    from .glmm import GlmmFit

NOTE_NO_STUDIES = "No studies: nothing to pool."
# The model-scale interval of a single study is a Wald interval (rma with k = 1); the dashboard
# shows the study's exact (Clopper-Pearson) interval instead, so the note names neither.
NOTE_ONE_STUDY = "Only one study: nothing is pooled and heterogeneity cannot be estimated."
NOTE_FEW = (
    "Fewer than 3 studies: tau², I² and the prediction interval are very imprecise "
    "(Cochrane Handbook ch. 10)."
)
NOTE_FEW_PI = (
    "Fewer than 5 studies: the prediction interval rests on a τ² estimated from few studies and "
    "is itself uncertain."
)
NOTE_ALL_ZERO = (
    "All studies have 0 events: the logit estimate rests on the 0.5 continuity correction "
    "(metafor escalc to='only0'); read it as 'below about 1/(2n)', not as a rate."
)
NOTE_ALL_EVENTS = (
    "Every patient in every study had the event: the logit estimate rests on the 0.5 "
    "continuity correction (metafor escalc to='only0')."
)
NOTE_PFT = (
    "Freeman-Tukey back-transformation uses the harmonic mean of the sample sizes (metafor "
    "transf.ipft.hm) and can be seriously misleading (Schwarzer et al. 2019, Res Synth "
    "Methods 10:476); show it only as a sensitivity analysis next to the GLMM."
)
NOTE_GLMM_CI = (
    "HKSJ is not defined for the binomial-normal GLMM (metafor rma.glmm); a z-based "
    "interval is shown."
)
NOTE_HKSJ_ZERO = (
    "All study estimates are identical, so the HKSJ scale factor is 0 and the HKSJ interval "
    "collapses to a point (as in metafor); use 'hksj-adhoc' or 'z' for a usable interval."
)
NOTE_GLMM_TRANSFORM = "The GLMM works on the logit scale; the Freeman-Tukey option was ignored."
NOTE_ZERO_STUDIES = "{n} of {k} studies have 0 events; the logit model adds 0.5 to those studies."


def _model_values(x: np.ndarray, n: np.ndarray, transform: str) -> tuple[np.ndarray, np.ndarray]:
    if transform == "logit":
        return logit_proportion(x, n)
    return freeman_tukey(x, n)


def _data_notes(x: np.ndarray, n: np.ndarray, transform: str) -> list[str]:
    notes: list[str] = []
    k = x.size
    if k == 1:
        notes.append(NOTE_ONE_STUDY)
    elif k < 3:
        notes.append(NOTE_FEW)
    elif k < 5:
        notes.append(NOTE_FEW_PI)
    if k and np.all(x == 0):
        notes.append(NOTE_ALL_ZERO)
    elif k and np.all(x == n):
        notes.append(NOTE_ALL_EVENTS)
    elif transform == "logit" and np.any(x == 0):
        notes.append(NOTE_ZERO_STUDIES.format(n=int(np.sum(x == 0)), k=k))
    if transform == "freeman-tukey":
        notes.append(NOTE_PFT)
    return notes


def _from_single(
    labels: list[str],
    x: np.ndarray,
    n: np.ndarray,
    method: str,
    transform: str,
    notes: list[str],
) -> PoolResult:
    """k = 1: the study's own model-scale Wald interval, as ``rma(..., test="z")`` with k = 1."""
    yi, vi = _model_values(x, n, transform)
    n_hm = harmonic_mean(n) if transform == "freeman-tukey" else None
    est = float(yi[0])
    se = math.sqrt(float(vi[0]))
    model = Scaled(est, Interval(est - Z_CRIT * se, est + Z_CRIT * se))
    zval = est / se
    return PoolResult(
        proportion=model.map(lambda z: back_transform(z, transform, n_hm)),
        model=model,
        se=se,
        statistic=zval,
        p_value=float(2 * distributions.norm_sf(abs(zval))),
        df=None,
        tau2=None,
        tau2_se=None,
        i2=None,
        h2=None,
        heterogeneity=QTest(),
        k=1,
        n_total=int(n.sum()),
        events_total=int(x.sum()),
        method="single study",
        method_requested=method,
        transform=transform,
        ci_method="z",
        converged=True,
        fallback_reason=None,
        notes=tuple(notes),
        studies=study_estimates(labels, x, n, yi, vi, np.array([100.0])),
        n_harmonic=n_hm,
    )


def _from_rma(
    fit: RmaFit,
    labels: list[str],
    x: np.ndarray,
    n: np.ndarray,
    yi: np.ndarray,
    vi: np.ndarray,
    method_requested: str,
    transform: str,
    ci: str,
    notes: list[str],
    converged: bool,
    fallback_reason: str | None,
) -> PoolResult:
    n_hm = harmonic_mean(n) if transform == "freeman-tukey" else None
    _pred, _se, _lo, _hi, pi_lo, pi_hi = predict(fit, np.ones((1, 1)))
    if fit.test != "z" and fit.s2w == 0:
        notes = [*notes, NOTE_HKSJ_ZERO]
    qp = tau2_ci_qprofile(yi, vi, None, fit)
    model = Scaled(
        clean(fit.beta[0]),
        Interval(clean(fit.ci_lb[0]), clean(fit.ci_ub[0])),
        Interval(clean(pi_lo[0]), clean(pi_hi[0])),
    )
    return PoolResult(
        proportion=model.map(lambda z: back_transform(z, transform, n_hm)),
        model=model,
        se=clean(fit.se[0]),
        statistic=clean(fit.zval[0]),
        p_value=clean(fit.pval[0]),
        df=fit.ddf,
        tau2=fit.tau2,
        tau2_se=clean(fit.se_tau2),
        i2=fit.i2,
        h2=fit.h2,
        heterogeneity=QTest(fit.qe, fit.qe_df, fit.qe_p),
        k=fit.k,
        n_total=int(n.sum()),
        events_total=int(x.sum()),
        method=fit.method,
        method_requested=method_requested,
        transform=transform,
        ci_method=ci,
        converged=converged,
        fallback_reason=fallback_reason,
        notes=tuple(notes),
        studies=study_estimates(labels, x, n, yi, vi, fit.weights),
        n_harmonic=n_hm,
        tau2_ci=Interval() if qp is None else Interval(clean(qp.tau2_lb), clean(qp.tau2_ub)),
        i2_ci=Interval() if qp is None else Interval(clean(qp.i2_lb), clean(qp.i2_ub)),
    )


def _fit_iv(
    labels: list[str],
    x: np.ndarray,
    n: np.ndarray,
    method: str,
    method_requested: str,
    transform: str,
    ci: str,
    notes: list[str],
    converged: bool = True,
    fallback_reason: str | None = None,
) -> PoolResult:
    yi, vi = _model_values(x, n, transform)
    fit, reason = fit_rma_or_dl(yi, vi, method=method, test=TEST_FOR_CI[ci])
    if reason is not None:
        notes, converged, fallback_reason = [*notes, reason], False, reason
    return _from_rma(
        fit,
        labels,
        x,
        n,
        yi,
        vi,
        method_requested,
        transform,
        ci,
        notes,
        converged,
        fallback_reason,
    )


def _from_glmm(
    g: GlmmFit, labels: list[str], x: np.ndarray, n: np.ndarray, notes: list[str]
) -> PoolResult:
    """Wrap a converged GLMM fit in a PoolResult.

    CI and PI as metafor ``rma.glmm`` + ``predict``: mu ± z·se and mu ± z·sqrt(se² + tau²).
    rma.glmm has no study weights; the ones shown are inverse-variance weights 1/(vi + tau²)
    with the GLMM's tau², marked approximate in the notes.
    """
    mu = float(g.estimate)
    se = float(g.se)
    tau2 = float(g.tau2)
    half_pi = Z_CRIT * math.sqrt(se**2 + tau2)
    model = Scaled(
        clean(mu),
        Interval(clean(mu - Z_CRIT * se), clean(mu + Z_CRIT * se)),
        Interval(clean(mu - half_pi), clean(mu + half_pi)),
    )
    zval = mu / se if se > 0 else None
    yi, vi = logit_proportion(x, n)
    w = 1 / (vi + tau2)
    weights = 100 * w / w.sum()
    notes = [
        *notes,
        "GLMM study weights are approximate (inverse-variance with the GLMM tau²); "
        "metafor gives none for rma.glmm.",
    ]
    return PoolResult(
        proportion=model.map(ilogit),
        model=model,
        se=clean(se),
        statistic=clean(zval),
        p_value=None if zval is None else float(2 * distributions.norm_sf(abs(zval))),
        df=None,
        tau2=clean(tau2),
        tau2_se=None,
        i2=clean(g.i2),
        h2=clean(g.h2),
        heterogeneity=QTest(clean(g.qe_wald), int(g.qe_df), clean(g.qe_wald_p)),
        k=int(x.size),
        n_total=int(n.sum()),
        events_total=int(x.sum()),
        method="GLMM",
        method_requested="GLMM",
        transform="logit",
        ci_method="z",
        converged=True,
        fallback_reason=None,
        notes=tuple(notes),
        studies=study_estimates(labels, x, n, yi, vi, weights),
        lrt=QTest(clean(g.qe_lrt), int(g.qe_df), clean(g.qe_lrt_p)),
    )


def pool_proportions(
    events: ArrayLike,
    totals: ArrayLike,
    method: str = "GLMM",
    transform: str = "logit",
    ci: str = "z",
    labels: Sequence[str] | None = None,
) -> PoolResult:
    """Pool single proportions across cohorts.

    method: "GLMM" (binomial-normal, ML; falls back visibly to logit REML when it does not
    converge), or an inverse-variance tau² estimator "REML", "DL", "ML", "PM" (rma.uni).
    transform: "logit" (escalc PLO) or "freeman-tukey" (escalc PFT; sensitivity only).
    ci: "z" (Wald), "hksj" (metafor test="knha") or "hksj-adhoc" (test="adhoc", variance
    factor truncated at 1 as Röver, Knapp & Friede 2015 recommend for few, unequal studies).
    """
    validate_pooling(method, transform, ci)
    x, n = as_counts(events, totals)
    k = x.size
    if k == 0:
        return PoolResult.empty(method, transform, ci, (NOTE_NO_STUDIES,))
    labs = study_labels(labels, k)

    if method == "GLMM":
        pre: list[str] = []
        if transform != "logit":
            pre.append(NOTE_GLMM_TRANSFORM)
        notes = _data_notes(x, n, "logit") + pre
        if k == 1:
            return _from_single(labs, x, n, method, "logit", notes)
        ci_glmm_note = [NOTE_GLMM_CI] if ci != "z" else []
        # Imported at the first GLMM fit rather than with the engine, so that a cold start of
        # the dashboard draws its first page before the GLMM machinery loads.
        from .glmm import fit_glmm_logit

        try:
            g = fit_glmm_logit(x.astype(int), n.astype(int))
        except Exception as err:  # it reports failures in GlmmFit; anything else must not crash
            g = None
            failure = f"GLMM raised {type(err).__name__}: {err}"
        else:
            failure = g.message or "GLMM did not converge"
        if g is not None and g.converged:
            return _from_glmm(g, labs, x, n, notes + ci_glmm_note)
        reason = f"{failure}; logit inverse-variance REML shown instead."
        return _fit_iv(labs, x, n, "REML", "GLMM", "logit", ci, [*notes, reason], False, reason)

    notes = _data_notes(x, n, transform)
    if k == 1:
        return _from_single(labs, x, n, method, transform, notes)
    return _fit_iv(labs, x, n, method, method, transform, ci, notes)


def leave_one_out(
    events: ArrayLike,
    totals: ArrayLike,
    method: str = "REML",
    transform: str = "logit",
    ci: str = "z",
    labels: Sequence[str] | None = None,
) -> tuple[LeaveOneOutRow, ...]:
    """Refit with each study left out in turn (metafor ``leave1out``).

    Each refit is a full ``pool_proportions`` call, so a Freeman-Tukey row back-transforms with
    the harmonic mean n of the studies it contains.
    """
    validate_pooling(method, transform, ci)
    x, n = as_counts(events, totals)
    labs = study_labels(labels, x.size)
    rows = []
    for i in range(x.size):
        keep = np.arange(x.size) != i
        res = pool_proportions(
            x[keep],
            n[keep],
            method=method,
            transform=transform,
            ci=ci,
            labels=[lab for j, lab in enumerate(labs) if j != i],
        )
        rows.append(LeaveOneOutRow(omitted=labs[i], result=res))
    return tuple(rows)
