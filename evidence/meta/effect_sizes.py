"""Study-level effect sizes and back-transformations, written to match metafor 3.8-1 exactly.

Each function reproduces one metafor routine so that a number shown on the dashboard can be
traced to the R call that a statistician would run to check it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import distributions

#: Continuity correction added to every cell of a study with a zero (or full) cell.
#: metafor ``escalc(add=1/2, to="only0")`` default (Haldane 1940; Cochrane Handbook v5.1 §16.9.2).
CONTINUITY_CORRECTION = 0.5

#: Confidence level of the per-study Clopper-Pearson intervals (metafor ``level=95``). The pooled
#: intervals have the same 95% level, but through critical values taken at the literal 0.025 in
#: heterogeneity.py (``Z_CRIT``, t and chi² quantiles): deriving that tail as (1 - LEVEL) / 2
#: gives 0.025000000000000022 and moves the last digit away from R's qnorm(0.975).
LEVEL = 0.95

FloatArray = NDArray[np.float64]


def as_counts(events: ArrayLike, totals: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate counts once, so every estimator can trust 0 <= x <= n and n > 0."""
    x = np.asarray(events, dtype=float).ravel()
    n = np.asarray(totals, dtype=float).ravel()
    if x.shape != n.shape:
        raise ValueError(f"events ({x.size}) and totals ({n.size}) differ in length")
    if x.size and (
        not np.all(np.isfinite(x))
        or not np.all(np.isfinite(n))
        or np.any(x < 0)
        or np.any(n <= 0)
        or np.any(x > n)
        or np.any(x != np.round(x))
        or np.any(n != np.round(n))
    ):
        raise ValueError(
            "events and totals must be whole numbers with 0 <= events <= totals, totals > 0"
        )
    return x, n


