"""Result records returned by the meta-analysis functions.

Frozen dataclasses so a result shown in a meeting cannot be altered after it was computed;
numeric fields are ``None`` (never NaN) when a quantity does not exist, so the UI can print
"not estimable" instead of "nan".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .effect_sizes import clopper_pearson

if TYPE_CHECKING:  # pandas only for to_frame(), imported lazily there
    import pandas as pd


def clean(value: Any) -> float | None:
    """Turn NaN/inf/numpy scalars into float or None so results never carry NaN."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class StudyEstimate:
    """One study's (cohort's) proportion, exact CI, model-scale value and weight."""

    label: str
    events: int
    total: int
    proportion: float
    ci_low: float  # Clopper-Pearson 95%
    ci_high: float
    yi: float  # model scale (logit or Freeman-Tukey), metafor escalc
    vi: float
    weight: float | None  # percent of the total weight in the model used


def study_estimates(
    labels: list[str],
    x: np.ndarray,
    n: np.ndarray,
    yi: np.ndarray,
    vi: np.ndarray,
    weights: np.ndarray | None,
) -> tuple[StudyEstimate, ...]:
    """One StudyEstimate per study: the observed proportion with its exact CI beside the
    model-scale yi, vi the fit used and the study's percent weight (None when not fitted)."""
    out = []
    for i, lab in enumerate(labels):
        lo, hi = clopper_pearson(x[i], n[i])
        out.append(
            StudyEstimate(
                label=lab,
                events=int(x[i]),
                total=int(n[i]),
                proportion=float(x[i] / n[i]),
                ci_low=lo,
                ci_high=hi,
                yi=float(yi[i]),
                vi=float(vi[i]),
                weight=None if weights is None else float(weights[i]),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class PoolResult:
    """A pooled single proportion: proportion scale for people, model scale for checking."""

    # proportion scale (back-transformed)
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    pi_low: float | None
    pi_high: float | None
    # model scale (logit or Freeman-Tukey double arcsine)
    estimate_model: float | None
    se_model: float | None
    ci_low_model: float | None
    ci_high_model: float | None
    pi_low_model: float | None
    pi_high_model: float | None
    statistic: float | None  # z or t value of the estimate
    p_value: float | None
    df: int | None  # t degrees of freedom for HKSJ, None for z
    # heterogeneity
    tau2: float | None
    tau2_se: float | None
    i2: float | None  # percent
    h2: float | None
    q: float | None  # Cochran's Q (IV) or the Wald-type QE (GLMM)
    q_df: int | None
    q_p: float | None
    q_lrt: float | None  # GLMM only: likelihood-ratio test of tau² = 0 as rma.glmm reports
    q_lrt_p: float | None
    # bookkeeping
    k: int
    n_total: int
    events_total: int
    method: str  # the model actually shown
    method_requested: str
    transform: str
    ci_method: str
    converged: bool
    fallback_reason: str | None
    notes: tuple[str, ...]
    studies: tuple[StudyEstimate, ...]
    n_harmonic: float | None = None  # n used by the Freeman-Tukey back-transform
    # Q-profile 95% CI (confint.rma.uni); inverse-variance models with k >= 2 only
    tau2_ci_low: float | None = None
    tau2_ci_high: float | None = None
    i2_ci_low: float | None = None
    i2_ci_high: float | None = None

    def to_frame(self) -> pd.DataFrame:
        """Studies plus a pooled row, tidy, for forest plots and tables."""
        import pandas as pd

        return pd.DataFrame(self.to_records())

    def to_records(self) -> list[dict[str, object]]:
        """The rows of `to_frame` as plain dicts (no pandas round trip for a handful of rows)."""
        rows: list[dict[str, object]] = [
            {
                "row_type": "study",
                "label": s.label,
                "events": s.events,
                "total": s.total,
                "proportion": s.proportion,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "pi_low": None,
                "pi_high": None,
                "yi": s.yi,
                "vi": s.vi,
                "weight": s.weight,
            }
            for s in self.studies
        ]
        rows.append(
            {
                "row_type": "pooled",
                "label": f"Pooled ({self.method}, {self.transform}, {self.ci_method})",
                "events": self.events_total,
                "total": self.n_total,
                "proportion": self.estimate,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "pi_low": self.pi_low,
                "pi_high": self.pi_high,
                "yi": self.estimate_model,
                "vi": None if self.se_model is None else self.se_model**2,
                "weight": 100.0 if self.k else None,
            }
        )
        return rows


@dataclass(frozen=True)
class LeaveOneOutRow:
    """The pooled result with one study left out (metafor ``leave1out``)."""

    omitted: str
    result: PoolResult


@dataclass(frozen=True)
class StudyComparison:
    """One study's two-arm counts and its log OR / log RR (escalc, 1/2 added if a cell is 0)."""

    label: str
    events_a: int
    total_a: int
    events_b: int
    total_b: int
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    yi: float | None
    vi: float | None
    weight: float | None


@dataclass(frozen=True)
class ComparisonResult:
    """A pooled odds ratio or risk ratio (group A vs group B)."""

    measure: str
    method: str
    estimate: float | None  # ratio scale
    ci_low: float | None
    ci_high: float | None
    pi_low: float | None
    pi_high: float | None
    estimate_model: float | None  # log scale
    se_model: float | None
    ci_low_model: float | None
    ci_high_model: float | None
    pi_low_model: float | None
    pi_high_model: float | None
    statistic: float | None
    p_value: float | None
    df: int | None
    tau2: float | None
    i2: float | None
    h2: float | None
    q: float | None
    q_df: int | None
    q_p: float | None
    cmh: float | None  # Cochran-Mantel-Haenszel test (MH, OR only; rma.mh "MH", correct=TRUE)
    cmh_p: float | None
    k: int
    ci_method: str
    notes: tuple[str, ...]
    studies: tuple[StudyComparison, ...]
    # MH odds ratio only: Breslow-Day and Tarone tests of homogeneity, as rma.mh reports them
    breslow_day: float | None = None
    breslow_day_p: float | None = None
    tarone: float | None = None
    tarone_p: float | None = None
    breslow_day_df: int | None = None

    def to_frame(self) -> pd.DataFrame:
        """Studies plus a pooled row, for forest plots and tables."""
        import pandas as pd

        rows = [
            {
                "row_type": "study",
                "label": s.label,
                "events_a": s.events_a,
                "total_a": s.total_a,
                "events_b": s.events_b,
                "total_b": s.total_b,
                "ratio": s.ratio,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "weight": s.weight,
            }
            for s in self.studies
        ]
        rows.append(
            {
                "row_type": "pooled",
                "label": f"Pooled {self.measure} ({self.method})",
                "events_a": sum(s.events_a for s in self.studies),
                "total_a": sum(s.total_a for s in self.studies),
                "events_b": sum(s.events_b for s in self.studies),
                "total_b": sum(s.total_b for s in self.studies),
                "ratio": self.estimate,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "weight": 100.0 if self.k else None,
            }
        )
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class SubgroupPool:
    """One subgroup's pooled result."""

    name: str
    result: PoolResult
    single_study: bool


@dataclass(frozen=True)
class SubgroupResult:
    """Per-subgroup pools plus tests for subgroup differences.

    ``qm*``: metafor's mixed-effects moderator test (one tau² common to all subgroups).
    ``q_between_separate*``: Q between subgroup estimates each pooled with its own tau²
    (R meta's default ``tau.common=FALSE``), offered as a labelled alternative.
    """

    subgroups: tuple[SubgroupPool, ...]
    qm: float | None
    qm_df: int | None
    qm_df2: int | None  # denominator df of the F test under HKSJ, else None
    qm_p: float | None
    qm_test: str  # "chi2" or "F"
    tau2_common: float | None
    i2_residual: float | None
    qe_residual: float | None
    qe_residual_df: int | None
    qe_residual_p: float | None
    q_between_separate: float | None
    q_between_separate_df: int | None
    q_between_separate_p: float | None
    method: str
    transform: str
    ci_method: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class FittedLine:
    """Fitted proportion over a moderator grid, with CI and PI, for a bubble-plot line."""

    x: tuple[float, ...]
    estimate: tuple[float | None, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]
    pi_low: tuple[float | None, ...]
    pi_high: tuple[float | None, ...]
    estimate_model: tuple[float | None, ...]
    ci_low_model: tuple[float | None, ...]
    ci_high_model: tuple[float | None, ...]
    pi_low_model: tuple[float | None, ...]
    pi_high_model: tuple[float | None, ...]


@dataclass(frozen=True)
class MetaRegressionResult:
    """Random-effects meta-regression on one moderator (``rma(yi, vi, mods = ~ x)``)."""

    intercept: float | None
    slope: float | None
    se_intercept: float | None
    se_slope: float | None
    ci_low_intercept: float | None
    ci_high_intercept: float | None
    ci_low_slope: float | None
    ci_high_slope: float | None
    p_intercept: float | None
    p_slope: float | None
    tau2: float | None
    i2: float | None
    h2: float | None
    qe: float | None
    qe_df: int | None
    qe_p: float | None
    qm: float | None
    qm_df: int | None
    qm_df2: int | None
    qm_p: float | None
    k: int
    method: str
    transform: str
    ci_method: str
    notes: tuple[str, ...]
    studies: tuple[StudyEstimate, ...]
    moderator: tuple[float, ...]
    _beta: tuple[float, ...] = field(default=(), repr=False)
    _vb: tuple[tuple[float, ...], ...] = field(default=(), repr=False)
    _crit: float | None = field(default=None, repr=False)
    _n_harmonic: float | None = field(default=None, repr=False)

    def fitted_line(self, x_grid: Any) -> FittedLine:
        """``predict(fit, newmods = x_grid)`` back-transformed to proportions."""
        from .effect_sizes import ilogit, ipft_hm

        grid = np.asarray(x_grid, dtype=float).ravel()
        if not self._beta:
            nones: tuple[None, ...] = tuple(None for _ in grid)
            return FittedLine(tuple(map(float, grid)), *([nones] * 10))
        beta = np.asarray(self._beta)
        vb = np.asarray(self._vb)
        xnew = np.column_stack([np.ones_like(grid), grid])
        pred = xnew @ beta
        vpred = np.einsum("ij,jk,ik->i", xnew, vb, xnew)
        crit = self._crit if self._crit is not None else math.nan
        tau2 = self.tau2 or 0.0
        se = np.sqrt(vpred)
        lo, hi = pred - crit * se, pred + crit * se
        plo = pred - crit * np.sqrt(vpred + tau2)
        phi = pred + crit * np.sqrt(vpred + tau2)

        def back(z: float | None) -> float | None:
            if z is None:
                return None
            if self.transform == "logit":
                return ilogit(z)
            return ipft_hm(z, self._n_harmonic or math.nan)

        def tup(a: Any) -> tuple[float | None, ...]:
            return tuple(clean(v) for v in a)

        return FittedLine(
            x=tuple(map(float, grid)),
            estimate=tuple(back(clean(v)) for v in pred),
            ci_low=tuple(back(clean(v)) for v in lo),
            ci_high=tuple(back(clean(v)) for v in hi),
            pi_low=tuple(back(clean(v)) for v in plo),
            pi_high=tuple(back(clean(v)) for v in phi),
            estimate_model=tup(pred),
            ci_low_model=tup(lo),
            ci_high_model=tup(hi),
            pi_low_model=tup(plo),
            pi_high_model=tup(phi),
        )
