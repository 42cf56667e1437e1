"""Every pooled number the dashboard shows for a slice and view, gathered once for the report.

The pages' numbers, page by page, made by the functions the data facade (evidence.ui.data) calls
for them, with the same slices:

- Treatment (the slice within treatment): each treatment outcome pooled with the view's method,
  and the subgroups of the view's outcome (or the first treatment outcome) by the view's split
  with the test for subgroup differences;
- Prophylaxis (the slice within prophylaxis): each prophylaxis outcome pooled, and the
  Mantel-Haenszel risk ratio against the studies' own comparison cohorts;
- Dose (the whole slice): the view's outcome (default ICANS response), its dose meta-regression
  and the higher- vs lower-dose comparison within studies;
- Safety (the whole slice): each safety outcome pooled;
- Summary of findings: its rows (`evidence.sof`), each tied to the pool or comparison its
  estimate comes from (made again here with the same function and checked equal).

Each number carries the decimals the page prints it with (`Check`): proportions in percent to
one decimal, ratios to two, τ² and p-values to three, I² to one. `evidence.report.rscript` asks
R to give each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from evidence import analysis, sof, vocab
from evidence.analysis import OutcomeAnalysis
from evidence.filters import Slice, View
from evidence.grade import PanelSettings
from evidence.meta.results import ComparisonResult, MetaRegressionResult, SubgroupResult

PAGE_TREATMENT, PAGE_PROPHYLAXIS, PAGE_DOSE, PAGE_SAFETY, PAGE_SOF = (
    "Treatment",
    "Prophylaxis",
    "Dose",
    "Safety",
    "Summary of findings",
)
DOSE_DEFAULT_OUTCOME = "icans_response"  # pages/dose.py: view.outcome_or("icans_response")


@dataclass(frozen=True)
class Check:
    """One printed number: what it is, the engine's value on the printed scale (percent for a
    proportion, per 1,000 for an absolute effect) and the decimals it is printed with."""

    what: str
    value: float
    digits: int

    @property
    def printed(self) -> str:
        return f"{self.value:.{self.digits}f}"


@dataclass(frozen=True)
class Proportion:
    """An outcome pooled with the view's method on a page (or for a summary-of-findings row)."""

    id: str
    page: str
    pooled: OutcomeAnalysis

    @property
    def title(self) -> str:
        return f"{self.page} · {self.pooled.label}"


@dataclass(frozen=True)
class Ratio:
    """A Mantel-Haenszel risk ratio: group A (anakinra, or the higher dose) against group B."""

    id: str
    page: str
    outcome: str
    what: str  # "anakinra vs comparison cohort", "higher vs lower dose"
    labels: tuple[str, ...]
    events_a: tuple[int, ...]
    total_a: tuple[int, ...]
    events_b: tuple[int, ...]
    total_b: tuple[int, ...]
    cohort_ids: tuple[str, ...]
    result: ComparisonResult
    absolute: sof.Absolute | None = None  # the summary of findings' per-1,000 effect

    @property
    def title(self) -> str:
        return f"{self.page} · {vocab.OUTCOMES.label(self.outcome)}: {self.what}"


@dataclass(frozen=True)
class Subgroups:
    """The subgroups of one outcome by one split, with the tests for subgroup differences."""

    id: str
    page: str
    pooled: OutcomeAnalysis
    split: str
    groups: tuple[str, ...]  # each pooled cohort's subgroup, in the pool's row order
    result: SubgroupResult

    @property
    def title(self) -> str:
        split = analysis.in_sentence(vocab.SUBGROUP_DIMENSIONS.label(self.split))
        return f"{self.page} · {self.pooled.label} by {split}"


@dataclass(frozen=True)
class DoseRegression:
    """The meta-regression of one outcome on anakinra mg/day (midpoint of the cohort's range)."""

    id: str
    page: str
    pooled: OutcomeAnalysis
    points: pd.DataFrame
    result: MetaRegressionResult

    @property
    def title(self) -> str:
        return f"{self.page} · {self.pooled.label} against dose"


@dataclass(frozen=True)
class Numbers:
    """Everything the report shows and R checks, for one slice, method and panel."""

    rows: Slice
    view: View
    panel: PanelSettings
    proportions: tuple[Proportion, ...]
    ratios: tuple[Ratio, ...]
    subgroups: tuple[Subgroups, ...]
    regressions: tuple[DoseRegression, ...]
    summary: sof.SummaryOfFindings
    sof_sources: dict[str, Proportion | Ratio] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()  # pages the slice leaves nothing of, in words
    dose: OutcomeAnalysis | None = None  # the Dose page's outcome, pooled on the whole slice

    def page_proportions(self, page: str) -> list[Proportion]:
        return [p for p in self.proportions if p.page == page]

    def items(self) -> Iterator[Proportion | Ratio | Subgroups | DoseRegression]:
        """Every item whose numbers R checks, in the report's order."""
        yield from self.proportions
        yield from self.subgroups
        yield from self.regressions
        yield from self.ratios
        yield from self.sof_sources.values()


