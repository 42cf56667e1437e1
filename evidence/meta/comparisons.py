"""Two-group comparisons (odds ratio, risk ratio), e.g. ICANS with vs without prophylaxis.

Mantel-Haenszel is the default for rare events: it pools without any continuity correction
(Cochrane Handbook v5.1 §16.9; docs/methods.md). Inverse-variance random effects are offered to
reproduce published analyses. Both follow metafor 3.8-1 (``rma.mh``, ``rma.uni``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import distributions
from .effect_sizes import log_ratio, two_by_two
from .heterogeneity import Z_CRIT, fit_rma_or_dl, predict
from .options import CI_METHODS, TEST_FOR_CI, check_choice, study_labels
from .results import ComparisonResult, Interval, QTest, Scaled, StudyComparisons, clean

COMPARE_METHODS = ("MH", "REML", "DL")
MEASURES = ("OR", "RR")


def _exp(v: float | None) -> float | None:
    v = clean(v)
    if v is None:
        return None
    try:
        return math.exp(v)
    except OverflowError:
        return None


def _study_rows(
    labels: Sequence[str],
    ai: np.ndarray,
    bi: np.ndarray,
    ci: np.ndarray,
    di: np.ndarray,
    yi: np.ndarray,
    vi: np.ndarray,
    weights: np.ndarray | None,
) -> StudyComparisons:
    """Each study's counts, ratio and Wald 95% CI (exponentiated; None where yi or vi is not
    finite or the exponential overflows), as columns."""
    with np.errstate(over="ignore", invalid="ignore"):
        se = np.sqrt(vi)
        ratio, low, high = (np.exp(v) for v in (yi, yi - Z_CRIT * se, yi + Z_CRIT * se))
    known = np.isfinite(yi) & np.isfinite(vi)
    return StudyComparisons(
        labels,
        events_a=ai,
        total_a=ai + bi,
        events_b=ci,
        total_b=ci + di,
        ratio=np.where(np.isfinite(yi), ratio, np.nan),
        ci_low=np.where(known, low, np.nan),
        ci_high=np.where(known, high, np.nan),
        yi=yi,
        vi=vi,
        weight=np.full(len(labels), np.nan) if weights is None else weights,
    )


def mantel_haenszel(
    measure: str, ai: np.ndarray, bi: np.ndarray, ci: np.ndarray, di: np.ndarray
) -> dict[str, float | None]:
    """MH pooled log OR (Robins-Breslow-Greenland 1986 variance) or log RR (Greenland-Robins
    1985 variance), no continuity correction, exactly as ``rma.mh`` (add = c(1/2, 0))."""
    n1, n2 = ai + bi, ci + di
    nn = n1 + n2
    out: dict[str, float | None] = {"beta": None, "se": None, "cmh": None, "cmh_p": None}
    if measure == "OR":
        pi_ = ai / nn + di / nn
        qi = bi / nn + ci / nn
        ri = (ai / nn) * di
        si = (bi / nn) * ci
        r, s = float(ri.sum()), float(si.sum())
        if r > 0 and s > 0:
            out["beta"] = math.log(r / s)
            out["se"] = math.sqrt(
                0.5
                * (
                    float(np.sum(pi_ * ri)) / r**2
                    + float(np.sum(pi_ * si + qi * ri)) / (r * s)
                    + float(np.sum(qi * si)) / s**2
                )
            )
        xt, yt = ai + ci, bi + di
        if xt.sum() > 0 and yt.sum() > 0:
            # Cochran-Mantel-Haenszel test with continuity correction (rma.mh correct=TRUE)
            num = (abs(float(np.sum(ai - (n1 / nn) * xt))) - 0.5) ** 2
            den = float(np.sum((n1 / nn) * (n2 / nn) * (xt * (yt / (nn - 1)))))
            if den > 0:
                out["cmh"] = num / den
                out["cmh_p"] = float(distributions.chi2_sf(out["cmh"], 1))
        if out["beta"] is not None:
            out |= breslow_day_tarone(math.exp(out["beta"]), ai, bi, ci, di)
    else:
        r = float(np.sum(ai * (n2 / nn)))
        s = float(np.sum(ci * (n1 / nn)))
        if ai.sum() > 0 and ci.sum() > 0:
            out["beta"] = math.log(r / s)
            out["se"] = math.sqrt(
                float(np.sum((n1 / nn) * (n2 / nn) * (ai + ci) - (ai / nn) * ci)) / (r * s)
            )
    return out


def breslow_day_tarone(
    or_mh: float, ai: np.ndarray, bi: np.ndarray, ci: np.ndarray, di: np.ndarray
) -> dict[str, float | None]:
    """Breslow-Day (1980) test with Tarone's (1985) correction, as ``rma.mh`` computes them."""
    n1, n2 = ai + bi, ci + di
    nn = n1 + n2
    xt, yt = ai + ci, bi + di
    if or_mh == 1:
        n11 = (n1 / nn) * xt
    else:
        a = or_mh * (n1 + xt) + (n2 - xt)
        b = np.sqrt(a**2 - 4 * n1 * xt * or_mh * (or_mh - 1))
        n11 = (a - b) / (2 * (or_mh - 1))
    pos = (n11 > 0) & (xt > 0) & (yt > 0)
    k_pos = int(pos.sum())
    e11 = n11[pos]
    e12 = n1[pos] - e11
    e21 = xt[pos] - e11
    e22 = e11 - n1[pos] - xt[pos] + nn[pos]
    inv = 1 / (1 / e11 + 1 / e12 + 1 / e21 + 1 / e22)
    resid = ai[pos] - e11
    bd = max(0.0, float(np.sum(resid**2 / inv)))
    ta = max(0.0, bd - float(np.sum(resid)) ** 2 / float(np.sum(inv)))
    df = k_pos - 1
    return {
        "bd": bd,
        "ta": ta,
        "bd_df": float(df) if df > 0 else None,
        "bd_p": float(distributions.chi2_sf(bd, df)) if df > 0 else None,
        "ta_p": float(distributions.chi2_sf(ta, df)) if df > 0 else None,
    }


