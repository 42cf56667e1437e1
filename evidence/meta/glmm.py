"""Binomial-normal GLMM for pooling single proportions, reproducing metafor's rma.glmm.

Why: for rare events and small studies the random-intercept logistic model (one stage, exact
binomial likelihood, no continuity correction) is the primary analysis. Two-step
inverse-variance methods treat within-study variances as known and need ad hoc corrections for
zero counts; GLMMs have smaller bias and MSE and better coverage (Stijnen, Hamza & Ozdemir 2010,
Stat Med 29:3046; Lin & Chu 2020, Epidemiology 31:713).

Model: x_i ~ Binomial(n_i, ilogit(mu + b_i)), b_i ~ N(0, tau2). The estimate ``mu`` is on the
logit scale; ``ilogit(mu)`` is the *median* (conditional) proportion across studies, not the
population-averaged mean proportion.

What is reproduced: metafor 3.8-1 ``rma.glmm(measure="PLO")`` with its defaults calls
``lme4::glmer(cbind(x, n - x) ~ 1 + (1 | study), family = binomial, nAGQ = 7)`` (lme4 1.1-31).
This module replays that pipeline step for step, so it lands where R stops, not merely near
the optimum (lme4's Nelder-Mead stops when its simplex is within 1e-5 in theta):

* stage 1 (R/modular.R optimizeGlmer, nAGQ = 0): theta minimising the Laplace deviance with
  (u, beta) from PIRLS (src/external.cpp pwrssUpdate, tolPwrss 1e-7) restarted every time from
  the linear predictor of the initial fit at theta = 1 (lme4 uses bobyqa, here Brent);
* stage 2: lme4's own Nelder-Mead (src/optimizer.cpp) over (theta, beta) on the adaptive
  Gauss-Hermite deviance (external.cpp glmerAGQ): per study the conditional mode u_i by PIRLS
  restarted from the stage-1 linear predictor, 7 nodes u_i + z_k / L_ii, L_ii^2 =
  1 + theta^2 w_i with the weights of PIRLS's last decomposition; tau2 = theta^2;
* the SE of mu as vcov.merMod gives it in lme4 1.1-31: use.hessian defaults to TRUE when
  deriv12's finite-difference Hessian over (theta, beta) exists (glmer default calc.derivs), so
  V = 2 solve(H)[beta, beta] (falling back to RX only if that is not positive definite). PIRLS
  noise enters that Hessian (multiplied by 1e8); replaying PIRLS reproduces it;
* I2/H2 from the "typical" within-study variance of the PLO escalc values (0.5 added to
  studies with 0 or n events), QE.Wld and QE.LRT from the saturated and fixed-effects glm
  (IRLS replayed), and the log-likelihood metafor reports, ll.QE - deviance(glmer) / 2.

Deliberate difference: where tau2 is large (theta >= 1) and the deviance Hessian nearly
singular (tau2 not identified, e.g. separated data with some studies at 0 and some at n
events) metafor returns wherever Nelder-Mead stopped, without a warning; here the same numbers
come with converged=False and the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .effect_sizes import logit_proportion

# lme4 GHrule(7) exactly as stored in lme4 1.1-31 (fgq_rules[[7]], R/GHrule.R): the 7-point
# Gauss-Hermite rule for the standard normal density, weights summing to 1 (centre node 1.7e-17).
_GH_Z = np.array([
    -3.7504397177257438, -2.3667594107345415, -1.1544053947399682, 1.6953088219724342e-17,
    1.1544053947399677, 2.3667594107345415, 3.7504397177257438,
])  # fmt: skip
_GH_W = np.array([
    0.00054826885597221724, 0.030757123967586515, 0.24012317860501278, 0.45714285714285713,
    0.24012317860501267, 0.030757123967586477, 0.00054826885597221789,
])  # fmt: skip
_GH_LOGW = np.log(_GH_W) + 0.5 * _GH_Z**2  # log(w_k) - ldnorm(z_k) - log(sqrt(2 pi))
_GH_Z6, _GH_LOGW6 = np.delete(_GH_Z, 3), np.delete(_GH_LOGW, 3)  # all but the centre node
# tau2 counts as not identified when theta >= 1 and the smallest eigenvalue of deriv12's
# deviance Hessian is below 0.05 (a 95% Wald interval along that direction wider than
# 2 * 1.96 * sqrt(2 / 0.05) = 25). Near tau2 = 0 a flat direction only means tau2 is imprecise,
# which is usual with rare events, and is left alone, as metafor does.
_FLAT_EIGEN, _FLAT_THETA = 0.05, 1.0
_EPS = float(np.finfo(float).eps)
_DELTA = 1e-4  # lme4 deriv12() default step (R/deriv.R)
_BOUNDARY_TOL = 1e-5  # glmerControl(boundary.tol) used by lme4:::check.boundary
_SINGULAR_TOL = 1e-4  # lme4 isSingular() tolerance on theta; checkConv skips checks below it
_GRAD_TOL = 2e-3  # glmerControl check.conv.grad tol
_HESS_TOL = 1e-6  # glmerControl check.conv.hess tol


@dataclass(frozen=True)
class GlmmFit:
    estimate: float  # mu on the logit scale
    se: float
    tau2: float
    i2: float  # percent, as metafor prints for rma.glmm
    h2: float
    qe_wald: float
    qe_wald_p: float
    qe_lrt: float
    qe_lrt_p: float
    qe_df: int
    loglik: float
    converged: bool
    message: str  # why it did not converge, or ""


@dataclass(frozen=True)
class _Data:
    x: np.ndarray  # events
    n: np.ndarray  # totals (glm prior weights)
    y: np.ndarray  # x / n (glm response)
    sat: np.ndarray  # 2 (x log(x/n) + (n-x) log((n-x)/n)), twice the saturated log-lik kernel
    n2: np.ndarray  # 2 n
    x2: np.ndarray  # 2 x
    satsum: float = 0.0


def _data(x: np.ndarray, n: np.ndarray) -> _Data:
    sat = 2.0 * (special.xlogy(x, x / n) + special.xlogy(n - x, (n - x) / n))
    return _Data(x, n, x / n, sat, 2 * n, 2 * x, float(sat.sum()))


class _FitError(Exception):
    """An error lme4::glmer would stop with (rma.glmm then says 'Cannot fit ML model')."""


def _failed(message: str, k: int, **known: float) -> GlmmFit:
    nan = float("nan")
    values = dict.fromkeys(
        ("estimate", "se", "tau2", "i2", "h2", "qe_wald", "qe_wald_p", "qe_lrt", "qe_lrt_p"),
        nan,
    )
    values.update(known)
    return GlmmFit(**values, qe_df=max(k - 1, 0), loglik=nan, converged=False, message=message)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """sum(a * b) by NumPy's pairwise summation, not a BLAS dot: a threaded BLAS dot on a loaded
    2-core machine waits for its second thread on each of the ~600 sums of a fit, and its
    result depends on the thread count (so would the Nelder-Mead path that follows)."""
    return float(np.sum(a * b))


def _exp_clamped(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """e = exp(eta) as R's and lme4's logit link clamp it (stats family.c, lme4 glmFamily.cpp):
    DBL_EPSILON below eta = -30, 1/DBL_EPSILON above 30. Also log(e) and where it was clamped."""
    if eta.max() <= 30 and eta.min() >= -30:
        return np.exp(eta), eta, None
    e = np.where(eta < -30, _EPS, np.where(eta > 30, 1 / _EPS, np.exp(np.clip(eta, -30, 30))))
    return e, np.log(e), np.abs(eta) > 30


def _devres(eta: np.ndarray, d: _Data) -> np.ndarray:
    """Binomial deviance residuals 2 n (y log(y/mu) + (1-y) log((1-y)/(1-mu))) (glmFamily.cpp),
    with mu = e / (1 + e) written as sat + 2 n log(1 + e) - 2 x log e."""
    return _devres_of(eta, d.sat, d.n2, d.x2)


def _devres_of(eta: np.ndarray, sat: np.ndarray, n2: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """`_devres` from the columns it reads (eta may hold one row per quadrature node)."""
    e, log_e, _ = _exp_clamped(eta)
    return sat + n2 * np.log1p(e) - x2 * log_e


def _logit(eta: np.ndarray, d: _Data) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """mu, variance mu (1 - mu), d mu / d eta (DBL_EPSILON where clamped) and sum(devres)."""
    e, log_e, clamped = _exp_clamped(eta)
    ope = 1 + e
    mu = e / ope
    var = mu / ope
    dev = (_dot(d.n2, np.log1p(e)) - _dot(d.x2, log_e)) + d.satsum
    return mu, var, var if clamped is None else np.where(clamped, _EPS, var), dev


@dataclass
class _Pirls:
    """State at the end of lme4's pwrssUpdate (src/external.cpp)."""

    eta: np.ndarray  # linear predictor (offset included) after the last update
    u: np.ndarray  # spherical random effects
    beta: float  # fixed effect (delb; only updated when not uOnly)
    lsq: np.ndarray  # L_ii^2 = 1 + theta^2 w_i from the last decomposition (previous iterate)
    w: np.ndarray  # working weights of that decomposition
    pdev: float  # resDev + ||u||^2


