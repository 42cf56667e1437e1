"""The engine's previous inverse-variance formulation, with dense k x k matrices, kept only in
the tests as a reference for the O(k) one (evidence/meta/heterogeneity.py).

This is heterogeneity.py as it stood before the O(k) rewrite (commit afe49e4), unchanged but for
this docstring and its imports: metafor's residual-maker P = W - W X (X'WX)^-1 X'W built as a
k x k matrix, as rma.uni builds it. It is O(k^3) in time and O(k^2) in memory: use it on a few
hundred studies at most.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evidence.meta import distributions

#: metafor ``rma.uni`` control defaults (R/rma.uni.r, ``con <- list(...)``).
TAU2_MIN = 0.0  # lower bound for tau²
TAU2_MAX = 100.0  # upper bound for PM's root search; raised to 10*mad(yi)^2 if larger
THRESHOLD = 1e-5  # Fisher scoring convergence threshold (ML, REML)
TOL = np.finfo(float).eps ** 0.25  # uniroot tolerance for PM; also the ll0check tolerance
MAXITER = 100  # iterations for Fisher scoring and uniroot
Z_CRIT = float(distributions.norm_isf(0.025))  # qnorm(0.975), 95% level

METHODS = ("DL", "REML", "ML", "PM", "EE")
TESTS = ("z", "knha", "adhoc")

FloatArray = NDArray[np.float64]


class FitError(RuntimeError):
    """The estimator failed where metafor would stop with an error (caller decides the fallback)."""


@dataclass(frozen=True)
class RmaFit:
    """What ``rma.uni`` returns that the dashboard uses (model scale)."""

    beta: FloatArray
    vb: FloatArray
    se: FloatArray
    zval: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    crit: float | None
    ddf: int | None
    tau2: float
    se_tau2: float | None
    qe: float
    qe_df: int
    qe_p: float
    i2: float
    h2: float
    vt: float | None  # "typical" within-study variance, (k-p)/tr(P), used by I² and H²
    qm: float | None
    qm_df: tuple[int, int | None]
    qm_p: float | None
    weights: FloatArray  # percent
    k: int
    p: int
    method: str
    test: str
    s2w: float
    iterations: int


# ---------------------------------------------------------------------------------------------
# R's Brent root finder, so that PM stops exactly where metafor's uniroot() stops.
# ---------------------------------------------------------------------------------------------


def r_zeroin2(
    f: Callable[[float], float],
    ax: float,
    bx: float,
    fa: float,
    fb: float,
    tol: float,
    maxit: int,
) -> tuple[float, int]:
    """Port of R ``R_zeroin2`` (stats/src/zeroin.c); returns (root, iterations, -1 if failed)."""
    eps = np.finfo(float).eps
    a, b = ax, bx
    c, fc = a, fa
    left = maxit + 1
    if fa == 0.0:
        return a, 0
    if fb == 0.0:
        return b, 0
    while left:
        left -= 1
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b, maxit + 1 - left
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b, -1


# ---------------------------------------------------------------------------------------------
# Building blocks shared by the estimators
# ---------------------------------------------------------------------------------------------


def _p_matrix(x: FloatArray, wi: FloatArray) -> FloatArray:
    """P = W - W X (X'WX)^-1 X'W, the residual-maker metafor uses for every Q-type quantity."""
    w = np.diag(wi)
    xtwx_inv = np.linalg.inv(x.T @ w @ x)
    return w - w @ x @ xtwx_inv @ x.T @ w


def _r_mad(y: FloatArray) -> float:
    """R ``mad()``: median absolute deviation scaled by 1.4826."""
    med = np.median(y)
    return float(1.4826 * np.median(np.abs(y - med)))


def tau2_dl(ymc: FloatArray, vi: FloatArray, x: FloatArray) -> tuple[float, FloatArray]:
    """DerSimonian & Laird (1986) method of moments, generalised to meta-regression (rma.uni)."""
    k, p = x.shape
    big_p = _p_matrix(x, 1 / vi)
    rss = float(ymc @ big_p @ ymc)
    return (rss - (k - p)) / np.trace(big_p), big_p


def tau2_he(ymc: FloatArray, vi: FloatArray, x: FloatArray) -> float:
    """Hedges (1983) unweighted moment estimator; metafor's start value for ML/REML."""
    k, p = x.shape
    big_p = np.eye(k) - x @ np.linalg.inv(x.T @ x) @ x.T
    rss = float(ymc @ big_p @ ymc)
    return (rss - float(np.trace(big_p @ np.diag(vi)))) / (k - p)


def _loglik(y: FloatArray, vi: FloatArray, x: FloatArray, tau2: float, reml: bool) -> float:
    """(Restricted) log-likelihood as in rma.uni's ll0check (without the |X'X| term)."""
    k, p = x.shape
    wi = 1 / (vi + tau2)
    w = np.diag(wi)
    xtwx = x.T @ w @ x
    beta = np.linalg.solve(xtwx, x.T @ w @ y)
    rss = float(np.sum(wi * (y - x @ beta) ** 2))
    if reml:
        logdet = float(np.linalg.slogdet(xtwx)[1])
        return (
            -0.5 * (k - p) * math.log(2 * math.pi)
            - 0.5 * float(np.sum(np.log(vi + tau2)))
            - 0.5 * logdet
            - 0.5 * rss
        )
    return -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vi + tau2))) - 0.5 * rss