def compare_groups(
    events_a: ArrayLike,
    totals_a: ArrayLike,
    events_b: ArrayLike,
    totals_b: ArrayLike,
    measure: str = "OR",
    method: str = "MH",
    labels: Sequence[str] | None = None,
    ci: str = "z",
) -> ComparisonResult:
    """Pool OR or RR of group A vs group B across studies.

    ``method="MH"``: ``rma.mh`` — no correction for pooling; heterogeneity Q is Cochran's Q of
    the escalc log ratios (1/2 added to zero-cell studies, double-zero studies dropped) around
    the MH estimate, I² = (Q - df)/Q, as rma.mh reports. ``method="REML"/"DL"``:
    ``rma(measure=..., method=...)`` with escalc's add=1/2 to="only0" (double-zero studies kept,
    as escalc's drop00=FALSE default). ``ci`` applies to the inverse-variance methods only.
    """
    check_choice("measure", measure, MEASURES)
    check_choice("method", method, COMPARE_METHODS)
    check_choice("ci", ci, CI_METHODS)
    ai, bi, ci_, di = two_by_two(events_a, totals_a, events_b, totals_b)
    k = ai.size
    labs = study_labels(labels, k)
    notes: list[str] = []
    if k == 0:
        return ComparisonResult.empty(measure, method, ci, ("No studies: nothing to compare.",))
    if k == 1:
        notes.append("Only one study: its own comparison is shown; nothing is pooled.")
    elif k < 3:
        notes.append("Fewer than 3 studies: heterogeneity estimates are very imprecise.")
    double_zero = ((ai == 0) & (ci_ == 0)) | ((bi == 0) & (di == 0))
    if np.any(double_zero):
        notes.append(
            f"{int(double_zero.sum())} studies have no events (or only events) in both groups; "
            + (
                "they carry no information for the MH odds/risk ratio."
                if method == "MH"
                else "the inverse-variance model keeps them with 0.5 added to every cell."
            )
        )
    if method == "MH":
        return _mh_result(measure, labs, ai, bi, ci_, di, notes)
    return _iv_result(measure, method, ci, labs, ai, bi, ci_, di, notes)