def _pirls(theta: float, offset: float, eta: np.ndarray, d: _Data, u_only: bool) -> _Pirls:
    """lme4 pwrssUpdate: IRLS steps for u (and beta unless u_only) from linear predictor eta.

    One study per level, Z = I, Lambda = theta, u0 = beta0 = 0, so L = diag(sqrt(1 + theta^2 w))
    and merPredD::solve()/solveU() reduce to the closed forms below (src/predModule.cpp).
    Stops when |oldpdev - pdev| / pdev < tolPwrss = 1e-7, halving steps if pdev increases.
    """
    oldpdev, u, beta, (mu, var, mu_eta, _) = math.inf, 0.0 * d.y, 0.0, _logit(eta, d)
    for _ in range(100):  # mkGlmerDevfun maxit = 100
        if mu_eta is var:  # w = sqrtWrkWt^2 = n muEta^2 / variance; w * glmResp::wrkResp
            w, wr = d.n * var, d.x - d.n * mu
        else:
            w, wr = d.n * mu_eta**2 / var, d.n * mu_eta * (d.y - mu) / var
        wwrk = w * (eta - offset) + wr
        lsq = 1 + theta * theta * w
        old_u, old_beta = u, beta
        if u_only:
            u = theta * wwrk / lsq
        else:
            a = w / lsq
            beta = float((wwrk / lsq).sum() / a.sum())
            u = theta * (wwrk - w * beta) / lsq
        eta = offset + beta + theta * u
        mu, var, mu_eta, dev = _logit(eta, d)
        pdev = dev + _dot(u, u)
        if abs((oldpdev - pdev) / pdev) < 1e-7:
            return _Pirls(eta, u, beta, lsq, w, pdev)
        for _ in range(20):  # step halving (maxstephalfit = 20)
            if not (math.isnan(pdev) or pdev > oldpdev):
                break
            u = (old_u + u) / 2
            beta = beta if u_only else (old_beta + beta) / 2
            eta = offset + beta + theta * u
            mu, var, mu_eta, dev = _logit(eta, d)
            pdev = dev + _dot(u, u)
        if math.isnan(pdev):
            raise _FitError("PIRLS loop resulted in NaN value")
        if pdev - oldpdev > 1e-7:
            raise _FitError("PIRLS step-halvings failed to reduce deviance in pwrssUpdate")
        oldpdev = pdev
    raise _FitError("pwrssUpdate did not converge in (maxit) iterations")