def tau2_fisher(ymc: FloatArray, vi: FloatArray, x: FloatArray, reml: bool) -> tuple[float, int]:
    """ML / REML by Fisher scoring from the HE start, step-halving at 0 (rma.uni; Viechtbauer 2005).

    Raises FitError after MAXITER iterations, where metafor stops with an error.
    """
    tau2 = max(0.0, tau2_he(ymc, vi, x), TAU2_MIN)
    change = THRESHOLD + 1
    it = 0
    while change > THRESHOLD:
        it += 1
        old2 = tau2
        wi = 1 / (vi + tau2)
        big_p = _p_matrix(x, wi)
        pp = big_p @ big_p
        if reml:
            adj = (float(ymc @ pp @ ymc) - float(np.trace(big_p))) / float(np.trace(pp))
        else:
            adj = (float(ymc @ pp @ ymc) - float(np.sum(wi))) / float(np.sum(wi**2))
        if not math.isfinite(adj):
            adj = 0.0
        while tau2 + adj < TAU2_MIN:
            adj /= 2
        tau2 = tau2 + adj
        change = abs(old2 - tau2)
        if it > MAXITER:
            raise FitError("Fisher scoring algorithm did not converge (metafor would stop here).")
    return tau2, it


def ll0_check(y: FloatArray, vi: FloatArray, x: FloatArray, tau2: float, reml: bool) -> float:
    """metafor's guard against a local maximum: use tau²=0 if its likelihood is higher."""
    ll0 = _loglik(y, vi, x, 0.0, reml)
    ll = _loglik(y, vi, x, tau2, reml)
    if ll0 - ll > TOL and tau2 > THRESHOLD:
        return 0.0
    return tau2


def tau2_pm(ymc: FloatArray, vi: FloatArray, x: FloatArray, tau2_max: float) -> tuple[float, int]:
    """Paule & Mandel (1982): tau² solving generalised Q = k - p, via R uniroot (rma.uni)."""
    k, p = x.shape
    target = float(k - p)

    def q_minus_target(t: float) -> float:
        big_p = _p_matrix(x, 1 / (vi + t))
        return float(ymc @ big_p @ ymc) - target

    f_low = q_minus_target(TAU2_MIN)
    if f_low < 0:
        return TAU2_MIN, 0
    f_high = q_minus_target(tau2_max)
    if f_high > 0:
        raise FitError("PM: tau² above tau2.max; metafor would stop here.")
    root, it = r_zeroin2(q_minus_target, TAU2_MIN, tau2_max, f_low, f_high, TOL, MAXITER)
    if it < 0:
        raise FitError("PM: uniroot did not converge.")
    return root, it


# ---------------------------------------------------------------------------------------------
# The model fit
# ---------------------------------------------------------------------------------------------


