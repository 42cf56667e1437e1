"""Leave-one-out for the intercept-only inverse-variance model (metafor ``leave1out.rma.uni``)
in O(k) time and memory, not k refits.

metafor refits ``rma.uni`` k times, each fit building k x k matrices; so did this engine, k
full pools (O(k^4) with its k x k algebra, O(k^2) even with O(k) fits). Here every left-out
fit follows metafor's own path (the Hedges start, Fisher scoring with step-halving and the 1e-5
stop, the ll0 check, or Paule-Mandel's ``uniroot``), all k fits in lockstep, reading only sums
over the studies each keeps:

    S_ab(t) = sum over j != i of y_j^b / (v_j + t)^a      (a = 1, 2, 3; b = 0, 1, 2)
    L(t)    = sum over j != i of log(v_j + t)

Each is the sum over every study minus study i's own term. The sum over every study is needed
at a tau² t that differs from fit to fit, but only by O(1/k): the left-out fits are the full fit
with one study fewer. So the sums at all those t come from one set of moments around a pivot
t* (an O(k) pass each):

    1 / (v + t)^a = sum over m >= 0 of C(a+m-1, m) (t* - t)^m / (v + t*)^(a+m)

which converges geometrically with ratio |t - t*| / (v + t*); enough terms are taken for
1e-17 relative. Values of t farther apart are grouped around pivots of their own, and a group of
a few is summed directly. A fit of k studies therefore costs a few O(k) passes per iteration for
all k left-out fits together.

Agreement: with k separate fits of ``heterogeneity.fit_rma`` to about 1e-14 relative (tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import distributions
from .heterogeneity import MAXITER, TAU2_MAX, TAU2_MIN, THRESHOLD, TOL, Z_CRIT, zeroin_many

FloatArray = NDArray[np.float64]

RHO_MAX = 0.25  # largest |t - t*| / (min v + t*) one pivot's series serves
DIRECT_BELOW = 8  # fewer values of t than this around a pivot: summed directly
SERIES_TOL = 1e-17  # relative size of the first term left out of a series
EPS = float(np.finfo(float).eps)

Key = tuple[int, int] | str  # (a, b) for S_ab, "log" for L


class LeftOutSums:
    """S_ab(t) and L(t) over all studies but one, for many (left-out study, t) pairs at once."""

    def __init__(self, y: FloatArray, v: FloatArray) -> None:
        self.y, self.v = y, v
        self.powers = (np.ones_like(y), y, y * y)  # y^b
        self.vmin = float(v.min())

    def at(self, idx: NDArray[np.int64], t: FloatArray, need: set[Key]) -> dict[Key, FloatArray]:
        """For each m: the sums over j != idx[m] at t[m], for every key in `need`."""
        out = self._full(t, need)
        own_v = self.v[idx] + t
        for key in need:
            if key == "log":
                out[key] = out[key] - np.log(own_v)
            else:
                a, b = key  # type: ignore[misc]
                out[key] = out[key] - self.powers[b][idx] / own_v**a
        return out

    def _full(self, t: FloatArray, need: set[Key]) -> dict[Key, FloatArray]:
        """The sums over every study, at each t."""
        out = {key: np.empty(t.size) for key in need}
        order = np.argsort(t, kind="stable")
        ts = t[order]
        start = 0
        while start < ts.size:
            low = float(ts[start])
            # the largest high with (high - low) / 2 <= RHO_MAX * (vmin + (low + high) / 2)
            limit = (low * (1 + RHO_MAX) + 2 * RHO_MAX * self.vmin) / (1 - RHO_MAX)
            end = max(start + 1, int(np.searchsorted(ts, limit, side="right")))
            members = order[start:end]
            if end - start < DIRECT_BELOW:
                for m in members:
                    for key, value in self._direct(float(t[m]), need).items():
                        out[key][m] = value
            else:
                pivot = (low + float(ts[end - 1])) / 2
                for key, values in self._series(t[members], pivot, need).items():
                    out[key][members] = values
            start = end
        return out

    def _direct(self, t: float, need: set[Key]) -> dict[Key, float]:
        vt = self.v + t
        u = 1 / vt
        out: dict[Key, float] = {}
        for key in need:
            if key == "log":
                out[key] = float(np.sum(np.log(vt)))
            else:
                a, b = key  # type: ignore[misc]
                out[key] = float(np.sum(u**a * self.powers[b]))
        return out

    def _series(self, t: FloatArray, pivot: float, need: set[Key]) -> dict[Key, FloatArray]:
        s = self.vmin + pivot
        q = s / (self.v + pivot)  # in (0, 1]: no power overflows
        d = (t - pivot) / s
        rho = float(np.max(np.abs(d)))
        a_max = max([1, *(key[0] for key in need if key != "log")])  # type: ignore[index]
        terms = _terms(rho, a_max)
        bs = {key[1] for key in need if key != "log"} | ({0} if "log" in need else set())  # type: ignore[index]
        moments = np.zeros((a_max + terms + 1, 3))  # moments[c, b] = sum y^b q^c
        qc = np.ones_like(q)
        for c in range(a_max + terms + 1):
            for b in bs:
                moments[c, b] = float(np.sum(qc * self.powers[b])) if b else float(np.sum(qc))
            qc = qc * q
        out: dict[Key, FloatArray] = {}
        for key in need:
            if key == "log":  # log(v + t) = log(v + t*) - sum over m >= 1 of (-d q)^m / m
                coef = [moments[j, 0] / j for j in range(1, terms + 1)]
                out[key] = float(np.sum(np.log(self.v + pivot))) - (-d) * _horner(coef, -d)
            else:
                a, b = key  # type: ignore[misc]
                coef = [math.comb(a + j - 1, j) * moments[a + j, b] for j in range(terms + 1)]
                out[key] = s**-a * _horner(coef, -d)
        return out


def _horner(coef: list[float], x: FloatArray) -> FloatArray:
    """sum over j of coef[j] x^j, for every x (Horner's scheme: no powers computed)."""
    acc = np.full(x.size, coef[-1]) if coef else np.zeros(x.size)
    for c in reversed(coef[:-1]):
        acc = acc * x + c
    return acc


def _terms(rho: float, a: int) -> int:
    """The number of terms after the first for which the next is below SERIES_TOL (relative)."""
    if rho == 0:
        return 0
    m = 0
    while math.comb(a + m, m + 1) * rho ** (m + 1) > SERIES_TOL:
        m += 1
    return m


@dataclass(frozen=True, eq=False)
class LeftOutFits:
    """What metafor's leave1out reports for each left-out fit (model scale), plus the pieces of
    the studentized deleted residual; NaN where a fit has no value. Row i is the fit without
    study i."""

    estimate: FloatArray
    se: FloatArray
    statistic: FloatArray
    p_value: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    q: FloatArray
    q_p: FloatArray
    tau2: FloatArray
    i2: FloatArray
    h2: FloatArray
    rstudent: FloatArray  # (y_i - estimate_(-i)) / sqrt(v_i s2w + vb + tau2 s2w), rstudent()
    fell_back: NDArray[np.bool_]  # the method failed for this fit: DerSimonian-Laird instead
    df: int | None  # t degrees of freedom (Hartung-Knapp), None for z
    q_df: int


def leave1out(yi: FloatArray, vi: FloatArray, method: str, test: str) -> LeftOutFits:
    """Each study left out in turn: ``leave1out(rma(yi, vi, method=, test=))``, with
    DerSimonian-Laird where the method fails for a fit (as `fit_rma_or_dl` does), for k >= 3."""
    k = yi.size
    if k < 3:
        raise ValueError("the O(k) leave-one-out needs at least 3 studies (2 in each fit)")
    kk = k - 1  # studies in each fit; p = 1
    # Every sum is taken about the fixed-effect mean of all studies: the intercept-only
    # residuals do not depend on it, and a left-out fit's own mean lies within O(1/k) of it, so
    # S_12 - S_11^2 / S_10 (a Q) loses no digits to cancellation.
    w0 = 1 / vi
    centre = float(np.sum(w0 * yi) / np.sum(w0))
    y = yi - centre
    sums = LeftOutSums(y, vi)
    idx = np.arange(k)

    # ---- fixed-effect weights (t = 0): QE, vt and DerSimonian-Laird ----
    fe = sums.at(idx, np.zeros(k), {(1, 0), (1, 1), (1, 2), (2, 0)})
    rss0 = fe[1, 2] - fe[1, 1] ** 2 / fe[1, 0]
    tr_p0 = fe[1, 0] - fe[2, 0] / fe[1, 0]
    dl = np.maximum(TAU2_MIN, (rss0 - (kk - 1)) / tr_p0)
    fell_back = np.zeros(k, dtype=bool)
    if method == "DL":
        tau2 = dl
    elif method in ("REML", "ML"):
        tau2, failed = _fisher(sums, y, vi, method == "REML")
        tau2 = np.where(failed, tau2, _ll0_check(sums, tau2, method == "REML"))
        tau2 = np.where(failed, dl, np.maximum(TAU2_MIN, tau2))
        fell_back = failed
    elif method == "PM":
        tau2, failed = _paule_mandel(sums, yi, vi)
        tau2 = np.where(failed, dl, np.maximum(TAU2_MIN, tau2))
        fell_back = failed
    elif method == "EE":
        tau2 = np.zeros(k)
    else:
        raise ValueError(f"method {method!r} has no leave-one-out here")

    # ---- fixed effects at each fit's tau² ----
    re = sums.at(idx, tau2, {(1, 0), (1, 1), (1, 2)})
    sw = re[1, 0]
    beta = re[1, 1] / sw
    s2w = np.ones(k)
    ddf: int | None = None
    if test in ("knha", "adhoc"):
        rss = re[1, 2] - re[1, 1] * beta
        s2w = np.where(rss <= EPS, 0.0, rss / (kk - 1))
        if test == "adhoc":
            s2w = np.maximum(s2w, 1.0)
        ddf = kk - 1
    vb = s2w / sw
    se = np.sqrt(vb)
    estimate = beta + centre
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = estimate / se
    if ddf is None:
        pval = 2 * distributions.norm_sf(np.abs(zval))
        crit = Z_CRIT
    else:
        pval = 2 * distributions.t_sf(np.abs(zval), ddf)
        crit = float(distributions.t_isf(0.025, ddf))
    qe = np.maximum(0.0, rss0)
    qe_p = distributions.chi2_sf_many(qe, kk - 1)
    vt = (kk - 1) / tr_p0
    if method == "EE":
        with np.errstate(divide="ignore", invalid="ignore"):
            i2 = np.where(qe > 0, np.maximum(0.0, 100 * (qe - (kk - 1)) / qe), 0.0)
        h2 = qe / (kk - 1)
    else:
        i2 = 100 * tau2 / (vt + tau2)
        h2 = tau2 / vt + 1
    resid = yi - estimate
    resid = np.where(np.abs(resid) < 100 * EPS, 0.0, resid)
    with np.errstate(divide="ignore", invalid="ignore"):
        rstudent = resid / np.sqrt(vi * s2w + vb + tau2 * s2w)
    return LeftOutFits(
        estimate=estimate,
        se=se,
        statistic=zval,
        p_value=pval,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        q=qe,
        q_p=qe_p,
        tau2=tau2,
        i2=i2,
        h2=h2,
        rstudent=rstudent,
        fell_back=fell_back,
        df=ddf,
        q_df=kk - 1,
    )


def _fisher(
    sums: LeftOutSums, y: FloatArray, vi: FloatArray, reml: bool
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """`heterogeneity.tau2_fisher` for every left-out fit at once: the same Hedges start, steps,
    step-halving, stop and iteration limit; True in the second array where it would raise."""
    k = y.size
    kk = k - 1
    # Hedges: OLS residuals about the left-out mean, tr(P0 V) = sum v (1 - 1/kk)
    rss_ols = (np.sum(y * y) - y * y) - (np.sum(y) - y) ** 2 / kk
    he = (rss_ols - (np.sum(vi) - vi) * (1 - 1 / kk)) / (kk - 1)
    tau2 = np.maximum(np.maximum(0.0, he), TAU2_MIN)
    failed = np.zeros(k, dtype=bool)
    active = np.arange(k)
    need: set[Key] = {(1, 0), (1, 1), (2, 0), (2, 1), (2, 2)} | ({(3, 0)} if reml else set())
    it = 0
    while active.size:
        it += 1
        t = tau2[active]
        s = sums.at(active, t, need)
        beta = s[1, 1] / s[1, 0]
        ypp = s[2, 2] - 2 * beta * s[2, 1] + beta * beta * s[2, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            if reml:
                r = s[2, 0] / s[1, 0]
                tr_p = s[1, 0] - r
                tr_pp = s[2, 0] - 2 * s[3, 0] / s[1, 0] + r * r
                adj = (ypp - tr_p) / tr_pp
            else:
                adj = (ypp - s[1, 0]) / s[2, 0]
        adj = np.where(np.isfinite(adj), adj, 0.0)
        below = t + adj < TAU2_MIN
        while below.any():
            adj = np.where(below, adj / 2, adj)
            below = t + adj < TAU2_MIN
        new = t + adj
        change = np.abs(t - new)
        tau2[active] = new
        if it > MAXITER:
            failed[active] = True
            break
        active = active[change > THRESHOLD]
    return tau2, failed


def _ll0_check(sums: LeftOutSums, tau2: FloatArray, reml: bool) -> FloatArray:
    """`heterogeneity.ll0_check` for every left-out fit: tau² = 0 where its (restricted)
    likelihood is higher by more than TOL."""
    k = tau2.size
    kk = k - 1
    idx = np.arange(k)
    need: set[Key] = {(1, 0), (1, 1), (1, 2), "log"}

    def loglik(t: FloatArray) -> FloatArray:
        s = sums.at(idx, t, need)
        rss = s[1, 2] - s[1, 1] ** 2 / s[1, 0]
        if reml:
            return (
                -0.5 * (kk - 1) * math.log(2 * math.pi)
                - 0.5 * s["log"]
                - 0.5 * np.log(s[1, 0])
                - 0.5 * rss
            )
        return -0.5 * kk * math.log(2 * math.pi) - 0.5 * s["log"] - 0.5 * rss

    ll0, ll = loglik(np.zeros(k)), loglik(tau2)
    return np.where((ll0 - ll > TOL) & (tau2 > THRESHOLD), 0.0, tau2)


def _mad_above(y: FloatArray, limit: float) -> NDArray[np.bool_]:
    """For each i, whether R's mad() of y without y_i exceeds `limit` (exactly; the bound below
    spares the O(k) recomputation for every study it clears)."""
    k = y.size
    z = np.sort(y)
    med = float(np.median(y))
    # the median without one value lies between the order statistics around the middle
    lo, hi = z[max(0, (k - 1) // 2 - 1)], z[min(k - 1, k // 2 + 1)]
    shift = max(abs(med - lo), abs(hi - med))
    dev = np.sort(np.abs(y - med))
    bound = 1.4826 * (float(dev[min(k - 1, k // 2 + 1)]) + shift)
    above = np.zeros(k, dtype=bool)
    if bound <= limit:
        return above
    for i in range(k):
        rest = np.delete(y, i)
        m = np.median(rest)
        above[i] = 1.4826 * float(np.median(np.abs(rest - m))) > limit
    return above


def _paule_mandel(
    sums: LeftOutSums, yi: FloatArray, vi: FloatArray
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """`heterogeneity.tau2_pm` for every left-out fit: R's zeroin for each, run side by side
    (`zeroin_many`), the points of one step evaluated together; True where tau2_pm would
    raise."""
    k = yi.size
    kk = k - 1
    target = float(kk - 1)
    need: set[Key] = {(1, 0), (1, 1), (1, 2)}

    def q_minus_target(idx: NDArray[np.int64], t: FloatArray) -> FloatArray:
        s = sums.at(idx, t, need)
        return s[1, 2] - s[1, 1] ** 2 / s[1, 0] - target

    tau2_max = np.full(k, TAU2_MAX)
    wide = _mad_above(yi, math.sqrt(TAU2_MAX / 10))
    for i in np.flatnonzero(wide):
        rest = np.delete(yi, i)
        mad = 1.4826 * float(np.median(np.abs(rest - np.median(rest))))
        tau2_max[i] = max(TAU2_MAX, 10 * mad**2)
    idx = np.arange(k)
    f_low = q_minus_target(idx, np.full(k, TAU2_MIN))
    f_high = q_minus_target(idx, tau2_max)
    tau2 = np.full(k, TAU2_MIN)
    failed = f_high > 0
    searching = np.flatnonzero(~(f_low < 0) & ~failed)
    if searching.size:
        roots, its = zeroin_many(
            lambda rows, t: q_minus_target(searching[rows], t),
            np.full(searching.size, TAU2_MIN),
            tau2_max[searching],
            f_low[searching],
            f_high[searching],
            TOL,
            MAXITER,
        )
        tau2[searching] = roots
        failed[searching] = its < 0
    return tau2, failed