#: Studies per block of the quadrature: the 6 x block node arrays (and their temporaries) stay in
#: the processor's cache; at 100,000 studies one 6 x k array is 4.8 MB and every pass over it
#: goes to main memory. Up to this many studies there is one block, computed as before.
_AGQ_BLOCK = 8192


def _agq_deviance(theta: float, offset: float, s: _Pirls, d: _Data) -> float:
    """lme4 glmerAGQ (src/external.cpp): 7-point adaptive Gauss-Hermite deviance.

    devc0 = u^2 + devres at the modes, nodes u + z_k / L_ii, and
    sum(devc0) + sum(log L_ii^2) - 2 sum_i log(sum_k w_k exp(z_k^2/2 - (devc_ik - devc0_i)/2)).
    lme4's centre node z = 1.7e-17 contributes its weight times exp(~1e-17): taken as w exactly.
    Summed over blocks of `_AGQ_BLOCK` studies (one block up to that many).
    """
    k = s.u.size
    if k <= _AGQ_BLOCK:
        return _agq_block(theta, offset, s.u, s.eta, s.lsq, d.sat, d.n2, d.x2)
    total = 0.0
    for a in range(0, k, _AGQ_BLOCK):
        b = slice(a, a + _AGQ_BLOCK)
        total += _agq_block(theta, offset, s.u[b], s.eta[b], s.lsq[b], d.sat[b], d.n2[b], d.x2[b])
    return total


