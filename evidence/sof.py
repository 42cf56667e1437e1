"""The summary of findings of a slice: one row per outcome the slice can speak to, each with its
numbers, its GRADE domains (suggested from the data, decided by the panel) and its certainty.

`summary_of_findings(con, rows, method, panel)` is a pure function of the database, the slice,
the pooling method and the panel's settings: the Summary of findings page and the report bundle
both call it, and tests call it on fixture data. It pools with the same functions the dashboard
pools with (`evidence.analysis`), so every estimate in a row is the one the other pages show.

Rows come in three sections. Treatment and prophylaxis rows are event rates among treated
patients (GRADE's overall-prognosis framing); comparison rows (a higher vs a lower dose within a
study, prophylaxis vs the study's own comparison cohort) are comparative and non-randomised.
A single-arm row never reads as an effect of anakinra against no anakinra.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import duckdb
import pandas as pd

from evidence import analysis, db, grade, vocab
from evidence.filters import Slice
from evidence.format import count
from evidence.grade import (
    Certainty,
    Domain,
    Framing,
    Mismatch,
    PanelSettings,
    Suggestion,
)
from evidence.meta.results import ComparisonResult

# The outcomes each section shows, in order (prespecified: a row stays, saying there is no data).
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "treatment",
        "Treatment of ICANS",
        (
            "icans_response",
            "icans_resolution",
            "grade5_icans",
            "early_mortality",
            "infection",
            "death",
        ),
    ),
    (
        "prophylaxis",
        "Prophylaxis",
        ("any_icans", "grade3plus_icans", "grade3plus_crs", "hospital_days", "infection", "death"),
    ),
)
# The question a row is judged against when the slice does not narrow it [default]: the review's
# population (adults with large B-cell lymphoma), the commercial CD19 products, the severe or
# steroid-refractory ICANS the review's treatment question names, ASTCT grading.
QUESTION_PRODUCTS = ("axi-cel", "brexu-cel", "tisa-cel", "liso-cel")
QUESTION_SUB_INDICATIONS = {
    "treatment": ("severe_icans", "steroid_refractory_icans"),
    "prophylaxis": ("universal_prophylaxis", "high_risk_prophylaxis"),
}
QUESTION_GRADING = ("ASTCT",)
QUESTION_DISEASE = ("LBCL",)


@dataclass(frozen=True)
class Estimate:
    """A row's estimate on the proportion scale (or the ratio scale for comparisons)."""

    value: float | None
    low: float | None
    high: float | None
    pi_low: float | None = None
    pi_high: float | None = None


@dataclass(frozen=True)
class Absolute:
    """A comparison's absolute effect per 1,000: risk with the comparator and the difference."""

    comparator_per_1000: float
    difference: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class SofRow:
    """One outcome of the summary of findings."""

    id: str
    section: str
    outcome: str
    label: str
    framing: Framing
    population: str
    studies: int
    studies_in_slice: int
    patients: int
    patients_in_slice: int
    events: int
    estimate: Estimate | None
    method: str
    domains: tuple[Domain, ...]
    certainty: Certainty
    statement: str
    note: str | None = None
    relative: Estimate | None = None
    absolute: Absolute | None = None
    thresholds: tuple[float, ...] = ()
    footnotes: tuple[int, ...] = field(default=())

    @property
    def framing_words(self) -> str:
        return grade.FRAMING_WORDS[self.framing]


@dataclass(frozen=True)
class Footnote:
    number: int
    row: str
    domain: str
    text: str


@dataclass(frozen=True)
class SummaryOfFindings:
    rows: tuple[SofRow, ...]
    footnotes: tuple[Footnote, ...]


def summary_of_findings(
    con: duckdb.DuckDBPyConnection, rows: Slice, method: str, panel: PanelSettings
) -> SummaryOfFindings:
    """Every row of the slice's summary of findings, with the panel's decisions applied."""
    every = analysis.every_poolable_row(con)
    trials = db.run(con, "trial_reports")
    built: list[SofRow] = []
    for scope, title, outcomes in SECTIONS:
        scoped = rows.within(scope)
        if scoped is None:
            continue
        cohorts = analysis.cohort_slice(con, scoped)
        facts = _facts(con, cohorts)
        counts = analysis.counts_by_outcome(analysis.in_slice(every, cohorts))
        quality = _study_risks(con, tuple(cohorts["study_id"].unique()))
        unreported = _unreported_trials(trials, set(cohorts["cohort_id"]))
        numbers = db.run(con, "outcome_rows", cohort_ids=list(cohorts["cohort_id"]))
        context = _Context(
            scope, scoped, cohorts, facts, quality, unreported, method, panel, numbers
        )
        for code in outcomes:
            rows_of = counts.get(code, every.iloc[0:0])
            built.append(_rate_row(context, title, code, rows_of))
        for code in outcomes:
            rows_of = counts.get(code)
            if rows_of is not None:
                table, result = analysis.within_study_dose_comparisons(rows_of)
                if result is not None:
                    built.append(_dose_row(context, code, table, result))
        if scope == "prophylaxis":
            for code in outcomes:
                table, result = analysis.comparator_table(con, tuple(cohorts["cohort_id"]), code)
                if result is not None:
                    built.append(_comparator_row(context, code, table, result))
    return _with_footnotes(built, panel)


