"""The few distribution functions the engine needs, from scipy.special.

scipy.stats computes these same special functions underneath (its norm, t, chi2, f and beta
`_sf`/`_ppf` methods call them), but importing scipy.stats is a noticeable part of every cold
start of the dashboard, and scipy.special is already loaded for the GLMM. Each wrapper names the
R function it stands for, since metafor's numbers are the reference.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special


def norm_sf(x: ArrayLike) -> np.ndarray:
    """pnorm(x, lower.tail = FALSE)."""
    return special.ndtr(-np.asarray(x, dtype=float))


def norm_isf(p: float) -> float:
    """qnorm(p, lower.tail = FALSE)."""
    return float(-special.ndtri(p))


def t_sf(x: ArrayLike, df: float) -> np.ndarray:
    """pt(x, df, lower.tail = FALSE)."""
    return special.stdtr(df, -np.asarray(x, dtype=float))


def t_isf(p: float, df: float) -> float:
    """qt(p, df, lower.tail = FALSE)."""
    return float(-special.stdtrit(df, p))


def chi2_sf(x: float, df: float) -> float:
    """pchisq(x, df, lower.tail = FALSE)."""
    return float(special.chdtrc(df, x))


def chi2_sf_many(x: ArrayLike, df: float) -> np.ndarray:
    """pchisq(x, df, lower.tail = FALSE) for an array of x."""
    return special.chdtrc(df, np.asarray(x, dtype=float))


def chi2_isf(p: float, df: float) -> float:
    """qchisq(p, df, lower.tail = FALSE)."""
    return float(special.chdtri(df, p))


def chi2_ppf(q: float, df: float) -> float:
    """qchisq(q, df): as scipy.stats.chi2.ppf, 2 * gammaincinv(df / 2, q)."""
    return float(2.0 * special.gammaincinv(df / 2.0, q))


def f_sf(x: float, dfn: float, dfd: float) -> float:
    """pf(x, dfn, dfd, lower.tail = FALSE)."""
    return float(special.fdtrc(dfn, dfd, x))


def beta_ppf(q: float, a: float, b: float) -> float:
    """qbeta(q, a, b): the Clopper-Pearson limits."""
    return float(special.betaincinv(a, b, q))


def beta_ppf_many(q: float, a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """qbeta(q, a, b) for arrays of shapes: the same values as ``beta_ppf``, one call."""
    return special.betaincinv(np.asarray(a, dtype=float), np.asarray(b, dtype=float), q)