def _agq_block(
    theta: float,
    offset: float,
    u: np.ndarray,
    eta: np.ndarray,
    lsq: np.ndarray,
    sat: np.ndarray,
    n2: np.ndarray,
    x2: np.ndarray,
) -> float:
    """`_agq_deviance` of some studies: their three sums."""
    devc0 = u * u + _devres_of(eta, sat, n2, x2)
    # nodes as rows (6 x k): every operation runs along contiguous memory, and the sum over the
    # 6 nodes adds whole rows in node order, the order a per-study sum would take
    unode = u + _GH_Z6[:, None] / np.sqrt(lsq)
    devc = unode * unode + _devres_of(offset + theta * unode, sat, n2, x2)
    mult = np.exp(_GH_LOGW6[:, None] - 0.5 * (devc - devc0)).sum(axis=0) + _GH_W[3]
    return float(devc0.sum() + np.log(lsq).sum() - 2 * np.log(mult).sum())


def _devfun(par: np.ndarray, lp0: np.ndarray, d: _Data) -> tuple[float, _Pirls]:
    """Stage-2 glmer deviance (lme4 mkdevfun, nAGQ > 0): PIRLS for u from lp0, then AGQ."""
    theta, beta = float(par[0]), float(par[1])
    s = _pirls(theta, beta, lp0, d, u_only=True)
    return _agq_deviance(theta, beta, s, d), s


def _stage1(d: _Data) -> tuple[float, _Pirls]:
    """glmer stage 1 (nAGQ0initStep): theta minimising the nAGQ = 0 Laplace deviance.

    lme4 uses bobyqa from theta = 1; here Brent from the bracket (1, 1.2) on the same objective
    (ldL2 + sqrL + deviance), each evaluation starting from the linear predictor of the initial
    PIRLS at theta = 1 from mustart = (n y + 0.5)/(n + 1), as mkGlmerDevfun does.
    """
    # Imported here, not with the module: scipy.optimize is slow to import, and a cold start
    # draws the first page's title and sidebar before any GLMM runs.
    from scipy import optimize

    eta0 = np.log((d.x + 0.5) / (d.n - d.x + 0.5))
    lp_init = _pirls(1.0, 0.0, eta0, d, u_only=False).eta

    def laplace(theta: float) -> float:
        try:
            s = _pirls(abs(theta), 0.0, lp_init, d, u_only=False)
        except _FitError:
            return 1e300
        return float(np.log(s.lsq).sum() + s.pdev)

    try:  # local search from theta = 1 like bobyqa; the objective is even in theta
        theta = abs(float(optimize.minimize_scalar(laplace, bracket=(1.0, 1.2), tol=1e-8).x))
    except (RuntimeError, ValueError, OverflowError):
        theta = float(optimize.minimize_scalar(laplace, bounds=(0, 50), method="bounded").x)
    return theta, _pirls(theta, 0.0, lp_init, d, u_only=False)