@dataclass(frozen=True)
class _Context:
    scope: str
    rows: Slice
    cohorts: pd.DataFrame
    facts: pd.DataFrame
    quality: Mapping[str, grade.StudyRisk]
    unreported: tuple[str, ...]
    method: str
    panel: PanelSettings
    numbers: pd.DataFrame  # every extracted number of the scope's cohorts, counts or not

    @property
    def studies_in_slice(self) -> int:
        return int(self.cohorts["study_id"].nunique())

    @property
    def patients_in_slice(self) -> int:
        return int(self.cohorts["n_patients"].fillna(0).sum())


# ---- inputs ------------------------------------------------------------------------------------
def _facts(con: duckdb.DuckDBPyConnection, cohorts: pd.DataFrame) -> pd.DataFrame:
    ids = list(cohorts["cohort_id"])
    return db.run(con, "grading_facts", cohort_ids=ids).set_index("cohort_id")


def _study_risks(
    con: duckdb.DuckDBPyConnection, study_ids: Sequence[str]
) -> dict[str, grade.StudyRisk]:
    """Each study's risk of bias from its checklist rows (see grade.study_risk)."""
    items = db.run(con, "quality_items", study_ids=list(study_ids))
    risks: dict[str, grade.StudyRisk] = {}
    for study, rows in items.groupby("study_id"):
        tool = str(rows["tool"].iloc[0])
        answers = {}
        for item, judgement in zip(rows["item"], rows["judgement"], strict=True):
            number = re.match(r"\s*Q(\d+)", str(item))
            if number:
                answers[int(number.group(1))] = str(judgement)
        risks[str(study)] = grade.study_risk(tool, answers)
    return risks


def _unreported_trials(trials: pd.DataFrame, cohort_ids: set[str]) -> tuple[str, ...]:
    """Registered trials with a report in this scope but no full paper or letter among their
    reports (results known only from abstracts or the registry)."""
    found = []
    for nct, reports in trials.groupby("nct_id"):
        in_scope = any(
            cohort in cohort_ids
            for cohorts in reports["cohort_ids"]
            if not pd.api.types.is_scalar(cohorts)  # a list, or NA for a report without cohorts
            for cohort in cohorts
        )
        published = reports["publication_type"].isin(["full_paper", "letter"]).any()
        if in_scope and not published:
            found.append(str(nct))
    return tuple(found)


def _mismatches(context: _Context, cohort_ids: Sequence[str], rows: pd.DataFrame) -> list[Mismatch]:
    """How each pooled cohort differs from the question (the slice's choices where it makes
    them, the review's question where it does not)."""
    products = set(context.rows.product) - {"mixed", "not_reported"} or set(QUESTION_PRODUCTS)
    chosen_subs = {i for i in context.rows.indication if i in vocab.PARENT_INDICATION}
    subs = chosen_subs or set(QUESTION_SUB_INDICATIONS[context.scope])
    grading = set(context.rows.grading) - {"not_reported"} or set(QUESTION_GRADING)
    definitions = dict(zip(rows["cohort_id"], rows.get("definition", pd.Series()), strict=False))
    found = []
    for cohort in cohort_ids:
        fact = context.facts.loc[cohort]
        differs: list[str] = []
        unclear: list[str] = []
        listed = [p for p in str(fact["products"] or "").split(";") if p]
        if not listed:
            unclear.append("product")
        elif set(listed) - products:
            differs.append("product")
        sub = fact["sub_indication"]
        if sub == "not_reported":
            unclear.append("indication")
        elif sub not in subs:
            differs.append("indication")
        disease = fact["disease"]
        if disease == "not_reported":
            unclear.append("population")
        elif disease not in QUESTION_DISEASE:
            differs.append("population")
        system = fact["grading_system"]
        if system == "not_reported":
            unclear.append("grading system")
        elif system not in grading:
            differs.append("grading system")
        definition = definitions.get(cohort)
        if definition is None or (isinstance(definition, float) and definition != definition):
            unclear.append("outcome definition")
        patients = fact["n_patients"]
        found.append(
            Mismatch(
                str(cohort),
                int(patients) if pd.notna(patients) else 0,
                tuple(differs),
                tuple(unclear),
            )
        )
    return found


