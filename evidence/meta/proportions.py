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
    ipft_hm,
    logit_proportion,
)
from .heterogeneity import (
    Z_CRIT,
    RmaFit,
    Tau2Interval,
    fit_rma_or_dl,
    predict,
    tau2_ci_profile,
    tau2_ci_qprofile,
)
from .leaveout import leave1out
from .options import POOL_METHODS as POOL_METHODS  # re-exported: bench/bench_meta.py reads it
from .options import TEST_FOR_CI, study_labels, validate_pooling
from .results import Interval, LeaveOneOut, PoolResult, QTest, Scaled, clean, study_estimates

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
    labels: Sequence[str],
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
    labels: Sequence[str],
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
    shown, shown_method, note = _own_tau2_interval(yi, vi, fit, qp)
    if note:
        notes = [*notes, note]
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
        tau2_interval=shown,
        tau2_interval_method=shown_method,
    )


NOTE_TAU2_OUTSIDE = (
    "The Q-profile 95% CI of τ² ({low}–{high}) does not contain the {method} estimate "
    "({tau2}): at this number of studies the estimators of τ² disagree beyond their precision "
    "(the data are not exactly normal-normal), so no interval is shown beside τ²."
)


def _own_tau2_interval(
    yi: np.ndarray, vi: np.ndarray, fit: RmaFit, qp: Tau2Interval | None
) -> tuple[Interval, str | None, str | None]:
    """The CI to print beside tau² (see PoolResult.tau2_interval), its name, and a note when
    there is none because the estimator's interval does not contain the estimate."""
    if fit.method in ("REML", "ML"):
        found, name = tau2_ci_profile(yi, vi, None, fit), "profile likelihood"
    else:
        found, name = qp, "Q-profile"
    if found is None:
        return Interval(), None, None
    low, high = clean(found.tau2_lb), clean(found.tau2_ub)
    if low is not None and high is not None and low <= fit.tau2 <= high:
        return Interval(low, high), name, None
    note = NOTE_TAU2_OUTSIDE.format(
        low=_short(low), high=_short(high), method=fit.method, tau2=_short(fit.tau2)
    )
    return Interval(), None, note


def _short(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g}"


def _fit_iv(
    labels: Sequence[str],
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
) -> LeaveOneOut:
    """Pool with each study left out in turn (metafor ``leave1out``), one row per study.

    Inverse-variance methods: every left-out fit replays metafor's iterations, all k together
    from sums over the studies each keeps (`leaveout.leave1out`): O(k) in time and memory, no k
    refits. Where the method fails for a fit, that row is DerSimonian-Laird (``method_used``),
    as `pool_proportions` would show. The GLMM (for which metafor has no leave1out) and k <= 2
    (a left-out "pool" of one study) are k separate fits. A Freeman-Tukey row back-transforms
    with the harmonic mean n of the studies it keeps.
    """
    validate_pooling(method, transform, ci)
    x, n = as_counts(events, totals)
    k = x.size
    labs = study_labels(labels, k)
    if method == "GLMM" or k < 3:
        return _leave_one_out_by_refits(x, n, method, transform, ci, labs)
    yi, vi = _model_values(x, n, transform)
    fits = leave1out(yi, vi, method, TEST_FOR_CI[ci])
    if transform == "logit":
        back = [_ilogit_many(v) for v in (fits.estimate, fits.ci_low, fits.ci_high)]
    else:
        inv_n = 1 / n
        n_hm = (k - 1) / (float(np.sum(inv_n)) - inv_n)  # harmonic mean n without each study
        back = [
            np.array([_nan(ipft_hm(float(z), float(h))) for z, h in zip(v, n_hm, strict=True)])
            for v in (fits.estimate, fits.ci_low, fits.ci_high)
        ]
    notes = []
    if fits.fell_back.any():
        notes.append(
            f"{method} did not converge in {int(fits.fell_back.sum())} of the {k} left-out fits; "
            "DerSimonian-Laird is shown in those rows."
        )
    return LeaveOneOut(
        omitted=tuple(labs),
        method=method,
        transform=transform,
        ci_method=ci,
        estimate=fits.estimate,
        se=fits.se,
        statistic=fits.statistic,
        p_value=fits.p_value,
        ci_low=fits.ci_low,
        ci_high=fits.ci_high,
        proportion=back[0],
        proportion_ci_low=back[1],
        proportion_ci_high=back[2],
        q=fits.q,
        q_p=fits.q_p,
        tau2=fits.tau2,
        i2=fits.i2,
        h2=fits.h2,
        rstudent=fits.rstudent,
        method_used=tuple("DL" if f else method for f in fits.fell_back.tolist()),
        df=fits.df,
        q_df=fits.q_df,
        notes=tuple(notes),
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _ilogit_many(z: np.ndarray) -> np.ndarray:
    """`effect_sizes.ilogit` elementwise (the same arithmetic; NaN stays NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.minimum(z, 0.0))
        return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.maximum(z, 0.0))), e / (1.0 + e))


def _leave_one_out_by_refits(
    x: np.ndarray, n: np.ndarray, method: str, transform: str, ci: str, labs: Sequence[str]
) -> LeaveOneOut:
    """k separate pools (the GLMM; or k <= 2, where a left-out pool holds one study)."""
    columns: dict[str, list[float]] = {name: [] for name in LeaveOneOut.COLUMNS}
    used: list[str] = []
    yi, vi = _model_values(x, n, "logit" if method == "GLMM" else transform)
    for i in range(x.size):
        keep = np.arange(x.size) != i
        r = pool_proportions(x[keep], n[keep], method=method, transform=transform, ci=ci)
        values = {
            "estimate": r.model.estimate,
            "se": r.se,
            "statistic": r.statistic,
            "p_value": r.p_value,
            "ci_low": r.model.ci.low,
            "ci_high": r.model.ci.high,
            "proportion": r.proportion.estimate,
            "proportion_ci_low": r.proportion.ci.low,
            "proportion_ci_high": r.proportion.ci.high,
            "q": r.heterogeneity.statistic,
            "q_p": r.heterogeneity.p_value,
            "tau2": r.tau2,
            "i2": r.i2,
            "h2": r.h2,
        }
        if r.k and r.model.estimate is not None and r.se is not None:  # rstudent, z-based
            spread = float(vi[i]) + r.se**2 + (r.tau2 or 0.0)
            values["rstudent"] = (float(yi[i]) - r.model.estimate) / math.sqrt(spread)
        for name in LeaveOneOut.COLUMNS:
            columns[name].append(_nan(values.get(name)))
        used.append(r.method)
    q_df = x.size - 2 if x.size >= 3 else None
    return LeaveOneOut(
        omitted=tuple(labs),
        method=method,
        transform=transform,
        ci_method=ci,
        **{name: np.array(values) for name, values in columns.items()},  # type: ignore[arg-type]
        method_used=tuple(used),
        df=x.size - 2 if ci != "z" and method != "GLMM" and x.size >= 3 else None,
        q_df=q_df,
        notes=(),
    )