def logit_proportion(x: FloatArray, n: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Logit of a proportion and its variance, metafor ``escalc(measure="PLO")``.

    The 1/2 correction is added only to studies with 0 or n events (``to="only0"``), which
    is why a corrected study's yi differs from logit(x/n).
    """
    zero = (x == 0) | (x == n)
    xa = np.where(zero, x + CONTINUITY_CORRECTION, x)
    ma = np.where(zero, n - x + CONTINUITY_CORRECTION, n - x)
    na = xa + ma
    p = xa / na
    yi = np.log(p / (1 - p))
    vi = 1 / xa + 1 / ma
    return yi, vi


def freeman_tukey(x: FloatArray, n: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Freeman-Tukey double arcsine, metafor ``escalc(measure="PFT")`` (no correction, add=0).

    metafor keeps the 1/2 factor, so yi is on the [0, pi/2] scale and vi = 1/(4n+2).
    """
    yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
    vi = 1 / (4 * n + 2)
    return yi, vi


def ilogit(z: float | None) -> float | None:
    """Inverse logit (metafor ``transf.ilogit``), None-preserving."""
    if z is None:
        return None
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def pft_value(p: float, n: float) -> float:
    """Freeman-Tukey transform of a proportion at sample size n (metafor ``transf.pft``)."""
    x = p * n
    return 0.5 * (math.asin(math.sqrt(x / (n + 1))) + math.asin(math.sqrt((x + 1) / (n + 1))))


def harmonic_mean(n: ArrayLike) -> float:
    """Harmonic mean of the sample sizes: the single n that ``transf.ipft.hm`` uses."""
    arr = np.asarray(n, dtype=float)
    return float(1.0 / np.mean(1.0 / arr))


def ipft_hm(z: float | None, n_hm: float) -> float | None:
    """Inverse Freeman-Tukey (Miller 1978) at the harmonic-mean n, metafor ``transf.ipft.hm``.

    Values outside the transform's range are clamped to 0 or 1 exactly as metafor does; this
    clamping is one reason Schwarzer et al. (2019) call the back-transform misleading.
    """
    if z is None:
        return None
    if z > pft_value(1.0, n_hm):
        return 1.0
    if z < pft_value(0.0, n_hm):
        return 0.0
    s = math.sin(2 * z)
    c = math.cos(2 * z)
    sign = (c > 0) - (c < 0)
    try:
        inner = 1 - (s + (s - 1 / s) / n_hm) ** 2
        val = 0.5 * (1 - sign * math.sqrt(inner))
    except (ValueError, ZeroDivisionError):
        return None  # metafor returns NA here; we never return NaN
    return val if math.isfinite(val) else None


def back_transform(z: float | None, transform: str, n_harmonic: float | None) -> float | None:
    """A model-scale value back on the proportion scale: ilogit, or ``transf.ipft.hm`` at the
    harmonic-mean n for Freeman-Tukey. None and non-finite values give None, never NaN.

    The one back-transform for pooled estimates, intervals and fitted lines, so a proportion
    shown anywhere is computed the same way.
    """
    if z is None:
        return None
    z = float(z)
    if not math.isfinite(z):
        return None
    if transform == "logit":
        return ilogit(z)
    return ipft_hm(z, n_harmonic if n_harmonic is not None else math.nan)


def clopper_pearson(x: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Exact binomial CI (Clopper & Pearson 1934), as R ``binom.test`` / statsmodels "beta".

    Shown per study because it needs no continuity correction and stays valid at 0 events.
    """
    alpha = 1 - level
    low = 0.0 if x == 0 else float(distributions.beta_ppf(alpha / 2, x, n - x + 1))
    high = 1.0 if x == n else float(distributions.beta_ppf(1 - alpha / 2, x + 1, n - x))
    return low, high


def clopper_pearson_many(
    x: FloatArray, n: FloatArray, level: float = LEVEL
) -> tuple[FloatArray, FloatArray]:
    """`clopper_pearson` of every study at once (the same numbers, no per-study Python)."""
    alpha = 1 - level
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    zero, full = x == 0, x == n
    # Shapes kept valid where the limit is fixed (0 or 1), so betaincinv never sees a 0 shape.
    low = distributions.beta_ppf_many(alpha / 2, np.where(zero, 1.0, x), n - x + 1)
    high = distributions.beta_ppf_many(1 - alpha / 2, x + 1, np.where(full, 1.0, n - x))
    return np.where(zero, 0.0, low), np.where(full, 1.0, high)


def two_by_two(
    events_a: ArrayLike, totals_a: ArrayLike, events_b: ArrayLike, totals_b: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Turn two arms' counts into the 2x2 cells ai, bi, ci, di that metafor uses."""
    ai, n1 = as_counts(events_a, totals_a)
    ci, n2 = as_counts(events_b, totals_b)
    if ai.shape != ci.shape:
        raise ValueError("both arms need the same number of studies")
    return ai, n1 - ai, ci, n2 - ci


def log_ratio(
    measure: str,
    ai: FloatArray,
    bi: FloatArray,
    ci: FloatArray,
    di: FloatArray,
    drop00: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Log odds ratio or log risk ratio and variance, metafor ``escalc(measure="OR"/"RR")``.

    add=1/2 to all four cells of studies with any zero cell (``to="only0"``). With
    ``drop00=True`` (what ``rma.mh`` passes to escalc) studies with no events or only events in
    both arms give NaN, i.e. they are left out of the heterogeneity test.
    """
    zero = (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)
    add = np.where(zero, CONTINUITY_CORRECTION, 0.0)
    a, b, c, d = ai + add, bi + add, ci + add, di + add
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    if measure == "OR":
        yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
        vi = 1 / a + 1 / b + 1 / c + 1 / d
    elif measure == "RR":
        yi = np.log(p1) - np.log(p2)
        vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
    else:
        raise ValueError(f"measure must be 'OR' or 'RR', not {measure!r}")
    if drop00:
        both = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))
        yi = np.where(both, np.nan, yi)
        vi = np.where(both, np.nan, vi)
    return yi, vi
