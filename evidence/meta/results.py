"""Result records returned by the meta-analysis functions.

Frozen dataclasses so a result shown in a meeting cannot be altered after it was computed;
numeric fields are ``None`` (never NaN) when a quantity does not exist, so the UI can print
"not estimable" instead of "nan".

The records nest, as statsmodels' ``HomogeneityTestResult`` and PyMARE's result objects do, so
that each quantity is named once:

* a pooled estimate exists on two scales, so it is one `Scaled` (estimate, CI, prediction
  interval) per scale: ``result.proportion`` for people, ``result.model`` (logit,
  Freeman-Tukey or log ratio) for checking against R;
* every interval is an `Interval` and every Q-type test one `QTest`, instead of field pairs
  and (statistic, df, p) triples;
* a meta-regression coefficient is a `Coefficient`.

Intervals and tests that the model defines are always present, with None inside when these
data do not allow them (k = 1 has no heterogeneity test); a test that only some methods compute
(the GLMM's likelihood-ratio test, the Mantel-Haenszel tests) is None when the method shown does
not compute it. Each result with a "nothing estimated" state has one ``empty`` constructor, so
no caller fills Nones by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .effect_sizes import back_transform, clopper_pearson
from .heterogeneity import predict

if TYPE_CHECKING:  # pandas only for to_frame(), imported lazily there
    import pandas as pd

    from .heterogeneity import RmaFit


def clean(value: Any) -> float | None:
    """Turn NaN/inf/numpy scalars into float or None so results never carry NaN."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A two-sided 95% interval; a bound is None where it does not exist."""

    low: float | None = None
    high: float | None = None

    def map(self, fn: Callable[[float | None], float | None]) -> Interval:
        """Both bounds through ``fn``, e.g. a back-transform from the model scale."""
        return Interval(fn(self.low), fn(self.high))


@dataclass(frozen=True)
class QTest:
    """A Q-type test: statistic, degrees of freedom, p-value and the reference distribution.

    ``distribution`` is "chi2" (``df``) or "F" (numerator ``df``, denominator ``df2``): with
    Hartung-Knapp metafor divides QM by its df and refers it to an F distribution.
    """

    statistic: float | None = None
    df: int | None = None
    p_value: float | None = None
    df2: int | None = None
    distribution: str = "chi2"


@dataclass(frozen=True)
class Scaled:
    """An estimate with its confidence and prediction intervals, on one scale."""

    estimate: float | None = None
    ci: Interval = Interval()
    pi: Interval = Interval()

    def map(self, fn: Callable[[float | None], float | None]) -> Scaled:
        """Every value through ``fn``: the proportion (or ratio) scale from the model scale."""
        return Scaled(fn(self.estimate), self.ci.map(fn), self.pi.map(fn))


@dataclass(frozen=True)
class Coefficient:
    """One row of metafor's coefficient table (model scale): estimate, SE, CI and p-value."""

    estimate: float | None = None
    se: float | None = None
    ci: Interval = Interval()
    p_value: float | None = None