class _NelderMead:
    """lme4's Nelder-Mead (src/optimizer.cpp, from NLopt nldrmd.c) step for step.

    glmer stage 2 runs it with xst = 0.2 (0.1, min(sd(beta), 10)), xt = 5e-4 xst and lower
    bound 0 for theta (lme4 optwrap, Nelder_Mead); it stops only when every vertex lies within
    xt of the centroid (nl_stop::x), or after 10000 evaluations. Points are Python lists.
    """

    def __init__(self, x0: list[float], xst: list[float], lb: list[float]) -> None:
        self.n, self.lb, self.xt = len(x0), lb, [s * 5e-4 for s in xst]
        self.pts = [list(x0) for _ in range(self.n + 1)]  # vertices (columns of d_pts)
        for i in range(self.n):
            self.pts[i + 1][i] += xst[i]
            if self.pts[i + 1][i] < lb[i]:
                far = x0[i] - lb[i] > abs(xst[i]) * 0.1
                self.pts[i + 1][i] = lb[i] if far else x0[i] + abs(xst[i])
        self.vals = [2.2250738585072014e-308] * (self.n + 1)  # DBL_MIN
        self.x, self.minf, self.xeval = list(x0), math.inf, list(x0)
        self.init_pos, self.stage, self.evals = 0, "restart", 0
        self.c, self.xcur, self.fl, self.fh, self.f_old, self.il, self.ih = x0, x0, 0, 0, 0, 0, 0

    def newf(self, f: float) -> str:
        """Install f = fn(xeval); returns 'active', 'xcvg' or 'evals' (Nelder_Mead::newf)."""
        self.evals += 1
        if f < self.minf:
            self.minf, self.x = f, list(self.xeval)
        if self.evals > 10000:
            return "evals"
        if self.init_pos <= self.n:
            self.vals[self.init_pos] = f
            self.init_pos += 1
            if self.init_pos > self.n:
                return self.restart()
            self.xeval = list(self.pts[self.init_pos])
            return "active"
        return getattr(self, self.stage)(f)

    def restart(self, f: float = 0.0) -> str:
        self.il = min(range(self.n + 1), key=self.vals.__getitem__)  # first minimum, as Eigen
        self.ih = max(range(self.n + 1), key=self.vals.__getitem__)  # first maximum
        self.fl, self.fh = self.vals[self.il], self.vals[self.ih]
        rows = list(zip(*self.pts, strict=True))
        self.c = [(sum(r) - r[self.ih]) / self.n for r in rows]
        for r, ci, xt in zip(rows, self.c, self.xt, strict=True):
            dev = max(abs(v - ci) for v in r)
            if not (dev < xt or dev == 0):  # nl_stop::x, relstop(0, dev, 1e-7, xt)
                break
        else:
            return "xcvg"
        ok, self.xcur = self.reflect(self.c, 1.0, self.pts[self.ih])
        if not ok:
            return "xcvg"
        self.xeval, self.stage = list(self.xcur), "postreflect"
        return "active"

    def postreflect(self, f: float) -> str:
        if f < self.fl:
            ok, self.xeval = self.reflect(self.c, 2.0, self.pts[self.ih])
            self.stage, self.f_old = "postexpand", f
            return "active" if ok else "xcvg"
        if f < self.fh:
            self.vals[self.ih], self.pts[self.ih] = f, list(self.xeval)
            return self.restart()
        ok, self.xcur = self.reflect(self.c, -0.5 if self.fh <= f else 0.5, self.pts[self.ih])
        if not ok:
            return "xcvg"
        self.f_old, self.xeval, self.stage = f, list(self.xcur), "postcontract"
        return "active"

    def postexpand(self, f: float) -> str:
        if f < self.vals[self.ih]:
            self.pts[self.ih], self.vals[self.ih] = list(self.xeval), f
        else:
            self.pts[self.ih], self.vals[self.ih] = list(self.xcur), self.f_old
        return self.restart()

    def postcontract(self, f: float) -> str:
        if f < self.f_old and f < self.fh:
            self.pts[self.ih], self.vals[self.ih] = list(self.xeval), f
            return self.restart()
        for i in range(self.n + 1):
            if i != self.il:
                ok, self.xeval = self.reflect(self.pts[self.il], -0.5, self.pts[i])
                if not ok:
                    return "xcvg"
                self.pts[i] = list(self.xeval)
        self.init_pos, self.xeval = 0, list(self.pts[0])
        return "active"

    def reflect(self, c: list[float], scale: float, xold: list[float]) -> tuple[bool, list[float]]:
        """reflectpt: c + scale (c - xold) pinned to the bounds; False if it coincides."""
        xnew = [
            max(ci + scale * (ci - xi), lb) for ci, xi, lb in zip(c, xold, self.lb, strict=True)
        ]
        equal_c = all(_close(a, b) for a, b in zip(xnew, c, strict=True))
        equal_old = all(_close(a, b) for a, b in zip(xnew, xold, strict=True))
        return not (equal_c or equal_old), xnew