def fit_rma(
    yi: FloatArray,
    vi: FloatArray,
    x: FloatArray | None = None,
    method: str = "REML",
    test: str = "z",
    btt: list[int] | None = None,
) -> RmaFit:
    """Fit ``rma.uni(yi, vi, mods=x, method=, test=)``; x includes the intercept column.

    ``test="knha"`` is Hartung-Knapp-Sidik-Jonkman (t, k-p df, untruncated scale factor);
    ``test="adhoc"`` truncates the scale factor at 1 (Röver, Knapp & Friede 2015), exactly as
    metafor 3.8-1's ``test="adhoc"``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, not {test!r}")
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k = yi.size
    if x is None:
        x = np.ones((k, 1))
    p = x.shape[1]
    if k < 1:
        raise ValueError("no studies")
    ymc = yi - yi.mean()
    iterations = 0
    se_tau2: float | None = None

    # ---- tau² ----
    if k == 1 or method == "EE":
        tau2 = 0.0
    elif method == "DL":
        tau2, big_p = tau2_dl(ymc, vi, x)
        tau2 = max(TAU2_MIN, tau2)
        tr_p = float(np.trace(big_p))
        se_tau2 = math.sqrt(
            1 / tr_p**2 * (2 * (k - p) + 4 * tau2 * tr_p + 2 * tau2**2 * float(np.sum(big_p**2)))
        )
    elif method in ("REML", "ML"):
        reml = method == "REML"
        tau2, iterations = tau2_fisher(ymc, vi, x, reml)
        tau2 = ll0_check(ymc, vi, x, tau2, reml)
        tau2 = max(TAU2_MIN, tau2)
        wi = 1 / (vi + tau2)
        if reml:
            big_p = _p_matrix(x, wi)
            se_tau2 = math.sqrt(2 / float(np.sum(big_p * big_p)))
        else:
            se_tau2 = math.sqrt(2 / float(np.sum(wi**2)))
    else:  # PM
        tau2_max = max(TAU2_MAX, 10 * _r_mad(yi) ** 2)
        tau2, iterations = tau2_pm(ymc, vi, x, tau2_max)
        tau2 = max(TAU2_MIN, tau2)
        wi = 1 / (vi + tau2)
        se_tau2 = math.sqrt(2 * k**2 / (k - p) / float(np.sum(wi)) ** 2)

    # ---- fixed effects ----
    wi = 1 / (vi + tau2)
    w = np.diag(wi)
    vb = np.linalg.inv(x.T @ w @ x)
    beta = vb @ x.T @ w @ yi
    s2w = 1.0
    if test in ("knha", "adhoc"):
        rss_knha = float(np.sum(wi * (yi - x @ beta) ** 2))
        if k - p <= 0:
            s2w = math.nan
        else:
            s2w = 0.0 if rss_knha <= np.finfo(float).eps else rss_knha / (k - p)
        if test == "adhoc" and s2w < 1:
            s2w = 1.0
    vb = s2w * vb
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = beta / se
    if btt is None:
        btt = list(range(1, p)) if p > 1 else [0]
    m = len(btt)
    try:
        sub = vb[np.ix_(btt, btt)]
        qm: float | None = float(beta[btt] @ np.linalg.solve(sub, beta[btt]))
    except np.linalg.LinAlgError:
        qm = None
    ddf: int | None
    if test in ("knha", "adhoc"):
        ddf = k - p
        qm = None if qm is None else qm / m
        qm_df: tuple[int, int | None] = (m, k - p)
        qm_p = None if qm is None or ddf <= 0 else float(distributions.f_sf(qm, m, k - p))
        if ddf > 0:
            pval = 2 * distributions.t_sf(np.abs(zval), ddf)
            crit: float | None = float(distributions.t_isf(0.025, ddf))
        else:
            pval = np.full(p, np.nan)
            crit = None
    else:
        ddf = None
        qm_df = (m, None)
        qm_p = None if qm is None else float(distributions.chi2_sf(qm, m))
        pval = 2 * distributions.norm_sf(np.abs(zval))
        crit = Z_CRIT
    if crit is None:
        ci_lb = np.full(p, np.nan)
        ci_ub = np.full(p, np.nan)
    else:
        ci_lb = beta - crit * se
        ci_ub = beta + crit * se

    # ---- heterogeneity (always with 1/vi weights) ----
    if k > p:
        big_p = _p_matrix(x, 1 / vi)
        qe = max(0.0, float(ymc @ big_p @ ymc))
        qe_p = float(distributions.chi2_sf(qe, k - p))
        vt = (k - p) / float(np.trace(big_p))
        if method == "EE":
            i2 = max(0.0, 100 * (qe - (k - p)) / qe) if qe > 0 else 0.0
            h2 = qe / (k - p)
        else:
            i2 = 100 * tau2 / (vt + tau2)
            h2 = tau2 / vt + 1
    else:
        qe, qe_p, i2, h2 = 0.0, 1.0, 0.0, 1.0
        vt = None

    weights = 100 * wi / np.sum(wi)
    return RmaFit(
        beta=beta,
        vb=vb,
        se=se,
        zval=zval,
        pval=pval,
        ci_lb=ci_lb,
        ci_ub=ci_ub,
        crit=crit,
        ddf=ddf,
        tau2=float(tau2),
        se_tau2=se_tau2,
        qe=qe,
        qe_df=k - p,
        qe_p=qe_p,
        i2=float(i2),
        h2=float(h2),
        vt=vt,
        qm=qm,
        qm_df=qm_df,
        qm_p=qm_p,
        weights=weights,
        k=k,
        p=p,
        method=method,
        test=test,
        s2w=float(s2w),
        iterations=iterations,
    )


def fit_rma_or_dl(
    yi: FloatArray,
    vi: FloatArray,
    x: FloatArray | None = None,
    method: str = "REML",
    test: str = "z",
    instead: str = "DerSimonian-Laird shown instead",
) -> tuple[RmaFit, str | None]:
    """``fit_rma``, or, where metafor would stop with an error, DerSimonian-Laird and the reason.

    A pooled number is needed in the meeting even when Fisher scoring or Paule-Mandel's root
    search fails, so the documented fallback is DL, a closed-form estimator that always
    returns. The reason ("REML did not converge (...); DerSimonian-Laird shown instead.") comes
    back for the caller's notes and ``fallback_reason``, so the switch is never silent; the
    estimator actually used is ``fit.method``. ``instead`` words the consequence where "shown"
    would mislead (a subgroup test, say).
    """
    try:
        return fit_rma(yi, vi, x, method=method, test=test), None
    except FitError as err:
        reason = f"{method} did not converge ({err}); {instead}."
        return fit_rma(yi, vi, x, method="DL", test=test), reason


def predict(
    fit: RmaFit, xnew: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``predict.rma``: (pred, se, ci_lb, ci_ub, pi_lb, pi_ub) per row of xnew.

    The prediction interval uses z for test="z" and t with k-p df otherwise (metafor's
    definition, not Higgins et al. 2009's k-2 df).
    """
    xnew = np.atleast_2d(np.asarray(xnew, dtype=float))
    pred = xnew @ fit.beta
    vpred = np.einsum("ij,jk,ik->i", xnew, fit.vb, xnew)
    vpred = np.where(vpred < 0, np.nan, vpred)
    se = np.sqrt(vpred)
    if fit.test == "z":
        crit: float = Z_CRIT
    else:
        ddf = fit.k - fit.p
        crit = float(distributions.t_isf(0.025, ddf)) if ddf > 0 else math.nan
    ci_lb = pred - crit * se
    ci_ub = pred + crit * se
    pi_lb = pred - crit * np.sqrt(vpred + fit.tau2)
    pi_ub = pred + crit * np.sqrt(vpred + fit.tau2)
    return pred, se, ci_lb, ci_ub, pi_lb, pi_ub


