"""Binomial-normal GLMM for pooling single proportions, reproducing metafor's rma.glmm.

Why: for rare events and small studies the random-intercept logistic model (one stage, exact
binomial likelihood, no continuity correction) is the primary analysis. Two-step
inverse-variance methods treat within-study variances as known and need ad hoc corrections for
zero counts; GLMMs have smaller bias and MSE and better coverage (Stijnen, Hamza & Ozdemir 2010,
Stat Med 29:3046; Lin & Chu 2020, Epidemiology 31:713).

Model: x_i ~ Binomial(n_i, ilogit(mu + b_i)), b_i ~ N(0, tau2). The estimate ``mu`` is on the
logit scale; ``ilogit(mu)`` is the *median* (conditional) proportion across studies, not the
population-averaged mean proportion.

What is reproduced (metafor 3.8-1 ``rma.glmm(measure="PLO")`` defaults, which call
``lme4::glmer(cbind(x, n-x) ~ 1 + (1|study), family=binomial, nAGQ=7)``, lme4 1.1-31):

* the deviance is lme4's adaptive Gauss-Hermite one (src/external.cpp ``glmerAGQ``): per study
  the conditional mode u_i of the spherical random effect, 7 GH nodes u_i + z_k / L_ii with
  L_ii = sqrt(1 + theta^2 w_i), and
  ``sum(u^2 + devres) + sum(log L_ii^2) - 2 sum(log(sum_k w_k exp(z_k^2/2 - ddev_ik/2)))``;
* the ML estimate of (theta, beta), tau2 = theta^2. lme4 stops Nelder-Mead at |dDev| < 1e-5;
  here the exact optimum is found by Newton steps, so results differ from R by the distance of
  R's stopping point from the optimum (about 1e-5 in the parameters);
* the SE of mu from ``vcov.merMod``: lme4 1.1-31 uses the finite-difference Hessian of the
  deviance over (theta, beta) (``deriv12``, delta 1e-4) whenever it is available, which is the
  glmer default (``use.hessian = hess.avail``), V = 2 * solve(H)[beta, beta];
* I2/H2 from the "typical" within-study variance of the PLO escalc values (0.5 added to
  studies with 0 or n events), QE.Wld / QE.LRT from the saturated and fixed-effects glm, and
  the log-likelihood metafor reports (ll.QE - deviance(glmer fit) / 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

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
_NOT_FINITE = (
    "ML estimate of tau2 is not finite (the likelihood keeps increasing with tau2: studies are "
    "separated, e.g. some with 0 and some with all events); metafor returns wherever "
    "Nelder-Mead stopped"
)
# lme4's Nelder-Mead stops when the deviance changes by < 1e-5 (FtolAbs); where the smallest
# eigenvalue of the deviance Hessian is below 0.05 that leaves R's answer anywhere within about
# sqrt(2e-5 / 0.05) = 0.02 of the optimum, so no implementation can reproduce it to 1e-4.
_FLAT_EIGEN = 0.05
_DELTA = 1e-4  # lme4 deriv12() default step (R/deriv.R)
_THETA_MAX = 50.0  # tau2 = 2500 on the logit scale: beyond this the ML tau2 is taken as infinite
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
    x: np.ndarray
    n: np.ndarray
    sat: np.ndarray  # 2*(x log(x/n) + (n-x) log((n-x)/n)): devres = sat-free part + this


def _failed(message: str, k: int, **known: float) -> GlmmFit:
    nan = float("nan")
    values = dict.fromkeys(
        ("estimate", "se", "tau2", "i2", "h2", "qe_wald", "qe_wald_p", "qe_lrt", "qe_lrt_p"),
        nan,
    )
    values.update(known)
    return GlmmFit(**values, qe_df=max(k - 1, 0), loglik=nan, converged=False, message=message)


def _devres(eta: np.ndarray, d: _Data) -> np.ndarray:
    """Binomial deviance residuals 2*wt*(y log(y/mu) + (1-y) log((1-y)/(1-mu))) (glmFamily.cpp)."""
    return 2.0 * (d.x * np.logaddexp(0.0, -eta) + (d.n - d.x) * np.logaddexp(0.0, eta)) + d.sat


def _modes(
    theta: np.ndarray, beta: np.ndarray, d: _Data, u0: np.ndarray | None = None
) -> np.ndarray:
    """Conditional modes u of the spherical random effects (lme4 pwrssUpdate, uOnly = TRUE).

    Minimises devres(beta + theta u) + u^2 per study by Newton steps with step halving.
    """
    shape = np.broadcast_shapes(theta.shape, beta.shape, d.x.shape)
    u = np.zeros(shape) if u0 is None else np.broadcast_to(u0, shape).copy()
    eta = beta + theta * u
    obj = _devres(eta, d) + u**2
    for _ in range(200):
        mu = special.expit(eta)
        step = (theta * (d.n * mu - d.x) + u) / (theta**2 * d.n * mu * (1.0 - mu) + 1.0)
        new = u - step
        eta_new = beta + theta * new
        obj_new = _devres(eta_new, d) + new**2
        bad = obj_new > obj + 1e-12 * (1.0 + obj)
        for _ in range(60):
            if not bad.any():
                break
            step = np.where(bad, step / 2.0, step)
            new = u - step
            eta_new = beta + theta * new
            obj_new = _devres(eta_new, d) + new**2
            bad &= obj_new > obj + 1e-12 * (1.0 + obj)
        u, eta, obj = new, eta_new, obj_new
        if np.max(np.abs(step)) < 1e-11:
            break
    return u


def _deviance(
    theta: np.ndarray, beta: np.ndarray, d: _Data, u0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lme4 AGQ deviance (external.cpp glmerAGQ) at parameter points of shape (m, 1).

    Returns the deviance (m,), the conditional deviance sum(devres) at the modes (m,), which is
    what lme4's deviance() returns for a GLMM (deviance.merMod), and the modes (m, k).
    """
    u = _modes(theta, beta, d, u0)
    eta = beta + theta * u
    mu = special.expit(eta)
    ldl2 = np.log1p(theta**2 * d.n * mu * (1.0 - mu))  # log L_ii^2
    dr0 = _devres(eta, d)
    devc0 = u**2 + dr0
    unode = u[..., None] + _GH_Z / np.exp(0.5 * ldl2)[..., None]
    devc = unode**2 + _devres(beta[..., None] + theta[..., None] * unode, _expand(d))
    # exponents are <= log(w_k) + z_k^2/2 < 0 (the mode minimises devc); the z = 0 node is 1
    mult = np.sum(np.exp(_GH_LOGW - 0.5 * (devc - devc0[..., None])), axis=-1)
    dev = devc0.sum(-1) + ldl2.sum(-1) - 2.0 * np.log(mult).sum(-1)
    return dev, dr0.sum(-1), u