def _close(a: float, b: float) -> bool:
    """optimizer.cpp close(): equal relative to floating-point precision."""
    return abs(a - b) <= 1e-13 * (abs(a) + abs(b))


def _stage2(d: _Data) -> tuple[np.ndarray, float, np.ndarray, str]:
    """glmer stage 2: Nelder-Mead over (theta, beta) on the AGQ deviance, as lme4 runs it.

    Returns the optimum, its deviance, lp0 (the stage-1 linear predictor every PIRLS starts
    from) and the Nelder-Mead status.
    """
    theta1, s1 = _stage1(d)
    beta_sd = math.sqrt(1 / float(np.sum(s1.w / s1.lsq)))  # sqrt(diag(pp$unsc()))
    nm = _NelderMead([theta1, s1.beta], [0.02, 0.2 * min(beta_sd, 10.0)], [0.0, -math.inf])
    status = "active"
    while status == "active":
        status = nm.newf(_devfun(np.array(nm.xeval), s1.eta, d)[0])
    return np.array(nm.x), nm.minf, s1.eta, status


def _deriv12(par: np.ndarray, lp0: np.ndarray, d: _Data) -> tuple[np.ndarray, np.ndarray]:
    """lme4 deriv12 (R/deriv.R): central-difference gradient and Hessian, delta = 1e-4."""
    h = _DELTA

    def f(dt: float, db: float) -> float:
        return _devfun(par + np.array([dt, db]), lp0, d)[0]

    fx = f(0, 0)
    fp, fm = np.array([f(h, 0), f(0, h)]), np.array([f(-h, 0), f(0, -h)])
    hess = np.diag(fp / h**2 - 2 * fx / (h * h) + fm / h**2)
    q = (2 * h) ** 2
    hess[0, 1] = hess[1, 0] = f(h, h) / q - f(h, -h) / q - f(-h, h) / q + f(-h, -h) / q
    return (fp - fm) / (2 * h), hess


def _heterogeneity_i2(x: np.ndarray, n: np.ndarray, tau2: float) -> tuple[float, float]:
    """rma.glmm.r: vt <- (k-p)/tr(P) with P = W - W X (X'WX)^-1 X'W; I2, H2 from tau2 and vt.

    The weights are 1/vi of escalc(measure="PLO", add=1/2, to="only0"), as rma.glmm takes them.
    """
    wi = 1.0 / logit_proportion(x, n)[1]
    vt = (len(x) - 1) / (wi.sum() - np.sum(wi**2) / wi.sum())
    return 100.0 * tau2 / (vt + tau2), tau2 / vt + 1.0


def _glm_saturated(d: _Data) -> tuple[np.ndarray, np.ndarray]:
    """R glm.fit IRLS for the saturated binomial model (one coefficient per study).

    Each study's WLS solution is its working response, so the iterations run per study but
    stop together: |dev - devold| / (|dev| + 0.1) < 1e-8 (glm.control). Returns the final
    logits and the working weights of the last iteration, which summary.glm's vcov uses.
    Studies with 0 or n events have no finite estimate; R stops them wherever IRLS stops.
    """
    eta = np.log((d.x + 0.5) / (d.n - d.x + 0.5))  # initialize: mustart = (n y + .5)/(n + 1)
    mu, var, mu_eta, devold = _logit(eta, d)
    w = d.n * var
    for _ in range(25):  # glm.control(maxit = 25)
        w = d.n * mu_eta**2 / var
        eta = eta + (d.y - mu) / mu_eta
        mu, var, mu_eta, dev = _logit(eta, d)
        if abs(dev - devold) / (abs(dev) + 0.1) < 1e-8:
            break
        devold = dev
    return eta, w