# ---- rows --------------------------------------------------------------------------------------
def _rate_row(context: _Context, section: str, code: str, rows: pd.DataFrame) -> SofRow:
    row_id = f"{context.scope}.{code}"
    label = vocab.OUTCOMES.label(code)
    thresholds = context.panel.thresholds_of(row_id)
    base = {
        "id": row_id,
        "section": section,
        "outcome": code,
        "label": label,
        "framing": "event_rate",
        "population": population_words(context.scope, context.rows),
        "studies_in_slice": context.studies_in_slice,
        "patients_in_slice": context.patients_in_slice,
        "method": vocab.POOLING_METHODS.label(context.method),
        "thresholds": thresholds,
    }
    if rows.empty:
        reported = context.numbers[context.numbers["outcome"] == code]
        if reported.empty:
            why = "No study in this slice reports it."
        else:
            kinds = ", ".join(sorted({vocab.STATISTICS.label(s) for s in reported["statistic"]}))
            why = (
                f"Reported by {count(reported['study_id'].nunique(), 'study', 'studies')} in this "
                f"slice only as "
                f"{kinds}, not as counts: not pooled (see the Studies page)."
            )
        domains = tuple(Domain(Suggestion(d, "not_assessable", why)) for d in grade.DOMAINS)
        return SofRow(
            **base,
            studies=0,
            patients=0,
            events=0,
            estimate=None,
            domains=domains,
            certainty=grade.certainty("event_rate", domains),
            statement=why,
            note=why,
        )
    pooled = analysis.pool(code, rows, context.method)
    result = pooled.result
    assert result is not None
    if result.k == 1:
        only = result.studies[0]
        estimate = Estimate(only.proportion, only.ci.low, only.ci.high)
        note: str | None = "One study: its own proportion and exact CI; nothing is pooled."
    else:
        p = result.proportion
        estimate = Estimate(p.estimate, p.ci.low, p.ci.high, p.pi.low, p.pi.high)
        note = pooled.message
    events, patients = int(rows["events"].sum()), int(rows["total"].sum())
    studies = [(s.proportion, s.ci.low, s.ci.high) for s in result.studies]
    patients_by_study = rows.groupby("study_id")["total"].sum()
    risks = [
        (str(study), context.quality.get(str(study), "not assessed"), int(n))
        for study, n in patients_by_study.items()
    ]
    without_high = _estimate_without(rows, risks, context.method)
    suggestions = (
        grade.suggest_risk_of_bias(risks, estimate.value, without_high, thresholds),
        grade.suggest_inconsistency(
            result.k,
            studies,
            (estimate.pi_low, estimate.pi_high),
            result.i2,
            result.heterogeneity.p_value,
            thresholds,
        ),
        grade.suggest_indirectness(_mismatches(context, list(rows["cohort_id"]), rows)),
        grade.suggest_imprecision_rate(
            estimate.value, (estimate.low, estimate.high), patients, events, thresholds
        ),
        grade.suggest_publication_bias(
            _publications(context, patients_by_study), context.unreported
        ),
    )
    domains = _decided(row_id, suggestions, context.panel)
    certainty = grade.certainty("event_rate", domains)
    return SofRow(
        **base,
        studies=result.k,
        patients=patients,
        events=events,
        estimate=estimate,
        domains=domains,
        certainty=certainty,
        statement=rate_statement(base["population"], code, estimate, certainty),
        note=note,
    )


def _estimate_without(
    rows: pd.DataFrame, risks: Sequence[tuple[str, grade.StudyRisk, int]], method: str
) -> float | None:
    """The pooled proportion without the studies at high risk of bias (None if none is left)."""
    high = {study for study, risk, _ in risks if risk == "high"}
    if not high:
        return None
    kept = rows[~rows["study_id"].isin(high)].reset_index(drop=True)
    if kept.empty:
        return None
    result = analysis.pool(str(kept["outcome"].iloc[0]), kept, method).result
    if result is None:
        return None
    return result.studies[0].proportion if result.k == 1 else result.proportion.estimate