def _expand(d: _Data) -> _Data:
    return _Data(d.x[:, None], d.n[:, None], d.sat[:, None])


def _stencil(
    par: np.ndarray, d: _Data, u0: np.ndarray | None = None, h: float = _DELTA
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Deviance, gradient and Hessian by central differences, as lme4 deriv12 (R/deriv.R).

    Also returns the modes at ``par`` (to warm-start the next evaluation).
    """
    e = np.eye(2) * h
    ones, cross = [e[0], -e[0], e[1], -e[1]], [e[0] + e[1], e[0] - e[1], e[1] - e[0], -e[0] - e[1]]
    pts = par + np.array([np.zeros(2), *ones, *cross])
    f, _, u = _deviance(pts[:, :1], pts[:, 1:2], d, u0)
    grad = np.array([f[1] - f[2], f[3] - f[4]]) / (2.0 * h)
    hdiag = np.array([f[1] - 2 * f[0] + f[2], f[3] - 2 * f[0] + f[4]]) / h**2
    hoff = (f[5] - f[6] - f[7] + f[8]) / (2.0 * h) ** 2
    return float(f[0]), grad, np.array([[hdiag[0], hoff], [hoff, hdiag[1]]]), u[0]


def _newton_step(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """Newton direction; eigenvalues floored when the Hessian is not positive definite."""
    lam, vec = np.linalg.eigh(hess)
    lam = np.maximum(np.abs(lam), 1e-3 * max(np.max(np.abs(lam)), 1e-8))
    return -(vec @ ((vec.T @ grad) / lam))


def _start(d: _Data) -> np.ndarray:
    """Starting values: pooled logit and DL tau2 on the 0.5-corrected logits (capped)."""
    yi, vi = _escalc_plo(d.x, d.n)
    wi = 1.0 / vi
    ybar = np.sum(wi * yi) / wi.sum()
    q = np.sum(wi * (yi - ybar) ** 2)
    tau2 = max((q - (len(yi) - 1)) / (wi.sum() - np.sum(wi**2) / wi.sum()), 0.0)
    return np.array([min(max(math.sqrt(tau2), 0.3), 3.0), ybar])


def _optimise(d: _Data) -> tuple[np.ndarray, str, np.ndarray, np.ndarray]:
    """Minimise the AGQ deviance over (theta, beta) by Newton steps with FD derivatives.

    Returns the optimum, "" or why it was not found, and the gradient and Hessian there. A step
    is accepted when the deviance at its end (the centre of the next stencil) does not
    increase, otherwise it is halved.
    """
    par = _start(d)
    f0, grad, hess, u = _stencil(par, d)
    step = _newton_step(grad, hess)
    for _ in range(200):
        trial = par + step
        trial[0] = abs(trial[0])  # the deviance is even in theta
        if trial[0] > _THETA_MAX or abs(trial[1]) > 50.0:
            return trial, _NOT_FINITE, grad, hess
        f1, grad1, hess1, u1 = _stencil(trial, d, u)
        if f1 > f0 + 1e-10 * (1.0 + abs(f0)):
            if np.max(np.abs(step)) < 1e-12:
                return par, "", grad, hess
            step = step / 2.0
            continue
        small = np.max(np.abs(step)) < 1e-7
        par, f0, grad, hess, u = trial, f1, grad1, hess1, u1
        if small:
            return par, "", grad, hess
        step = _newton_step(grad, hess)
    return par, "Newton iterations for the ML estimate did not converge", grad, hess


def _escalc_plo(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """metafor escalc(measure='PLO', add=1/2, to='only0'): logit and its sampling variance."""
    add = np.where((x == 0) | (x == n), 0.5, 0.0)
    a, b = x + add, n - x + add
    return np.log(a / b), 1.0 / a + 1.0 / b


def _heterogeneity_i2(x: np.ndarray, n: np.ndarray, tau2: float) -> tuple[float, float]:
    """rma.glmm.r: vt <- (k-p)/tr(P) with P = W - W X (X'WX)^-1 X'W; I2, H2 from tau2 and vt."""
    wi = 1.0 / _escalc_plo(x, n)[1]
    vt = (len(x) - 1) / (wi.sum() - np.sum(wi**2) / wi.sum())
    return 100.0 * tau2 / (vt + tau2), tau2 / vt + 1.0


def _glm_linkinv(eta: np.ndarray) -> np.ndarray:
    """R binomial()$linkinv (src/library/stats/src/family.c), clamped at |eta| > 30."""
    eps = np.finfo(float).eps
    tmp = np.where(eta < -30, eps, np.where(eta > 30, 1 / eps, np.exp(np.clip(eta, -30, 30))))
    return tmp / (1 + tmp)


def _glm_deviance(y: np.ndarray, mu: np.ndarray, n: np.ndarray) -> float:
    """R binomial()$dev.resids summed: 2 n (y log(y/mu) + (1-y) log((1-y)/(1-mu)))."""
    return float(
        np.sum(2 * n * (special.xlogy(y, y / mu) + special.xlogy(1 - y, (1 - y) / (1 - mu))))
    )


def _glm_saturated(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R glm.fit IRLS for the saturated binomial model (one coefficient per study).

    Each study's WLS solution is its working response, so the iterations run per study but
    stop together: |dev - devold| / (|dev| + 0.1) < 1e-8 (glm.control). Returns the final
    logits and the working weights of the last iteration, which summary.glm's vcov uses.
    Studies with 0 or n events have no finite estimate; R stops them wherever IRLS stops.
    """
    y = x / n
    eta = np.log((x + 0.5) / (n - x + 0.5))  # binomial()$initialize: mustart = (n y + .5)/(n + 1)
    mu = _glm_linkinv(eta)
    devold = _glm_deviance(y, mu, n)
    w = n * mu * (1 - mu)
    for _ in range(25):  # glm.control(maxit = 25)
        mu_eta = np.where(np.abs(eta) > 30, np.finfo(float).eps, mu * (1 - mu))
        w = n * mu_eta**2 / (mu * (1 - mu))
        eta = eta + (y - mu) / mu_eta
        mu = _glm_linkinv(eta)
        dev = _glm_deviance(y, mu, n)
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
    eta, w = _glm_saturated(x, n)
    qe_wald = float(np.sum(w * (eta - np.sum(w * eta) / w.sum()) ** 2))
    logchoose = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)
    ll_qe = float(np.sum(logchoose + 0.5 * d.sat))  # sum(dbinom(x, n, x/n, log = TRUE))
    pbar = x.sum() / n.sum()
    ll_fe = float(np.sum(logchoose + special.xlogy(x, pbar) + special.xlog1py(n - x, -pbar)))
    return max(qe_wald, 0.0), max(-2.0 * (ll_fe - ll_qe), 0.0), ll_qe


def _check_hess(hess: np.ndarray, hesstype: str = "") -> list[str]:
    """lme4:::checkHess (R/checkConv.R) with check.conv.hess tol = 1e-6."""
    evd = np.linalg.eigvalsh(hess)
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


def _flatness(hess: np.ndarray) -> str:
    """Why the optimum cannot be located reproducibly (see _FLAT_EIGEN), or ""."""
    lam = float(np.linalg.eigvalsh(hess)[0])
    if lam >= _FLAT_EIGEN:
        return ""
    spread = math.sqrt(2e-5 / max(lam, 1e-12))
    return (
        f"likelihood too flat (smallest deviance-Hessian eigenvalue {lam:.3g}): metafor's "
        f"Nelder-Mead stops anywhere within about {spread:.2g} of the optimum, so its "
        "estimates are not reproducible; tau2 is very large or poorly identified"
    )


def _vcov_beta(par: np.ndarray, hess: np.ndarray, d: _Data) -> tuple[float, str]:
    """lme4 1.1-31 vcov.merMod: 2*solve(H)[beta,beta] from deriv12's Hessian, else RX-based."""
    try:
        v = 2.0 * float(np.linalg.inv(hess)[1, 1])
    except np.linalg.LinAlgError:
        v = float("nan")
    if np.isfinite(v) and v > 0:
        return v, ""
    theta, beta = par
    u = _modes(np.array([theta]), np.array([beta]), d)
    w = d.n * special.expit(beta + theta * u) * (1 - special.expit(beta + theta * u))
    v_rx = 1.0 / float(np.sum(w / (1.0 + theta**2 * w)))  # sigma^2 pp$unsc() = (RX'RX)^-1
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
        return "Cannot fit ML model (lme4::glmer: Response is constant)."
    return ""


def fit_glmm_logit(events: ArrayLike, totals: ArrayLike) -> GlmmFit:
    """Fit rma.glmm(measure='PLO', xi=events, ni=totals) with metafor 3.8-1 defaults."""
    x = np.atleast_1d(np.asarray(events, dtype=float))
    n = np.atleast_1d(np.asarray(totals, dtype=float))
    problem = _validate(x, n)
    if problem:
        return _failed(problem, int(x.size) if x.ndim == 1 else 0)
    k = len(x)
    d = _Data(x, n, 2.0 * (special.xlogy(x, x / n) + special.xlogy(n - x, (n - x) / n)))
    qe_wald, qe_lrt, ll_qe = _qe_tests(d)
    qe = {
        "qe_wald": qe_wald,
        "qe_wald_p": float(stats.chi2.sf(qe_wald, k - 1)),
        "qe_lrt": qe_lrt,
        "qe_lrt_p": float(stats.chi2.sf(qe_lrt, k - 1)),
    }
    par, problem, grad, hess = _optimise(d)
    if problem:
        return _failed(problem, k, **qe)
    flat = _flatness(hess)
    if par[0] < _BOUNDARY_TOL:  # lme4:::check.boundary (then the ML beta is the pooled logit)
        par = np.array([0.0, math.log(x.sum() / (n.sum() - x.sum()))])
        _, grad, hess, _ = _stencil(par, d)
    var, vcov_warning = _vcov_beta(par, hess, d)
    warnings = [flat] if flat else []
    warnings += _check_conv(par, grad, hess) + ([vcov_warning] if vcov_warning else [])
    tau2 = float(par[0] ** 2)
    i2, h2 = _heterogeneity_i2(x, n, tau2)
    cond_dev = _deviance(par[:1, None], par[1:, None], d)[1][0]
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