class _Slices:
    """A slice's cohorts and counts by outcome, each slice read once."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.every = analysis.every_poolable_row(con)
        self._seen: dict[Slice, tuple[pd.DataFrame, dict[str, pd.DataFrame]]] = {}

    def of(self, rows: Slice) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        if rows not in self._seen:
            cohorts = analysis.cohort_slice(self.con, rows)
            counts = analysis.counts_by_outcome(analysis.in_slice(self.every, cohorts))
            self._seen[rows] = (cohorts, counts)
        return self._seen[rows]

    def counts(self, rows: Slice, outcome: str) -> pd.DataFrame:
        return self.of(rows)[1].get(outcome, self.every.iloc[0:0])


def gather(
    con: duckdb.DuckDBPyConnection, rows: Slice, view: View, panel: PanelSettings
) -> Numbers:
    """The numbers of every page for `rows` and `view`, with `panel`'s settings applied to the
    summary of findings."""
    slices = _Slices(con)
    method = view.method
    proportions: list[Proportion] = []
    ratios: list[Ratio] = []
    subgroups: list[Subgroups] = []
    regressions: list[DoseRegression] = []
    left_out: list[str] = []

    def pools(page: str, scope: Slice, group: str) -> list[OutcomeAnalysis]:
        found = []
        for code in vocab.OUTCOME_GROUPS[group]:
            pooled = analysis.pool(code, slices.counts(scope, code), method)
            found.append(pooled)
            if pooled.result is not None:
                proportions.append(Proportion(f"{page.lower()}.{code}", page, pooled))
        return found

    treatment = rows.within("treatment")
    if treatment is None:
        left_out.append("Treatment: the indication filter leaves out every treatment cohort.")
    else:
        analyses = pools(PAGE_TREATMENT, treatment, "treatment")
        chosen = next((a for a in analyses if a.outcome == view.outcome), analyses[0])
        result = analysis.analyse_subgroups(chosen, view.split)
        if result is not None:
            groups = tuple(analysis.subgroup_labels(chosen.rows, view.split))
            subgroups.append(
                Subgroups(
                    f"treatment.subgroups.{chosen.outcome}.{view.split}",
                    PAGE_TREATMENT,
                    chosen,
                    view.split,
                    groups,
                    result,
                )
            )

    prophylaxis = rows.within("prophylaxis")
    if prophylaxis is None:
        left_out.append("Prophylaxis: the indication filter leaves out every prophylaxis cohort.")
    else:
        pools(PAGE_PROPHYLAXIS, prophylaxis, "prophylaxis")
        cohort_ids = tuple(slices.of(prophylaxis)[0]["cohort_id"])
        for code in vocab.OUTCOME_GROUPS["prophylaxis"]:
            ratio = _comparator(con, cohort_ids, code, "prophylaxis.comparator", PAGE_PROPHYLAXIS)
            if ratio is not None:
                ratios.append(ratio)

    code = view.outcome_or(DOSE_DEFAULT_OUTCOME)
    dosed = analysis.pool(code, slices.counts(rows, code), method)
    regression = analysis.dose_regression(dosed)
    if regression is not None:
        points = analysis.dose_points(dosed.rows)
        regressions.append(
            DoseRegression(f"dose.regression.{code}", PAGE_DOSE, dosed, points, regression)
        )
    ratio = _dose_comparison(slices.counts(rows, code), code, "dose.within_study", PAGE_DOSE)
    if ratio is not None:
        ratios.append(ratio)

    pools(PAGE_SAFETY, rows, "safety")

    summary = sof.summary_of_findings(con, rows, method, panel)
    sources = _sof_sources(con, slices, rows, method, summary)
    return Numbers(
        rows,
        view,
        panel,
        tuple(proportions),
        tuple(ratios),
        tuple(subgroups),
        tuple(regressions),
        summary,
        sources,
        tuple(left_out),
        dosed,
    )


def _comparator(
    con: duckdb.DuckDBPyConnection,
    cohort_ids: tuple[str, ...],
    code: str,
    prefix: str,
    page: str,
    absolute: sof.Absolute | None = None,
) -> Ratio | None:
    table, result = analysis.comparator_table(con, cohort_ids, code)
    if result is None or result.ratio.estimate is None:
        return None
    counted = table.dropna(subset=["events", "total", "events_comparator", "total_comparator"])
    return Ratio(
        f"{prefix}.{code}",
        page,
        code,
        "anakinra vs comparison cohort",
        tuple(str(label) for label in counted["label"]),
        tuple(int(v) for v in counted["events"]),
        tuple(int(v) for v in counted["total"]),
        tuple(int(v) for v in counted["events_comparator"]),
        tuple(int(v) for v in counted["total_comparator"]),
        tuple(str(c) for c in counted["cohort_id"]),
        result,
        absolute,
    )


def _dose_comparison(
    counts: pd.DataFrame,
    code: str,
    prefix: str,
    page: str,
    absolute: sof.Absolute | None = None,
) -> Ratio | None:
    table, result = analysis.within_study_dose_comparisons(counts)
    if result is None or result.ratio.estimate is None:
        return None
    by_label = dict(zip(counts["label"], counts["cohort_id"], strict=True))
    ids = tuple(
        str(by_label[label]) for pair in zip(table["high_label"], table["low_label"], strict=True)
        for label in pair
    )  # fmt: skip
    return Ratio(
        f"{prefix}.{code}",
        page,
        code,
        "higher vs lower dose",
        tuple(str(s) for s in table["study_id"]),
        tuple(int(v) for v in table["high_events"]),
        tuple(int(v) for v in table["high_total"]),
        tuple(int(v) for v in table["low_events"]),
        tuple(int(v) for v in table["low_total"]),
        ids,
        result,
        absolute,
    )


class Mismatch(RuntimeError):
    """A summary-of-findings estimate differs from the pool the report checks it with: they were
    not made by the same function on the same rows (a bug, never shown as a result)."""


def _sof_sources(
    con: duckdb.DuckDBPyConnection,
    slices: _Slices,
    rows: Slice,
    method: str,
    summary: sof.SummaryOfFindings,
) -> dict[str, Proportion | Ratio]:
    """Each graded row's pool or comparison, made as evidence.sof makes it, and checked equal
    to the row's estimate."""
    sources: dict[str, Proportion | Ratio] = {}
    for row in summary.rows:
        if row.studies == 0:
            continue
        if row.framing == "event_rate":
            scope = rows.within(row.id.split(".")[0])
            assert scope is not None
            pooled = analysis.pool(row.outcome, slices.counts(scope, row.outcome), method)
            item: Proportion | Ratio = Proportion(f"sof.{row.id}", PAGE_SOF, pooled)
            shown = headline(pooled)
            expected = (
                (row.estimate.value, row.estimate.low, row.estimate.high) if row.estimate else None
            )
            if shown != expected:
                raise Mismatch(f"{row.id}: {shown} vs {expected}")
        else:
            if row.id.startswith("compare.dose_"):
                scope_code = row.id.split(".")[1].removeprefix("dose_")
                scope = rows.within(scope_code)
                assert scope is not None
                prefix = "sof." + row.id.rsplit(".", 1)[0]
                counts = slices.counts(scope, row.outcome)
                found = _dose_comparison(counts, row.outcome, prefix, PAGE_SOF, row.absolute)
            else:
                scope = rows.within("prophylaxis")
                assert scope is not None
                ids = tuple(slices.of(scope)[0]["cohort_id"])
                found = _comparator(
                    con, ids, row.outcome, "sof.compare.comparator", PAGE_SOF, row.absolute
                )
            if found is None or row.relative is None:
                raise Mismatch(f"{row.id}: no comparison to check it with")
            ratio = found.result.ratio
            if (ratio.estimate, ratio.ci.low, ratio.ci.high) != (
                row.relative.value,
                row.relative.low,
                row.relative.high,
            ):
                raise Mismatch(f"{row.id}: {ratio} vs {row.relative}")
            item = found
        sources[row.id] = item
    return sources