def _qe_tests(d: _Data) -> tuple[float, float, float]:
    """rma.glmm.r QE.Wld (Wald test of the saturated glm's study effects), QE.LRT and ll.QE.

    The Wald statistic b2' vb2^-1 b2 over the k-1 study contrasts equals the weighted sum of
    squares of the saturated logits about their weighted mean (a reparametrisation).
    """
    x, n = d.x, d.n
    eta, w = _glm_saturated(d)
    qe_wald = float(np.sum(w * (eta - np.sum(w * eta) / w.sum()) ** 2))
    logchoose = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)
    ll_qe = float(np.sum(logchoose + 0.5 * d.sat))  # sum(dbinom(x, n, x/n, log = TRUE))
    pbar = x.sum() / n.sum()
    ll_fe = float(np.sum(logchoose + special.xlogy(x, pbar) + special.xlog1py(n - x, -pbar)))
    return max(qe_wald, 0.0), max(-2.0 * (ll_fe - ll_qe), 0.0), ll_qe


def _eigvalsh(h: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of a symmetric 1x1 or 2x2 matrix (closed form)."""
    if h.shape == (1, 1):
        return h[0].copy()
    mid, rad = (h[0, 0] + h[1, 1]) / 2, math.hypot((h[0, 0] - h[1, 1]) / 2, h[0, 1])
    return np.array([mid - rad, mid + rad])


def _check_hess(hess: np.ndarray, hesstype: str = "") -> list[str]:
    """lme4:::checkHess (R/checkConv.R) with check.conv.hess tol = 1e-6."""
    evd = _eigvalsh(hess)
    label = f"{hesstype} " if hesstype else ""
    if np.sum(evd < -_HESS_TOL):
        return [
            f"Model failed to converge: degenerate {label}Hessian with "
            f"{int(np.sum(evd < -_HESS_TOL))} negative eigenvalues"
        ]
    if np.sum(np.abs(evd) < _HESS_TOL) or evd.min() <= 0:
        return [f"{label}Hessian is numerically singular: parameters are not uniquely determined"]
    out = []
    if evd.max() * _HESS_TOL > 1:
        out.append("Model is nearly unidentifiable: very large eigenvalue - Rescale variables?")
    if evd.min() / evd.max() < _HESS_TOL:
        out.append("Model is nearly unidentifiable: large eigenvalue ratio - Rescale variables?")
    return out


def _check_conv(par: np.ndarray, grad: np.ndarray, hess: np.ndarray) -> list[str]:
    """lme4:::checkConv (R/checkConv.R): gradient and Hessian checks unless the fit is singular."""
    if par[0] < _SINGULAR_TOL:
        return []  # "boundary (singular) fit" is only a message, which rma.glmm suppresses
    out = []
    try:
        scgrad = np.linalg.solve(np.linalg.cholesky(hess).T, grad)
        maxmin = float(np.max(np.minimum(np.abs(scgrad), np.abs(grad))))
        if maxmin > _GRAD_TOL:
            out.append(f"Model failed to converge with max|grad| = {maxmin:g} (tol = 0.002)")
    except np.linalg.LinAlgError:
        out.append("unable to evaluate scaled gradient")
    return out + _check_hess(hess[1:, 1:], "fixed-effect") + _check_hess(hess)


def _flatness(theta: float, hess: np.ndarray) -> str:
    """Why the fit is not identified (large tau2, deviance Hessian nearly singular), or ""."""
    lam = float(_eigvalsh(hess)[0])
    if lam >= _FLAT_EIGEN or theta < _FLAT_THETA:
        return ""
    return (
        f"likelihood nearly flat (smallest eigenvalue of the deviance Hessian {lam:.3g} < "
        f"{_FLAT_EIGEN}, tau2 {theta**2:.3g}): tau2 is not identified (e.g. studies with 0 "
        "and with all events); "
        "metafor reports wherever its Nelder-Mead stopped, without a warning"
    )


def _vcov_beta(hess: np.ndarray, final: _Pirls) -> tuple[float, str]:
    """lme4 1.1-31 vcov.merMod: 2 solve(H)[beta, beta] from deriv12's Hessian, else from RX."""
    try:
        v = 2.0 * float(np.linalg.inv(hess)[1, 1])
    except np.linalg.LinAlgError:
        v = float("nan")
    if np.isfinite(v) and v > 0:
        return v, ""
    v_rx = 1.0 / float(np.sum(final.w / final.lsq))  # sigma^2 pp$unsc() = (RX'RX)^-1
    return v_rx, (
        "variance-covariance matrix computed from finite-difference Hessian is not positive "
        "definite or contains NA values: falling back to var-cov estimated from RX"
    )


def _validate(x: np.ndarray, n: np.ndarray) -> str:
    if x.ndim != 1 or x.shape != n.shape:
        return "events and totals must be one-dimensional and of equal length"
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(n))):
        return "missing or non-finite counts (metafor would drop these studies with a warning)"
    if np.any(x < 0) or np.any(n <= 0) or np.any(x > n) or np.any(x != np.round(x)):
        return "counts must be integers with 0 <= events <= totals and totals > 0"
    if len(x) < 2:
        return "Number of parameters to be estimated is larger than the number of observations."
    if np.unique(x / n).size < 2:
        return "Cannot fit ML model (lme4::glmer: Response is constant)"
    return ""