def _publications(context: _Context, patients_by_study: pd.Series) -> list[tuple[str, str, int]]:
    kinds = context.facts.groupby("study_id")["publication_type"].first()
    return [
        (str(study), str(kinds.get(study, "not_reported")), int(n))
        for study, n in patients_by_study.items()
    ]


def _comparison_row(
    context: _Context,
    row_id: str,
    label: str,
    code: str,
    result: ComparisonResult,
    cohort_ids: Sequence[str],
    patients_by_study: pd.Series,
    comparator_events: int,
    comparator_total: int,
    what: str,
) -> SofRow:
    thresholds = context.panel.thresholds_of(row_id)
    bounds = (min(thresholds), max(thresholds)) if len(thresholds) >= 2 else grade.APPRECIABLE_RATIO
    ratio = result.ratio
    relative = Estimate(ratio.estimate, ratio.ci.low, ratio.ci.high)
    comparator_risk = comparator_events / comparator_total if comparator_total else None
    absolute = _per_1000(comparator_risk, relative)
    patients = int(patients_by_study.sum()) + comparator_total
    studies = [
        (s.ratio, s.ci.low, s.ci.high)
        for s in result.studies
        if s.ratio is not None and s.ci.low is not None and s.ci.high is not None
    ]
    risks = [
        (str(study), context.quality.get(str(study), "not assessed"), int(n))
        for study, n in patients_by_study.items()
    ]
    suggestions = (
        grade.suggest_risk_of_bias(risks),
        grade.suggest_inconsistency(result.k, studies, (None, None), result.i2, None),
        grade.suggest_indirectness(
            _mismatches(context, cohort_ids, pd.DataFrame({"cohort_id": list(cohort_ids)}))
        ),
        grade.suggest_imprecision_ratio(
            ratio.estimate, (ratio.ci.low, ratio.ci.high), patients, comparator_risk, bounds
        ),
        grade.suggest_publication_bias(
            _publications(context, patients_by_study), context.unreported
        ),
    )
    domains = _decided(row_id, suggestions, context.panel)
    certainty = grade.certainty("comparative", domains)
    return SofRow(
        id=row_id,
        section="Comparisons (non-randomised)",
        outcome=code,
        label=label,
        framing="comparative",
        population=population_words(context.scope, context.rows),
        studies=result.k,
        studies_in_slice=context.studies_in_slice,
        patients=patients,
        patients_in_slice=context.patients_in_slice,
        events=sum(s.events_a + s.events_b for s in result.studies),
        estimate=None,
        method="Mantel-Haenszel risk ratio",
        domains=domains,
        certainty=certainty,
        statement=comparison_statement(what, code, relative, absolute, certainty),
        relative=relative,
        absolute=absolute,
        thresholds=thresholds,
    )


def _dose_row(
    context: _Context, code: str, table: pd.DataFrame, result: ComparisonResult
) -> SofRow:
    ids = list(context.facts.index[context.facts["study_id"].isin(table["study_id"])])
    patients = table.groupby("study_id")["high_total"].sum()
    return _comparison_row(
        context,
        f"compare.dose_{context.scope}.{code}",
        f"{vocab.OUTCOMES.label(code)}: higher vs lower dose ({context.scope})",
        code,
        result,
        ids,
        patients,
        int(table["low_events"].sum()),
        int(table["low_total"].sum()),
        "higher-dose anakinra compared with a lower dose in the same study",
    )


def _comparator_row(
    context: _Context, code: str, table: pd.DataFrame, result: ComparisonResult
) -> SofRow:
    counted = table.dropna(subset=["events", "total", "events_comparator", "total_comparator"])
    patients = counted.groupby("study_id")["total"].sum()
    return _comparison_row(
        context,
        f"compare.comparator.{code}",
        f"{vocab.OUTCOMES.label(code)}: prophylaxis vs the study's comparison cohort",
        code,
        result,
        list(counted["cohort_id"]),
        patients,
        int(counted["events_comparator"].sum()),
        int(counted["total_comparator"].sum()),
        "prophylactic anakinra compared with the studies' own cohorts without it",
    )