# ---------------------------------------------------------------------------------------------
# Single proportions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyEstimate:
    """One study's (cohort's) proportion, exact CI, model-scale value and weight."""

    label: str
    events: int
    total: int
    proportion: float
    ci: Interval  # Clopper-Pearson 95%
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
                ci=Interval(lo, hi),
                yi=float(yi[i]),
                vi=float(vi[i]),
                weight=None if weights is None else float(weights[i]),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class PoolResult:
    """A pooled single proportion: proportion scale for people, model scale for checking."""

    proportion: Scaled  # back-transformed (ilogit, or ipft.hm at n_harmonic)
    model: Scaled  # logit or Freeman-Tukey double arcsine
    se: float | None  # standard error of model.estimate
    statistic: float | None  # z or t value of model.estimate
    p_value: float | None
    df: int | None  # t degrees of freedom for HKSJ, None for z
    tau2: float | None
    tau2_se: float | None
    i2: float | None  # percent
    h2: float | None
    heterogeneity: QTest  # Cochran's Q (inverse variance) or the Wald-type QE (GLMM)
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
    # GLMM only: likelihood-ratio test of tau² = 0 as rma.glmm reports it (QE.LRT)
    lrt: QTest | None = None
    # Q-profile 95% CI (confint.rma.uni); inverse-variance models with k >= 2 only
    tau2_ci: Interval = Interval()
    i2_ci: Interval = Interval()
    n_harmonic: float | None = None  # n used by the Freeman-Tukey back-transform

    @classmethod
    def empty(
        cls, method: str, transform: str, ci_method: str, notes: tuple[str, ...]
    ) -> PoolResult:
        """No studies: nothing estimated, every number None, the notes say why."""
        return cls(
            proportion=Scaled(),
            model=Scaled(),
            se=None,
            statistic=None,
            p_value=None,
            df=None,
            tau2=None,
            tau2_se=None,
            i2=None,
            h2=None,
            heterogeneity=QTest(),
            k=0,
            n_total=0,
            events_total=0,
            method=method,
            method_requested=method,
            transform=transform,
            ci_method=ci_method,
            converged=True,
            fallback_reason=None,
            notes=notes,
            studies=(),
        )

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
                "ci_low": s.ci.low,
                "ci_high": s.ci.high,
                "pi_low": None,
                "pi_high": None,
                "yi": s.yi,
                "vi": s.vi,
                "weight": s.weight,
            }
            for s in self.studies
        ]
        pooled = self.proportion
        rows.append(
            {
                "row_type": "pooled",
                "label": f"Pooled ({self.method}, {self.transform}, {self.ci_method})",
                "events": self.events_total,
                "total": self.n_total,
                "proportion": pooled.estimate,
                "ci_low": pooled.ci.low,
                "ci_high": pooled.ci.high,
                "pi_low": pooled.pi.low,
                "pi_high": pooled.pi.high,
                "yi": self.model.estimate,
                "vi": None if self.se is None else self.se**2,
                "weight": 100.0 if self.k else None,
            }
        )
        return rows


@dataclass(frozen=True)
class LeaveOneOutRow:
    """The pooled result with one study left out (metafor ``leave1out``)."""

    omitted: str
    result: PoolResult


# ---------------------------------------------------------------------------------------------
# Two-group comparisons
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyComparison:
    """One study's two-arm counts and its log OR / log RR (escalc, 1/2 added if a cell is 0)."""

    label: str
    events_a: int
    total_a: int
    events_b: int
    total_b: int
    ratio: float | None
    ci: Interval  # Wald 95% on the log scale, exponentiated
    yi: float | None
    vi: float | None
    weight: float | None


@dataclass(frozen=True)
class ComparisonResult:
    """A pooled odds ratio or risk ratio (group A vs group B)."""

    measure: str
    method: str
    ratio: Scaled  # OR or RR (exponentiated)
    model: Scaled  # log OR or log RR
    se: float | None  # standard error of model.estimate
    statistic: float | None  # z or t value of model.estimate
    p_value: float | None
    df: int | None  # t degrees of freedom for HKSJ, None for z
    tau2: float | None
    i2: float | None  # percent
    h2: float | None
    heterogeneity: QTest  # Cochran's Q
    k: int
    ci_method: str
    notes: tuple[str, ...]
    studies: tuple[StudyComparison, ...]
    # Mantel-Haenszel odds ratio only, as rma.mh reports them: the Cochran-Mantel-Haenszel
    # test (correct=TRUE) and the Breslow-Day and Tarone tests of homogeneity
    cmh: QTest | None = None
    breslow_day: QTest | None = None
    tarone: QTest | None = None

    @classmethod
    def empty(
        cls, measure: str, method: str, ci_method: str, notes: tuple[str, ...]
    ) -> ComparisonResult:
        """No studies: nothing estimated, every number None, the notes say why."""
        return cls(
            measure=measure,
            method=method,
            ratio=Scaled(),
            model=Scaled(),
            se=None,
            statistic=None,
            p_value=None,
            df=None,
            tau2=None,
            i2=None,
            h2=None,
            heterogeneity=QTest(),
            k=0,
            ci_method=ci_method,
            notes=notes,
            studies=(),
        )

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
                "ci_low": s.ci.low,
                "ci_high": s.ci.high,
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
                "ratio": self.ratio.estimate,
                "ci_low": self.ratio.ci.low,
                "ci_high": self.ratio.ci.high,
                "weight": 100.0 if self.k else None,
            }
        )
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Subgroups
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubgroupPool:
    """One subgroup's pooled result."""

    name: str
    result: PoolResult
    single_study: bool


