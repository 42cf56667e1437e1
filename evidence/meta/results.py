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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .effect_sizes import back_transform, clopper_pearson_many
from .heterogeneity import predict
from .options import NumberedLabels

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


class StudyColumns(Sequence[Any]):
    """Per-study rows kept as columns (read-only numpy arrays and a tuple of labels): building
    one record object per study costs more than the fit at tens of thousands of studies. A row
    is made into its record (`_row`) only when it is read, so `studies[0]` and iteration work as
    on a tuple of records, and `column(name)` gives a whole column without any per-study Python.

    NaN in a float column stands for "not estimable"; the records show None there, as every
    result does.
    """

    _names: tuple[str, ...] = ()

    def __init__(self, labels: Sequence[str], **columns: Any) -> None:
        self.labels: Sequence[str] = labels if isinstance(labels, NumberedLabels) else tuple(labels)
        self._columns: dict[str, np.ndarray] = {}
        for name in self._names:
            array = np.array(columns[name], copy=True)
            array.flags.writeable = False
            if array.shape != (len(self.labels),):
                raise ValueError(
                    f"column {name} has shape {array.shape}, not ({len(self.labels)},)"
                )
            self._columns[name] = array

    def column(self, name: str) -> np.ndarray:
        """One column for every study (read-only)."""
        return self.labels if name == "label" else self._columns[name]  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self._row(i) for i in range(*index.indices(len(self))))
        i = range(len(self))[index]
        return self._row(i)

    def __iter__(self) -> Iterator[Any]:
        return (self._row(i) for i in range(len(self)))

    def _row(self, i: int) -> Any:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, StudyColumns)
        return self.labels == other.labels and all(
            np.array_equal(a, other._columns[name], equal_nan=True)
            for name, a in self._columns.items()
        )

    def __hash__(self) -> int:
        return hash((self.labels, *(a.tobytes() for a in self._columns.values())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} studies)"


def _num(value: Any) -> float | None:  # a column's NaN as the records' None
    v = float(value)
    return v if math.isfinite(v) else None