@dataclass(frozen=True)
class Tau2Interval:
    """Q-profile 95% CI for tau² (Viechtbauer 2007) with the matching I² and H² bounds."""

    tau2_lb: float
    tau2_ub: float
    i2_lb: float | None
    i2_ub: float | None
    h2_lb: float | None
    h2_ub: float | None
    null_set: bool  # Q so small that even tau² = 0 lies above the interval (metafor: null set)
    lb_below_min: bool  # metafor prints "<" : the bound is at tau2.min
    ub_above_max: bool  # metafor prints ">" : the bound is beyond tau2.max


def tau2_ci_qprofile(
    yi: FloatArray, vi: FloatArray, x: FloatArray | None, fit: RmaFit
) -> Tau2Interval | None:
    """Q-profile CI for tau² exactly as ``confint.rma.uni`` (type="QP", its own uniroot with
    tol .Machine$double.eps^0.25, maxiter 1000, search range [0, max(100, 10·tau²)])."""
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k = yi.size
    if x is None:
        x = np.ones((k, 1))
    p = x.shape[1]
    if k <= p or fit.method == "EE" or fit.vt is None:
        return None
    t_min = min(0.0, fit.tau2)
    t_max = max(100.0, fit.tau2 * 10, t_min * 10)
    crit_u = float(distributions.chi2_isf(0.025, k - p))
    crit_l = float(distributions.chi2_ppf(0.025, k - p))

    def qe(t: float) -> float:
        big_p = _p_matrix(x, 1 / (vi + t))
        return float(yi @ big_p @ yi)

    q_max, q_min = qe(t_max), qe(t_min)
    lb = ub = math.nan
    null_set = lb_below = ub_above = False

    def root(objective: float) -> float:
        value, it = r_zeroin2(
            lambda t: qe(t) - objective,
            t_min,
            t_max,
            q_min - objective,
            q_max - objective,
            TOL,
            1000,
        )
        return value if it >= 0 else math.nan

    if q_min < crit_l:
        lb = ub = t_min
        null_set = t_min <= 0
        lb_below = True
    elif q_max > crit_l:
        ub, ub_above = t_max, True
    else:
        ub = root(crit_l)
    if q_max > crit_u:
        lb = ub = t_max
        ub_above = True
    elif q_min < crit_u:
        lb = t_min
        lb_below = lb_below or t_min > 0
    else:
        lb = root(crit_u)

    def i2(t: float) -> float | None:
        return None if math.isnan(t) else 100 * t / (fit.vt + t)  # type: ignore[operator]

    def h2(t: float) -> float | None:
        return None if math.isnan(t) else t / fit.vt + 1  # type: ignore[operator]

    return Tau2Interval(
        tau2_lb=lb,
        tau2_ub=ub,
        i2_lb=i2(lb),
        i2_ub=i2(ub),
        h2_lb=h2(lb),
        h2_ub=h2(ub),
        null_set=null_set,
        lb_below_min=lb_below,
        ub_above_max=ub_above,
    )