def fit_glmm_logit(events: ArrayLike, totals: ArrayLike) -> GlmmFit:
    """Fit rma.glmm(measure='PLO', xi=events, ni=totals) with metafor 3.8-1 defaults."""
    x = np.atleast_1d(np.asarray(events, dtype=float))
    n = np.atleast_1d(np.asarray(totals, dtype=float))
    problem = _validate(x, n)
    if problem:
        return _failed(problem, int(x.size) if x.ndim == 1 else 0)
    k = len(x)
    d = _data(x, n)
    qe_wald, qe_lrt, ll_qe = _qe_tests(d)
    qe = {
        "qe_wald": qe_wald,
        "qe_wald_p": float(special.chdtrc(k - 1, qe_wald)),  # pchisq(lower.tail = FALSE)
        "qe_lrt": qe_lrt,
        "qe_lrt_p": float(special.chdtrc(k - 1, qe_lrt)),
    }
    try:
        par, fval, lp0, status = _stage2(d)
        grad, hess = _deriv12(par, lp0, d)
        if 0 < par[0] < _BOUNDARY_TOL:  # lme4:::check.boundary
            trial = np.array([0.0, par[1]])
            par = trial if _devfun(trial, lp0, d)[0] < fval else par
        final = _devfun(par, lp0, d)[1]
    except _FitError as err:
        return _failed(f"Cannot fit ML model (lme4::glmer: {err})", k, **qe)
    var, vcov_warning = _vcov_beta(hess, final)
    warnings = ["failure to converge in 10000 evaluations"] if status == "evals" else []
    warnings += [w for w in (_flatness(par[0], hess), vcov_warning) if w] + _check_conv(
        par, grad, hess
    )
    tau2 = float(par[0] ** 2)
    i2, h2 = _heterogeneity_i2(x, n, tau2)
    cond_dev = float(_devres(final.eta, d).sum())  # deviance.merMod for a GLMM
    return GlmmFit(
        estimate=float(par[1]),
        se=math.sqrt(var),
        tau2=tau2,
        i2=float(i2),
        h2=float(h2),
        **qe,
        qe_df=k - 1,
        loglik=float(ll_qe - 0.5 * cond_dev),  # rma.glmm.r: ll.ML <- ll.QE - 1/2 deviance(res.ML)
        converged=not warnings,
        message="; ".join(warnings),
    )