class StudyEstimates(StudyColumns):
    """The studies of a pooled proportion: `StudyEstimate` records, stored as columns.

    The exact (Clopper-Pearson) limits are computed for every study at once the first time
    any is read: two inverse incomplete-beta evaluations per study are most of a pool's cost at
    100,000 studies, and a dashboard that shows a summary of a large evidence base reads none.
    """

    _names = ("events", "total", "proportion", "yi", "vi", "weight")
    _cp: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def empty(cls) -> StudyEstimates:
        return cls((), **{name: np.empty(0) for name in cls._names})

    def _limits(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cp is None:  # computed once; the same numbers whoever computes them first
            low, high = clopper_pearson_many(self._columns["events"], self._columns["total"])
            low.flags.writeable = high.flags.writeable = False
            self._cp = (low, high)
        return self._cp

    def column(self, name: str) -> np.ndarray:
        if name in ("ci_low", "ci_high"):
            return self._limits()[name == "ci_high"]
        return super().column(name)

    def _row(self, i: int) -> StudyEstimate:
        c = self._columns
        low, high = self._limits()
        return StudyEstimate(
            label=self.labels[i],
            events=int(c["events"][i]),
            total=int(c["total"][i]),
            proportion=float(c["proportion"][i]),
            ci=Interval(float(low[i]), float(high[i])),
            yi=float(c["yi"][i]),
            vi=float(c["vi"][i]),
            weight=_num(c["weight"][i]),
        )


#: The columns of `StudyEstimates`, in `to_records` order.
STUDY_COLUMNS = ("events", "total", "proportion", "ci_low", "ci_high", "yi", "vi", "weight")


def study_estimates(
    labels: Sequence[str],
    x: np.ndarray,
    n: np.ndarray,
    yi: np.ndarray,
    vi: np.ndarray,
    weights: np.ndarray | None,
) -> StudyEstimates:
    """The studies as `StudyEstimate`s: the observed proportion with its exact CI beside the
    model-scale yi, vi the fit used and the study's percent weight (None when not fitted)."""
    return StudyEstimates(
        labels,
        events=x,
        total=n,
        proportion=x / n,
        yi=yi,
        vi=vi,
        weight=np.full(len(labels), np.nan) if weights is None else weights,
    )


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
    studies: StudyEstimates
    # GLMM only: likelihood-ratio test of tau² = 0 as rma.glmm reports it (QE.LRT)
    lrt: QTest | None = None
    # Q-profile 95% CI (confint.rma.uni); inverse-variance models with k >= 2 only
    tau2_ci: Interval = Interval()
    i2_ci: Interval = Interval()
    # The 95% CI to show beside tau²: the interval of the criterion the estimator solves
    # (profile likelihood for REML and ML, confint(type = "PL"); Q-profile for PM and DL), and
    # only when it contains the estimate, so a page never prints a tau² outside its own CI
    # (at large k the Q-profile CI, which contains PM, can exclude REML or DL). Empty otherwise,
    # with ``tau2_interval_method`` None and a note saying why.
    tau2_interval: Interval = Interval()
    tau2_interval_method: str | None = None
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
            studies=StudyEstimates.empty(),
        )

    def to_frame(self) -> pd.DataFrame:
        """Studies plus a pooled row, tidy, for forest plots and tables."""
        import pandas as pd

        return pd.DataFrame(self.to_records())

    def to_records(self) -> list[dict[str, object]]:
        """The rows of `to_frame` as plain dicts (no pandas round trip for a handful of rows)."""
        st = self.studies
        columns = zip(
            st.labels,
            *(st.column(name).tolist() for name in STUDY_COLUMNS),
            strict=True,
        )
        rows: list[dict[str, object]] = [
            {
                "row_type": "study",
                "label": label,
                "events": int(events),
                "total": int(total),
                "proportion": proportion,
                "ci_low": low,
                "ci_high": high,
                "pi_low": None,
                "pi_high": None,
                "yi": yi,
                "vi": vi,
                "weight": None if weight != weight else weight,  # NaN: not fitted
            }
            for label, events, total, proportion, low, high, yi, vi, weight in columns
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


@dataclass(frozen=True, eq=False)
class LeaveOneOut:
    """Each study left out in turn (metafor ``leave1out``), as columns: entry i of every array
    is the pooled result without study i (read-only arrays; NaN where a fit has no value, for
    instance heterogeneity when only one study is left). ``records()`` gives one dict per row
    with None in those places, as every other result shows them.

    The model-scale columns are metafor's (estimate, se, zval or tval, pval, ci.lb, ci.ub, Q,
    Qp, tau2, I2, H2); the proportion columns are their back-transforms (a Freeman-Tukey row
    at the harmonic mean n of the studies it keeps); ``rstudent`` is the omitted study's
    studentized deleted residual (metafor ``rstudent``): its distance from the pooled estimate
    of the others, in standard errors, the measure for outliers.
    """

    omitted: tuple[str, ...]
    method: str  # the method asked for
    transform: str
    ci_method: str
    estimate: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    proportion: np.ndarray
    proportion_ci_low: np.ndarray
    proportion_ci_high: np.ndarray
    q: np.ndarray
    q_p: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    rstudent: np.ndarray
    method_used: tuple[str, ...]  # per row: the model fitted (DL where the method failed)
    df: int | None  # t degrees of freedom (Hartung-Knapp), None for z
    q_df: int | None
    notes: tuple[str, ...]

    COLUMNS = (
        "estimate", "se", "statistic", "p_value", "ci_low", "ci_high", "proportion",
        "proportion_ci_low", "proportion_ci_high", "q", "q_p", "tau2", "i2", "h2", "rstudent",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in self.COLUMNS:
            array = np.array(getattr(self, name), dtype=float)
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    def __len__(self) -> int:
        return len(self.omitted)

    def records(self) -> list[dict[str, object]]:
        """One dict per left-out fit: the omitted study, the method used and every column."""
        columns = [getattr(self, name).tolist() for name in self.COLUMNS]
        return [
            {
                "omitted": omitted,
                "method": method,
                **{
                    name: None if v != v or v in (math.inf, -math.inf) else v
                    for name, v in zip(self.COLUMNS, values, strict=True)
                },
            }
            for omitted, method, *values in zip(
                self.omitted, self.method_used, *columns, strict=True
            )
        ]


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


class StudyComparisons(StudyColumns):
    """The studies of a two-group comparison: `StudyComparison` records, stored as columns."""

    _names = (
        "events_a", "total_a", "events_b", "total_b", "ratio", "ci_low", "ci_high", "yi", "vi",
        "weight",
    )  # fmt: skip

    @classmethod
    def empty(cls) -> StudyComparisons:
        return cls((), **{name: np.empty(0) for name in cls._names})

    def _row(self, i: int) -> StudyComparison:
        c = self._columns
        return StudyComparison(
            label=self.labels[i],
            events_a=int(c["events_a"][i]),
            total_a=int(c["total_a"][i]),
            events_b=int(c["events_b"][i]),
            total_b=int(c["total_b"][i]),
            ratio=_num(c["ratio"][i]),
            ci=Interval(_num(c["ci_low"][i]), _num(c["ci_high"][i])),
            yi=_num(c["yi"][i]),
            vi=_num(c["vi"][i]),
            weight=_num(c["weight"][i]),
        )


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
    studies: StudyComparisons
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
            studies=StudyComparisons.empty(),
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
    studies: StudyEstimates
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
        studies: StudyEstimates,
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