def _per_1000(comparator_risk: float | None, relative: Estimate) -> Absolute | None:
    """Risk with the comparator and the difference per 1,000 patients, from the relative effect
    (GRADE's way: the comparator's risk times the risk ratio and its CI)."""
    if comparator_risk is None or relative.value is None:
        return None

    def difference(ratio: float | None) -> float | None:
        return None if ratio is None else 1000 * comparator_risk * (ratio - 1)

    return Absolute(
        1000 * comparator_risk,
        difference(relative.value),
        difference(relative.low),
        difference(relative.high),
    )


def _decided(
    row_id: str, suggestions: Sequence[Suggestion], panel: PanelSettings
) -> tuple[Domain, ...]:
    return tuple(Domain(s, panel.decision(row_id, s.domain)) for s in suggestions)


def _with_footnotes(rows: Sequence[SofRow], panel: PanelSettings) -> SummaryOfFindings:
    """Number the panel's reasons in row and domain order; each row lists its footnotes."""
    footnotes: list[Footnote] = []
    numbered: list[SofRow] = []
    for row in rows:
        mine = []
        for domain in row.domains:
            if domain.decision is not None and domain.decision.reason:
                number = len(footnotes) + 1
                footnotes.append(Footnote(number, row.id, domain.suggestion.domain,
                                          domain.decision.reason))  # fmt: skip
                mine.append(number)
        numbered.append(replace(row, footnotes=tuple(mine)))
    return SummaryOfFindings(tuple(numbered), tuple(footnotes))


# ---- words -------------------------------------------------------------------------------------
HEDGES = {4: "", 3: "probably ", 2: "may ", 1: ""}


def population_words(scope: str, rows: Slice) -> str:
    """Who a row's patients are, in the slice's own terms ("patients given anakinra for
    steroid-refractory ICANS")."""
    chosen = [
        vocab.SUB_INDICATIONS.label(i)
        for i in rows.indication
        if vocab.PARENT_INDICATION.get(i) == scope
    ]
    if not chosen:
        return vocab.POPULATION_WORDS[scope]
    joined = " or ".join(chosen)
    return (
        f"patients given anakinra for {joined}"
        if scope == "treatment"
        else (f"patients given anakinra as {joined}")
    )


def rate_statement(population: str, code: str, estimate: Estimate, certainty: Certainty) -> str:
    """GRADE's informative wording for an event rate: "about 70 in 100 may improve" (High: no
    hedge, Moderate "probably", Low "may", Very low: "the evidence is very uncertain")."""
    phrase = vocab.OUTCOME_VERBS[code][0]
    if estimate.value is None:
        return f"No estimate for {population}."
    about = f"about {round(100 * estimate.value)} in 100"
    interval = (
        f"95% CI {round(100 * estimate.low)} to {round(100 * estimate.high)}; "
        if estimate.low is not None and estimate.high is not None
        else ""
    )
    level = certainty.level
    if level is None:
        return f"Among {population}, {about} {phrase} ({interval}certainty not yet graded)."
    if level == 1:
        return (
            f"The evidence is very uncertain: among {population}, {about} {phrase} in these "
            f"studies ({interval}very low certainty)."
        )
    words = grade.CERTAINTY_WORDS[level].lower()
    return f"Among {population}, {about} {HEDGES[level]}{phrase} ({interval}{words} certainty)."


def comparison_statement(
    what: str, code: str, relative: Estimate, absolute: Absolute | None, certainty: Certainty
) -> str:
    """GRADE's wording for a comparison: direction from the risk ratio, hedged by certainty."""
    label = analysis.in_sentence(vocab.OUTCOMES.label(code))
    if relative.value is None:
        return f"No comparison of {label} can be estimated."
    if relative.low is not None and relative.high is not None and relative.low < 1 < relative.high:
        effect = f"may make little or no difference to {label}"
    else:
        effect = f"{'reduces' if relative.value < 1 else 'increases'} {label}"
    per_1000 = ""
    if absolute is not None and absolute.difference is not None:
        more = "more" if absolute.difference > 0 else "fewer"
        per_1000 = f"; {abs(round(absolute.difference))} {more} per 1,000"
    rr = f"RR {relative.value:.2f}"
    level = certainty.level
    if level is None:
        return f"{what.capitalize()}: {effect} ({rr}{per_1000}; certainty not yet graded)."
    if level == 1:
        return f"The evidence is very uncertain about the effect of {what} on {label} ({rr})."
    hedge = {4: "", 3: "probably ", 2: "may "}[level]
    if effect.startswith("may make"):
        hedge = ""
    words = grade.CERTAINTY_WORDS[level].lower()
    return f"{what.capitalize()} {hedge}{effect} ({rr}{per_1000}; {words} certainty)."