def headline(pooled: OutcomeAnalysis) -> tuple[float | None, float | None, float | None] | None:
    """The number a page reads aloud for a pool and its interval: with one study, the study's own
    proportion and exact CI (components.headline)."""
    result = pooled.result
    if result is None:
        return None
    if result.k == 1:
        only = result.studies[0]
        return only.proportion, only.ci.low, only.ci.high
    p = result.proportion
    return p.estimate, p.ci.low, p.ci.high


# ---- what each item prints -----------------------------------------------------------------------
def _percent(what: str, value: float | None) -> list[Check]:
    return [] if value is None else [Check(f"{what} (%)", 100 * value, 1)]


def proportion_checks(item: Proportion) -> list[Check]:
    """What a page prints of a pool (components.result_sentence): with one study its own
    proportion and exact CI; else the pooled proportion, CI, prediction interval (k ≥ 3), τ², I²."""
    result = item.pooled.result
    assert result is not None
    if result.k == 1:
        only = result.studies[0]
        return [
            *_percent("proportion of the one study", only.proportion),
            *_percent("exact 95% CI, lower", only.ci.low),
            *_percent("exact 95% CI, upper", only.ci.high),
        ]
    p = result.proportion
    checks = [
        *_percent("pooled proportion", p.estimate),
        *_percent("95% CI, lower", p.ci.low),
        *_percent("95% CI, upper", p.ci.high),
    ]
    if result.k >= 3:
        checks += _percent("prediction interval, lower", p.pi.low)
        checks += _percent("prediction interval, upper", p.pi.high)
    if item.page != PAGE_SOF:
        if result.tau2 is not None:
            checks.append(Check("tau²", result.tau2, 3))
        if result.i2 is not None:
            checks.append(Check("I² (%)", result.i2, 1))
    return checks