@dataclass(frozen=True)
class SubgroupResult:
    """Per-subgroup pools plus tests for subgroup differences.

    ``moderator_test``: metafor's mixed-effects moderator test QM (one tau² common to all
    subgroups, ``tau2_common``), with ``residual_heterogeneity`` the QE of that model.
    ``separate_tau2_test``: Q between subgroup estimates each pooled with its own tau²
    (R meta's default ``tau.common=FALSE``), offered as a labelled alternative.
    """

    subgroups: tuple[SubgroupPool, ...]
    moderator_test: QTest  # chi2 with G-1 df, or F(G-1, k-G) under HKSJ
    tau2_common: float | None
    i2_residual: float | None
    residual_heterogeneity: QTest
    separate_tau2_test: QTest
    method: str
    transform: str
    ci_method: str
    notes: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Meta-regression
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """A fitted quantity along a grid, one value per grid point: the columns a chart reads."""

    estimate: tuple[float | None, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]
    pi_low: tuple[float | None, ...]
    pi_high: tuple[float | None, ...]

    def map(self, fn: Callable[[float | None], float | None]) -> Curve:
        """Every value through ``fn``: the proportion scale from the model scale."""
        return Curve(
            *(
                tuple(fn(v) for v in column)
                for column in (self.estimate, self.ci_low, self.ci_high, self.pi_low, self.pi_high)
            )
        )


@dataclass(frozen=True)
class FittedLine:
    """Fitted values over a moderator grid, with CI and PI, for a bubble-plot line."""

    x: tuple[float, ...]
    proportion: Curve  # back-transformed
    model: Curve  # logit or Freeman-Tukey


@dataclass(frozen=True)
class MetaRegressionResult:
    """Random-effects meta-regression on one moderator (``rma(yi, vi, mods = ~ x)``)."""

    intercept: Coefficient
    slope: Coefficient
    tau2: float | None  # residual tau²
    i2: float | None
    h2: float | None
    residual_heterogeneity: QTest  # QE
    moderator_test: QTest  # QM: chi2 with 1 df, or F(1, k-2) under HKSJ
    k: int
    method: str
    transform: str
    ci_method: str
    notes: tuple[str, ...]
    studies: tuple[StudyEstimate, ...]
    moderator: tuple[float, ...]
    n_harmonic: float | None = None  # n used by the Freeman-Tukey back-transform
    # The rma.uni fit itself (model scale, as metafor returns it, NaN where metafor has NA):
    # what ``fitted_line`` hands to ``heterogeneity.predict``. None when nothing was fitted.
    fit: RmaFit | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(
        cls,
        method: str,
        transform: str,
        ci_method: str,
        notes: tuple[str, ...],
        studies: tuple[StudyEstimate, ...],
        moderator: tuple[float, ...],
    ) -> MetaRegressionResult:
        """Too few studies, or no spread in the moderator: the studies, no fit, notes say why."""
        return cls(
            intercept=Coefficient(),
            slope=Coefficient(),
            tau2=None,
            i2=None,
            h2=None,
            residual_heterogeneity=QTest(),
            moderator_test=QTest(distribution="chi2" if ci_method == "z" else "F"),
            k=len(studies),
            method=method,
            transform=transform,
            ci_method=ci_method,
            notes=notes,
            studies=studies,
            moderator=moderator,
        )

    def fitted_line(self, x_grid: Any) -> FittedLine:
        """``predict(fit, newmods = x_grid)``, and the same back-transformed to proportions."""
        grid = np.asarray(x_grid, dtype=float).ravel()
        x = tuple(map(float, grid))
        if self.fit is None:
            nones: tuple[None, ...] = tuple(None for _ in grid)
            blank = Curve(nones, nones, nones, nones, nones)
            return FittedLine(x, blank, blank)
        pred, _se, ci_lb, ci_ub, pi_lb, pi_ub = predict(
            self.fit, np.column_stack([np.ones_like(grid), grid])
        )
        model = Curve(*(tuple(clean(v) for v in a) for a in (pred, ci_lb, ci_ub, pi_lb, pi_ub)))
        return FittedLine(
            x=x,
            proportion=model.map(lambda z: back_transform(z, self.transform, self.n_harmonic)),
            model=model,
        )