def _mh_result(
    measure: str,
    labs: Sequence[str],
    ai: np.ndarray,
    bi: np.ndarray,
    ci_: np.ndarray,
    di: np.ndarray,
    notes: list[str],
) -> ComparisonResult:
    mh = mantel_haenszel(measure, ai, bi, ci_, di)
    beta, se = mh["beta"], mh["se"]
    yi, vi = log_ratio(measure, ai, bi, ci_, di, drop00=True)
    ok = np.isfinite(yi) & np.isfinite(vi)
    k_yi = int(ok.sum())
    q = q_p = i2 = h2 = None
    q_df: int | None = None
    if beta is None:
        notes.append(
            "The Mantel-Haenszel estimate does not exist (no events in one group across all "
            "studies)."
        )
    elif k_yi > 1:
        w = 1 / vi[ok]
        q = max(0.0, float(np.sum(w * (yi[ok] - beta) ** 2)))
        q_df = k_yi - 1
        q_p = float(distributions.chi2_sf(q, q_df))
        i2 = max(0.0, 100 * (q - q_df) / q) if q > 0 else 0.0
        h2 = q / q_df
    else:
        q, q_df, q_p, i2, h2 = 0.0, 0, 1.0, 0.0, 1.0
    zval = None if beta is None or not se else beta / se
    model = Scaled(
        beta,
        Interval()
        if beta is None or se is None
        else Interval(beta - Z_CRIT * se, beta + Z_CRIT * se),
    )
    # MH weights as metafor weights.rma.mh: OR b*c/N, RR c*n1/N (unadjusted counts)
    nn = ai + bi + ci_ + di
    raw = (bi / nn) * ci_ if measure == "OR" else (ci_ / nn) * (ai + bi)
    wts = 100 * raw / raw.sum() if raw.sum() > 0 else None
    odds = measure == "OR"
    bd_df = None if mh.get("bd_df") is None else int(mh["bd_df"] or 0)
    return ComparisonResult(
        measure=measure,
        method="MH",
        ratio=model.map(_exp),
        model=model,
        se=se,
        statistic=zval,
        p_value=None if zval is None else float(2 * distributions.norm_sf(abs(zval))),
        df=None,
        tau2=0.0 if beta is not None else None,
        i2=i2,
        h2=h2,
        heterogeneity=QTest(q, q_df, q_p),
        k=int(ai.size),
        ci_method="z",
        notes=tuple(notes),
        studies=_study_rows(labs, ai, bi, ci_, di, yi, vi, wts),
        cmh=QTest(mh["cmh"], None if mh["cmh"] is None else 1, mh["cmh_p"]) if odds else None,
        breslow_day=QTest(mh.get("bd"), bd_df, mh.get("bd_p")) if odds else None,
        tarone=QTest(mh.get("ta"), bd_df, mh.get("ta_p")) if odds else None,
    )


def _iv_result(
    measure: str,
    method: str,
    ci: str,
    labs: Sequence[str],
    ai: np.ndarray,
    bi: np.ndarray,
    ci_: np.ndarray,
    di: np.ndarray,
    notes: list[str],
) -> ComparisonResult:
    yi, vi = log_ratio(measure, ai, bi, ci_, di, drop00=False)
    k = int(yi.size)
    test = TEST_FOR_CI[ci] if k > 1 else "z"
    fit, reason = fit_rma_or_dl(yi, vi, method=method, test=test)
    if reason is not None:
        notes.append(reason)
    _p, _s, _l, _h, pi_lo, pi_hi = predict(fit, np.ones((1, 1)))
    single = k == 1
    model = Scaled(
        clean(fit.beta[0]),
        Interval(clean(fit.ci_lb[0]), clean(fit.ci_ub[0])),
        Interval() if single else Interval(clean(pi_lo[0]), clean(pi_hi[0])),
    )
    return ComparisonResult(
        measure=measure,
        method=fit.method,
        ratio=model.map(_exp),
        model=model,
        se=clean(fit.se[0]),
        statistic=clean(fit.zval[0]),
        p_value=clean(fit.pval[0]),
        df=fit.ddf,
        tau2=None if single else fit.tau2,
        i2=None if single else fit.i2,
        h2=None if single else fit.h2,
        heterogeneity=QTest() if single else QTest(fit.qe, fit.qe_df, fit.qe_p),
        k=k,
        ci_method=ci if k > 1 else "z",
        notes=tuple(notes),
        studies=_study_rows(labs, ai, bi, ci_, di, yi, vi, fit.weights),
    )
