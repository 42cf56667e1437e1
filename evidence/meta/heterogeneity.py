"""Normal-normal (inverse-variance) random-effects model, a line-by-line port of metafor 3.8-1.

Why a port rather than a fresh implementation: the REML/ML Fisher scoring stops at a 1e-5
change and Paule-Mandel stops at ``uniroot``'s tolerance of ~1.2e-4, so a "more exact"
optimiser would disagree with metafor in the 5th digit. Following the same iterations (same
start value, step-halving, stopping rule, and R's Brent ``zeroin``) gives agreement to
floating-point precision, which is what the guideline panel needs.

Source: ``R/rma.uni.r``, ``R/misc.func.hidden.uni.r`` (``.QE.func``) and ``R/predict.rma.r`` of
metafor 3.8-1; R ``src/library/stats/src/zeroin.c`` (``R_zeroin2``).

Glossary
--------
Local names are metafor's, so the code can be read beside ``rma.uni.r`` line by line.

k, p
    Number of studies; number of coefficients (columns of the design matrix ``x``, intercept
    included).
yi, vi, wi
    Model-scale effect sizes, their sampling variances, and weights 1/vi (heterogeneity
    statistics) or 1/(vi + tau²) (fixed effects).
ymc
    ``yi - mean(yi)`` (metafor's ``ymci``): the tau² estimators and QE work on centred values.
P
    metafor's ``P = W - W X (X'WX)^-1 X'W``, the weighted residual-maker: ``y'Py`` is a
    generalised Q, ``tr(P)`` enters DL, REML and ``vt``. metafor (and this engine before it)
    builds P as a k x k matrix; here every quantity read from it is a sum over studies
    (``Wls``), so a fit is O(k p^2) in time and O(k p) in memory.
rss, adj
    A residual sum of squares ``y'Py``; one Fisher-scoring step for tau².
vb
    Variance-covariance matrix of the coefficients ``beta`` (scaled by ``s2w`` under HKSJ).
s2w
    Hartung-Knapp(-Sidik-Jonkman) scale factor, the weighted residual variance
    ``sum(wi (yi - x beta)²) / (k - p)``; 1 for z tests, truncated below at 1 for "adhoc".
ddf
    Denominator degrees of freedom of the t and F tests (k - p), None for z.
crit
    Critical value of the 95% intervals: ``Z_CRIT`` for z, ``qt(0.975, ddf)`` otherwise.
btt
    Indices of the coefficients the omnibus moderator test QM tests jointly ("betas to test");
    all but the intercept by default.
qe, qm
    QE, the test for (residual) heterogeneity; QM, the omnibus test of the moderators.
vt
    The "typical" within-study variance ``(k - p) / tr(P)`` behind I² and H².
ll0
    The (restricted) log-likelihood at tau² = 0, for metafor's ``ll0check``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import distributions

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
    hat: FloatArray  # hatvalues(): w_i x_i' (X'WX)^-1 x_i, W = 1/(vi + tau²)
    resid: FloatArray  # residuals(): yi - X beta
    rstandard: FloatArray  # rstandard()$z: resid / sqrt(diag((I - H) M (I - H)'))
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


def zeroin_many(
    f: Callable[[NDArray[np.int64], FloatArray], FloatArray],
    ax: FloatArray,
    bx: FloatArray,
    fa: FloatArray,
    fb: FloatArray,
    tol: float,
    maxit: int,
) -> tuple[FloatArray, NDArray[np.int64]]:
    """`r_zeroin2` for many root searches at once, step for step the same arithmetic, elementwise.

    ``f(rows, x)`` evaluates search ``rows[m]``'s function at ``x[m]``, for the searches still
    running; returns (roots, iterations, -1 where a search failed). Leave-one-out runs one
    Paule-Mandel search per left-out fit with it.
    """
    eps = np.finfo(float).eps
    a, b, fa, fb = (np.array(v, dtype=float) for v in (ax, bx, fa, fb))
    c, fc = a.copy(), fa.copy()
    prev_step = np.zeros_like(a)
    root = np.where(fa == 0.0, a, b)
    its = np.where((fa == 0.0) | (fb == 0.0), 0, -1)
    running = np.flatnonzero(its < 0)
    left = maxit + 1
    while left and running.size:
        left -= 1
        r = running
        prev_step[r] = b[r] - a[r]
        swap = np.abs(fc[r]) < np.abs(fb[r])
        sw = r[swap]
        a[sw], b[sw], c[sw] = b[sw], c[sw], b[sw]
        fa[sw], fb[sw], fc[sw] = fb[sw], fc[sw], fb[sw]
        tol_act = 2 * eps * np.abs(b[r]) + tol / 2
        new_step = (c[r] - b[r]) / 2
        done = (np.abs(new_step) <= tol_act) | (fb[r] == 0.0)
        root[r[done]] = b[r[done]]
        its[r[done]] = maxit + 1 - left
        keep = ~done
        r, tol_act, new_step = r[keep], tol_act[keep], new_step[keep]
        if not r.size:
            running = r
            break
        interpolate = (np.abs(prev_step[r]) >= tol_act) & (np.abs(fa[r]) > np.abs(fb[r]))
        with np.errstate(divide="ignore", invalid="ignore"):
            cb = c[r] - b[r]
            secant = a[r] == c[r]
            t1s = fb[r] / fa[r]
            q_ = fa[r] / fc[r]
            t1 = fb[r] / fc[r]
            t2 = fb[r] / fa[r]
            p = np.where(secant, cb * t1s, t2 * (cb * q_ * (q_ - t1) - (b[r] - a[r]) * (t1 - 1.0)))
            q = np.where(secant, 1.0 - t1s, (q_ - 1.0) * (t1 - 1.0) * (t2 - 1.0))
            q = np.where(p > 0, -q, q)
            p = np.where(p > 0, p, -p)
            accept = (
                interpolate
                & (p < (0.75 * cb * q - np.abs(tol_act * q) / 2))
                & (p < np.abs(prev_step[r] * q / 2))
            )
            new_step = np.where(accept, p / q, new_step)
        small = np.abs(new_step) < tol_act
        new_step = np.where(small, np.where(new_step > 0, tol_act, -tol_act), new_step)
        a[r], fa[r] = b[r], fb[r]
        b[r] = b[r] + new_step
        fb[r] = f(r, b[r])
        same = ((fb[r] > 0) & (fc[r] > 0)) | ((fb[r] < 0) & (fc[r] < 0))
        cs = r[same]
        c[cs], fc[cs] = a[cs], fa[cs]
        running = r
    root[running] = b[running]
    return root, its


# ---------------------------------------------------------------------------------------------
# Building blocks shared by the estimators: metafor's P as sums, never as a k x k matrix
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wls:
    """Weighted least squares of y on X with weights w, and what metafor reads from its
    residual-maker P = W - W X (X'WX)^-1 X'W, each as a sum over studies (O(k p^2)).

    With r = y - X beta (beta the WLS coefficients) P y = w r, so y'Py = sum w r^2 and
    y'PPy = sum (w r)^2. With l_i = x_i' A^-1 x_i (A = X'WX; the hat value is w_i l_i):
    tr P = sum w - sum w^2 l and tr PP = sum(P o P) = sum w^2 - 2 sum w^3 l + tr(B^2),
    B = A^-1 X'W^2 X (p x p). For the intercept-only model these are metafor's familiar
    sum w - sum w^2 / sum w and sum w^2 - 2 sum w^3 / sum w + (sum w^2 / sum w)^2.
    """

    x: FloatArray
    w: FloatArray
    a: FloatArray  # X'WX
    a_inv: FloatArray  # (X'WX)^-1
    beta: FloatArray
    resid: FloatArray  # y - X beta

    @property
    def rss(self) -> float:
        """y'Py: Q, the generalised Q of PM and the Q-profile."""
        return _dot(self.w, self.resid * self.resid)

    @property
    def ypp_y(self) -> float:
        """y'PPy: the Fisher-scoring numerator."""
        wr = self.w * self.resid
        return _dot(wr, wr)

    @property
    def lev(self) -> FloatArray:
        """x_i' A^-1 x_i for every study (the hat value divided by the weight)."""
        if self.x.shape[1] == 1:
            return float(self.a_inv[0, 0]) * self.x[:, 0] ** 2
        return np.einsum("ij,jk,ik->i", self.x, self.a_inv, self.x)

    @property
    def tr_p(self) -> float:
        """tr(P)."""
        w = self.w
        if _is_intercept(self.x):
            s1 = float(w.sum())
            return s1 - _dot(w, w) / s1
        return float(w.sum()) - _dot(w * w, self.lev)

    @property
    def tr_pp(self) -> float:
        """tr(PP), which is also sum(P o P) (P is symmetric)."""
        w = self.w
        w2 = w * w
        if _is_intercept(self.x):
            s1, s2 = float(w.sum()), float(w2.sum())
            return s2 - 2 * _dot(w2, w) / s1 + (s2 / s1) ** 2
        b = self.a_inv @ _cross(self.x * w2[:, None], self.x)
        return float(w2.sum()) - 2 * _dot(w2 * w, self.lev) + float(np.sum(b * b.T))

    @property
    def logdet_a(self) -> float:
        return float(np.linalg.slogdet(self.a)[1])


def _dot(a: FloatArray, b: FloatArray) -> float:
    """sum(a * b) by NumPy's pairwise summation, not a BLAS call: a threaded BLAS dot on a
    loaded 2-core machine waits for its second thread (a scheduler time slice, milliseconds,
    ten times the sum itself), and pairwise summation is the more exact of the two."""
    return float(np.sum(a * b))


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """a'b for k x p and k x q columns, each entry a pairwise sum (no BLAS, see `_dot`)."""
    return np.array(
        [[_dot(a[:, i], b[:, j]) for j in range(b.shape[1])] for i in range(a.shape[1])]
    )


def _is_intercept(x: FloatArray) -> bool:
    """The design is the intercept alone (a column of ones), for the closed forms."""
    return x.shape[1] == 1 and bool(np.all(x[:, 0] == 1.0))


def wls(x: FloatArray, w: FloatArray, y: FloatArray) -> Wls:
    """Weighted least squares of y on X (k x p) with weights w, in O(k p^2)."""
    if _is_intercept(x):
        s1 = float(w.sum())
        a = np.array([[s1]])
        a_inv = np.array([[1 / s1]])
        beta = np.array([_dot(w, y) / s1])
        return Wls(x, w, a, a_inv, beta, y - beta[0])
    xw = x * w[:, None]
    a = _cross(xw, x)
    a_inv = np.linalg.inv(a)
    beta = a_inv @ _cross(xw, y[:, None])[:, 0]
    return Wls(x, w, a, a_inv, beta, y - np.einsum("ij,j->i", x, beta))


def _r_mad(y: FloatArray) -> float:
    """R ``mad()``: median absolute deviation scaled by 1.4826."""
    med = np.median(y)
    return float(1.4826 * np.median(np.abs(y - med)))


def tau2_dl(ymc: FloatArray, vi: FloatArray, x: FloatArray) -> tuple[float, Wls]:
    """DerSimonian & Laird (1986) method of moments, generalised to meta-regression (rma.uni)."""
    k, p = x.shape
    fe = wls(x, 1 / vi, ymc)
    return (fe.rss - (k - p)) / fe.tr_p, fe


def tau2_he(ymc: FloatArray, vi: FloatArray, x: FloatArray) -> float:
    """Hedges (1983) unweighted moment estimator; metafor's start value for ML/REML.

    With P0 = I - X(X'X)^-1X': y'P0y is the OLS residual sum of squares and
    tr(P0 V) = sum v_i (1 - h0_i), h0 the unweighted leverages.
    """
    k, p = x.shape
    ols = wls(x, np.ones(k), ymc)
    rss = _dot(ols.resid, ols.resid)
    return (rss - _dot(vi, 1 - ols.lev)) / (k - p)


def _loglik(y: FloatArray, vi: FloatArray, x: FloatArray, tau2: float, reml: bool) -> float:
    """(Restricted) log-likelihood as in rma.uni's ll0check (without the |X'X| term)."""
    k, p = x.shape
    fit = wls(x, 1 / (vi + tau2), y)
    rss = fit.rss
    if reml:
        return (
            -0.5 * (k - p) * math.log(2 * math.pi)
            - 0.5 * float(np.sum(np.log(vi + tau2)))
            - 0.5 * fit.logdet_a
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
        fit = wls(x, wi, ymc)
        if reml:
            adj = (fit.ypp_y - fit.tr_p) / fit.tr_pp
        else:
            adj = (fit.ypp_y - float(np.sum(wi))) / _dot(wi, wi)
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
        return wls(x, 1 / (vi + t), ymc).rss - target

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
        tau2, fe = tau2_dl(ymc, vi, x)
        tau2 = max(TAU2_MIN, tau2)
        tr_p = fe.tr_p
        se_tau2 = math.sqrt(1 / tr_p**2 * (2 * (k - p) + 4 * tau2 * tr_p + 2 * tau2**2 * fe.tr_pp))
    elif method in ("REML", "ML"):
        reml = method == "REML"
        tau2, iterations = tau2_fisher(ymc, vi, x, reml)
        tau2 = ll0_check(ymc, vi, x, tau2, reml)
        tau2 = max(TAU2_MIN, tau2)
        wi = 1 / (vi + tau2)
        if reml:
            se_tau2 = math.sqrt(2 / wls(x, wi, ymc).tr_pp)
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
    re = wls(x, wi, yi)
    vb, beta = re.a_inv, re.beta
    hat = wi * re.lev
    hat = np.where(hat > 1 - 10 * np.finfo(float).eps, 1.0, hat)  # hatvalues.rma.uni
    resid = np.where(np.abs(re.resid) < 100 * np.finfo(float).eps, 0.0, re.resid)
    with np.errstate(divide="ignore", invalid="ignore"):
        rstandard = resid / np.sqrt((1 - hat) / wi)  # rstandard.rma.uni: diag((I-H) M (I-H)')
    s2w = 1.0
    if test in ("knha", "adhoc"):
        rss_knha = re.rss
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
        fe = wls(x, 1 / vi, ymc)
        qe = max(0.0, fe.rss)
        qe_p = float(distributions.chi2_sf(qe, k - p))
        vt = (k - p) / fe.tr_p
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
        hat=hat,
        resid=resid,
        rstandard=rstandard,
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
        return wls(x, 1 / (vi + t), yi).rss

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

    return _tau2_interval(fit, lb, ub, null_set, lb_below, ub_above)


def tau2_ci_profile(
    yi: FloatArray, vi: FloatArray, x: FloatArray | None, fit: RmaFit
) -> Tau2Interval | None:
    """Profile-likelihood 95% CI for tau² of an ML or REML fit, exactly as
    ``confint.rma.uni(type = "PL")``: the tau² where -2 (ll(tau²) - ll(fit)) = qchisq(.95, 1),
    each bound by R's uniroot (tol .Machine$double.eps^0.25, maxiter 1000) on
    [tau2.min, tau2] and [tau2, tau2.max], tau2.min = min(0, tau2), tau2.max = max(100, 10 tau2).

    It is the interval of the likelihood the estimate maximises, so it contains the estimate;
    the Q-profile interval (`tau2_ci_qprofile`, metafor's default) inverts the generalised Q,
    whose root is the Paule-Mandel estimate, and at large k can exclude the REML one.
    """
    if fit.method not in ("REML", "ML") or fit.vt is None:
        return None
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    if x is None:
        x = np.ones((yi.size, 1))
    reml = fit.method == "REML"
    t_min = min(0.0, fit.tau2)
    t_max = max(100.0, fit.tau2 * 10, t_min * 10)
    objective = float(distributions.chi2_isf(0.05, 1))
    ll_fit = _loglik(yi, vi, x, fit.tau2, reml)

    def lrt(t: float) -> float:
        return -2 * (_loglik(yi, vi, x, t, reml) - ll_fit) - objective

    def root(low: float, high: float) -> float:
        f_low, f_high = lrt(low), lrt(high)
        if f_low * f_high > 0:  # uniroot stops: "f() values at end points not of opposite sign"
            return math.nan
        value, it = r_zeroin2(lrt, low, high, f_low, f_high, TOL, 1000)
        return value if it >= 0 else math.nan

    lb_below = ub_above = False
    if lrt(t_min) < 0:
        lb, lb_below = t_min, t_min > 0
    else:
        lb = root(t_min, fit.tau2)
    if lrt(t_max) < 0:
        ub, ub_above = t_max, True
    else:
        ub = root(fit.tau2, t_max)

    return _tau2_interval(fit, lb, ub, False, lb_below, ub_above)


def _tau2_interval(
    fit: RmaFit, lb: float, ub: float, null_set: bool, lb_below: bool, ub_above: bool
) -> Tau2Interval:
    """A tau² interval with the I² and H² bounds it implies (metafor's confint.rma.uni: I² =
    100 tau² / (vt + tau²), H² = tau² / vt + 1), whichever method found the bounds."""

    def i2(t: float) -> float | None:
        return None if math.isnan(t) else 100 * t / (fit.vt + t)  # type: ignore[operator]

    def h2(t: float) -> float | None:
        return None if math.isnan(t) else t / fit.vt + 1  # type: ignore[operator]

    return Tau2Interval(
        tau2_lb=lb, tau2_ub=ub, i2_lb=i2(lb), i2_ub=i2(ub), h2_lb=h2(lb), h2_ub=h2(ub),
        null_set=null_set, lb_below_min=lb_below, ub_above_max=ub_above,
    )  # fmt: skip