def ratio_checks(item: Ratio) -> list[Check]:
    """A risk ratio and its CI to two decimals (components.risk_ratio_line); for a summary of
    findings row also the risk with the comparator and the difference per 1,000."""
    ratio = item.result.ratio
    checks = [
        Check(f"{label}", value, 2)
        for label, value in (
            ("risk ratio", ratio.estimate),
            ("risk ratio 95% CI, lower", ratio.ci.low),
            ("risk ratio 95% CI, upper", ratio.ci.high),
        )
        if value is not None
    ]
    absolute = item.absolute
    if absolute is not None:
        checks.append(Check("risk with the comparator per 1,000", absolute.comparator_per_1000, 0))
        for label, value in (
            ("difference per 1,000", absolute.difference),
            ("difference per 1,000, 95% CI lower", absolute.low),
            ("difference per 1,000, 95% CI upper", absolute.high),
        ):
            if value is not None:
                checks.append(Check(label, value, 0))
    return checks


def subgroup_checks(item: Subgroups) -> list[Check]:
    """The test for subgroup differences as the Treatment page prints it
    (format.subgroup_test_line; nothing when it is not estimable), and each subgroup's pooled
    proportion and CI as the subgroup chart draws them."""
    test = item.result.moderator_test
    checks: list[Check] = []
    for group in item.result.subgroups:
        p = group.result.proportion
        checks += _percent(f"subgroup {group.name}: pooled proportion", p.estimate)
        checks += _percent(f"subgroup {group.name}: 95% CI, lower", p.ci.low)
        checks += _percent(f"subgroup {group.name}: 95% CI, upper", p.ci.high)
    if test.statistic is None:
        return checks
    name = "F" if test.distribution == "F" else "Q"
    checks.append(Check(f"test for subgroup differences (common tau²): {name}", test.statistic, 2))
    if test.p_value is not None:
        checks.append(Check("test for subgroup differences (common tau²): p", test.p_value, 3))
    separate = item.result.separate_tau2_test
    if separate.statistic is not None:
        checks.append(Check("test with a tau² per subgroup: Q", separate.statistic, 2))
        if separate.p_value is not None:
            checks.append(Check("test with a tau² per subgroup: p", separate.p_value, 3))
    return checks


def regression_checks(item: DoseRegression) -> list[Check]:
    """The slope per 100 mg/day with its CI, p and residual τ² (components.slope_sentence)."""
    slope = item.result.slope
    checks = [
        Check(label, 100 * value, 3)
        for label, value in (
            ("slope per 100 mg/day (logit)", slope.estimate),
            ("slope 95% CI, lower", slope.ci.low),
            ("slope 95% CI, upper", slope.ci.high),
        )
        if value is not None
    ]
    if slope.p_value is not None:
        checks.append(Check("slope p", slope.p_value, 3))
    if item.result.tau2 is not None:
        checks.append(Check("residual tau²", item.result.tau2, 3))
    return checks


def checks_of(item: Proportion | Ratio | Subgroups | DoseRegression) -> list[Check]:
    if isinstance(item, Proportion):
        return proportion_checks(item)
    if isinstance(item, Ratio):
        return ratio_checks(item)
    if isinstance(item, Subgroups):
        return subgroup_checks(item)
    return regression_checks(item)
