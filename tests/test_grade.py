"""GRADE suggestions, one test per rule and edge: each gives its documented level and reason, and
the panel's decisions and the certainty that follows behave as docs/methods.md says."""

from __future__ import annotations

import duckdb
import pytest

from evidence import analysis, grade, sof
from evidence.filters import Slice
from evidence.grade import Decision, Domain, Mismatch, PanelSettings, Suggestion
from evidence.meta.proportions import pool_proportions


# ---- certainty ---------------------------------------------------------------------------------
def _domains(*levels: grade.Level) -> list[Domain]:
    return [
        Domain(Suggestion(d, level, "")) for d, level in zip(grade.DOMAINS, levels, strict=True)
    ]


def test_event_rates_start_high_and_comparisons_low() -> None:
    none = _domains(*["not_serious"] * 5)
    assert grade.certainty("event_rate", none).words == "High"
    assert grade.certainty("comparative", none).words == "Low"


def test_each_serious_domain_rates_down_one_level_and_never_below_very_low() -> None:
    two = _domains("serious", "not_serious", "serious", "not_serious", "not_serious")
    assert grade.certainty("event_rate", two).words == "Low"
    worst = _domains("very_serious", "serious", "very_serious", "very_serious", "serious")
    assert grade.certainty("event_rate", worst).level == 1


def test_a_domain_not_assessed_leaves_the_row_not_yet_graded_not_high() -> None:
    domains = _domains("not_serious", "not_assessable", "not_serious", "not_serious", "not_serious")
    result = grade.certainty("event_rate", domains)
    assert result.level is None and result.words == "Not yet graded"
    assert result.unresolved == ("inconsistency",)
    decided = [
        Domain(d.suggestion, Decision("r", "inconsistency", "serious", "single small study"))
        if d.suggestion.domain == "inconsistency"
        else d
        for d in domains
    ]
    assert grade.certainty("event_rate", decided).words == "Moderate"


# ---- risk of bias ------------------------------------------------------------------------------
def test_a_study_is_at_high_risk_when_a_critical_item_is_answered_no() -> None:
    answers = {1: "yes", 2: "yes", 3: "yes", 4: "no", 5: "yes", 8: "yes"}
    assert grade.study_risk("JBI_case_series", answers) == "high"
    assert grade.study_risk("JBI_case_series", {**answers, 4: "unclear"}) == "some concerns"
    assert grade.study_risk("JBI_case_series", {**answers, 4: "yes"}) == "low"
    assert grade.study_risk("not_assessable", {}) == "not assessed"


def test_risk_of_bias_without_any_quality_rows_is_not_assessable() -> None:
    suggestion = grade.suggest_risk_of_bias([("A", "not assessed", 10), ("B", "not assessed", 5)])
    assert suggestion.level == "not_assessable"
    assert suggestion.reason == "No study of this row has a quality appraisal to judge."


def test_most_information_from_low_risk_studies_is_not_serious() -> None:
    suggestion = grade.suggest_risk_of_bias([("A", "low", 30), ("B", "high", 10)])
    assert suggestion.level == "not_serious"
    assert suggestion.reason.startswith("Most information (75% of patients)")


def test_mostly_high_risk_is_very_serious_only_when_leaving_them_out_changes_the_answer() -> None:
    studies = [("A", "high", 30), ("B", "low", 10)]
    assert grade.suggest_risk_of_bias(studies, 0.7, 0.65, (0.5,)).level == "serious"
    moved = grade.suggest_risk_of_bias(studies, 0.7, 0.4, (0.5,))
    assert moved.level == "very_serious" and "moves the estimate across" in moved.reason
    alone = grade.suggest_risk_of_bias([("A", "high", 30)], 0.7, None)
    assert alone.level == "very_serious" and "no study at lower risk" in alone.reason


# ---- inconsistency -----------------------------------------------------------------------------
def test_a_single_study_cannot_show_consistency() -> None:
    suggestion = grade.suggest_inconsistency(1, [(0.5, 0.2, 0.8)], (None, None), None, None)
    assert suggestion.level == "not_assessable" and suggestion.reason.startswith("A single study")


def test_a_prediction_interval_across_two_threshold_categories_is_serious() -> None:
    studies = [(0.4, 0.3, 0.55), (0.5, 0.38, 0.6), (0.45, 0.35, 0.6)]
    suggestion = grade.suggest_inconsistency(3, studies, (0.3, 0.65), 20.0, 0.3, (0.5,))
    assert suggestion.level == "serious"
    assert "prediction interval spans two or more threshold categories" in suggestion.reason
    inside = grade.suggest_inconsistency(3, studies, (0.32, 0.48), 20.0, 0.3, (0.5,))
    assert inside.level == "not_serious"


def test_estimates_on_both_sides_of_a_threshold_with_disjoint_cis_are_serious() -> None:
    studies = [(0.2, 0.1, 0.3), (0.8, 0.7, 0.9)]
    suggestion = grade.suggest_inconsistency(2, studies, (None, None), 90.0, 0.001, (0.5,))
    assert suggestion.level == "serious" and "both sides of a threshold" in suggestion.reason


def test_without_thresholds_i2_alone_never_rates_down() -> None:
    overlapping = [(0.4, 0.2, 0.6), (0.5, 0.3, 0.7), (0.45, 0.25, 0.65)]
    suggestion = grade.suggest_inconsistency(3, overlapping, (0.3, 0.6), 80.0, 0.05)
    assert suggestion.level == "not_serious"
    wide = grade.suggest_inconsistency(3, overlapping, (0.1, 0.9), 80.0, 0.05)
    assert wide.level == "serious" and "Prediction interval 80% wide" in wide.reason


# ---- indirectness ------------------------------------------------------------------------------
def test_cohorts_differing_on_product_or_grading_make_indirectness_serious() -> None:
    cohorts = [
        Mismatch("a", 30, ("product",), ()),
        Mismatch("b", 10, (), ("grading system",)),
    ]
    suggestion = grade.suggest_indirectness(cohorts)
    assert suggestion.level == "serious"
    assert suggestion.reason.startswith("75% of patients come from cohorts that differ")
    assert "Not reported in some cohorts: grading system" in suggestion.reason
    two = grade.suggest_indirectness([Mismatch("a", 30, ("product", "grading system"), ())])
    assert two.level == "very_serious"
    matched = grade.suggest_indirectness([Mismatch("a", 30, (), ())])
    assert matched.level == "not_serious"


# ---- imprecision -------------------------------------------------------------------------------
def test_a_ci_crossing_a_panel_threshold_is_serious_and_two_very_serious() -> None:
    one = grade.suggest_imprecision_rate(0.6, (0.45, 0.75), 60, 36, (0.5,))
    assert one.level == "serious" and "crosses the threshold of 50%" in one.reason
    two = grade.suggest_imprecision_rate(0.6, (0.35, 0.85), 60, 36, (0.4, 0.8))
    assert two.level == "very_serious" and "crosses 2 thresholds" in two.reason


def test_a_ci_clear_of_the_thresholds_still_needs_enough_patients() -> None:
    few = grade.suggest_imprecision_rate(0.7, (0.55, 0.82), 40, 28, (0.5,))
    assert few.level == "serious" and f"{grade.information_size(0.7)} needed" in few.reason
    many = grade.suggest_imprecision_rate(0.7, (0.65, 0.75), 400, 280, (0.5,))
    assert many.level == "not_serious"


def test_without_thresholds_the_ci_half_width_decides_as_labelled() -> None:
    assert grade.suggest_imprecision_rate(0.7, (0.65, 0.74), 300, 210).level == "not_serious"
    serious = grade.suggest_imprecision_rate(0.7, (0.55, 0.82), 40, 28)
    assert serious.level == "serious" and serious.reason.startswith("No threshold set")
    assert grade.suggest_imprecision_rate(0.5, (0.1, 0.9), 8, 4).level == "very_serious"


def test_no_events_at_all_is_very_serious() -> None:
    suggestion = grade.suggest_imprecision_rate(0.0, (0.0, 0.12), 30, 0)
    assert suggestion.level == "very_serious" and "upper bound (12%)" in suggestion.reason


def test_a_risk_ratio_crossing_one_and_an_appreciable_bound() -> None:
    one = grade.suggest_imprecision_ratio(0.6, (0.4, 0.9), 2000, 0.3)
    assert one.level == "serious" and "RR 0.75" in one.reason
    both = grade.suggest_imprecision_ratio(0.9, (0.5, 1.6), 100, 0.3)
    assert both.level == "very_serious"
    small = grade.suggest_imprecision_ratio(0.4, (0.3, 0.55), 100, 0.3)
    assert small.level == "very_serious" and "optimal information size" in small.reason


def test_optimal_information_size_is_the_two_proportion_sample_size() -> None:
    # p 0.30 vs 0.225 (RRR 25%), alpha 0.05, power 0.80: about 541 per arm.
    assert abs(grade.optimal_information_size(0.30) - 2 * 541) <= 4


# ---- publication bias --------------------------------------------------------------------------
def test_all_small_studies_mostly_abstracts_is_strongly_suspected() -> None:
    studies = [("A", "abstract", 20), ("B", "abstract", 15), ("C", "full_paper", 10)]
    suggestion = grade.suggest_publication_bias(studies)
    assert suggestion.level == "serious"
    assert grade.level_label("publication_bias", suggestion.level) == "strongly suspected"
    assert "78% of patients come from conference abstracts" in suggestion.reason


def test_a_registered_trial_without_a_full_report_is_strongly_suspected() -> None:
    suggestion = grade.suggest_publication_bias([("A", "full_paper", 80)], ["NCT01234567"])
    assert suggestion.level == "serious" and "NCT01234567" in suggestion.reason
    clean = grade.suggest_publication_bias([("A", "full_paper", 80)])
    assert clean.level == "not_serious" and "fewer than 10 studies" in clean.reason


# ---- the rows of a slice -----------------------------------------------------------------------
NO_PANEL = PanelSettings()


def _rows(con: duckdb.DuckDBPyConnection, panel: PanelSettings = NO_PANEL, **chosen):
    return {r.id: r for r in sof.summary_of_findings(con, Slice(**chosen), "glmm", panel).rows}


def test_each_row_pools_what_the_engine_pools_and_counts_its_slice(fixture_con) -> None:
    rows = _rows(fixture_con)
    response = rows["treatment.icans_response"]
    expected = pool_proportions([4, 11, 15], [6, 14, 20], method="GLMM")
    assert response.estimate is not None
    assert response.estimate.value == expected.proportion.estimate
    assert (response.studies, response.studies_in_slice) == (3, 3)
    assert (response.patients, response.events) == (40, 30)
    assert "about 75 in 100" in response.statement and response.framing == "event_rate"


def test_an_outcome_no_study_reports_keeps_its_row_not_graded(fixture_con) -> None:
    row = _rows(fixture_con)["treatment.icans_resolution"]
    assert row.studies == 0 and row.estimate is None
    assert row.certainty.words == "Not yet graded"
    assert all(d.level == "not_assessable" for d in row.domains)
    assert row.note == "No study in this slice reports it."


def test_an_outcome_reported_only_as_a_median_says_so_and_is_not_pooled(fixture_con) -> None:
    row = _rows(fixture_con)["prophylaxis.hospital_days"]
    assert row.studies == 0 and row.estimate is None
    assert row.note is not None and "only as" in row.note and "not pooled" in row.note


def test_one_study_shows_its_own_proportion_and_leaves_consistency_to_the_panel(fixture_con):
    row = _rows(fixture_con)["treatment.early_mortality"]
    assert row.studies == 1 and row.estimate is not None and row.estimate.value == 0.1
    inconsistency = next(d for d in row.domains if d.suggestion.domain == "inconsistency")
    assert inconsistency.level == "not_assessable"


def test_a_comparator_cohort_gives_a_comparative_row_with_absolute_effects(fixture_con) -> None:
    row = _rows(fixture_con)["compare.comparator.any_icans"]
    assert row.framing == "comparative" and row.certainty.start == 2
    assert row.relative is not None and row.relative.value == pytest.approx((6 / 30) / (18 / 40))
    assert row.absolute is not None and row.absolute.comparator_per_1000 == pytest.approx(450)
    assert row.absolute.difference == pytest.approx(450 * (row.relative.value - 1))
    assert "compared with the studies' own cohorts" in row.statement


def test_the_panels_decisions_and_thresholds_apply_and_number_their_footnotes(fixture_con):
    panel = PanelSettings(
        (
            Decision("treatment.icans_response", "imprecision", "very_serious", "tiny"),
            Decision("treatment.icans_response", "risk_of_bias", "serious", "abstracts"),
        ),
        (("treatment.icans_response", 0.5),),
    )
    summary = sof.summary_of_findings(fixture_con, Slice(), "glmm", panel)
    row = next(r for r in summary.rows if r.id == "treatment.icans_response")
    assert row.thresholds == (0.5,)
    assert [f.number for f in summary.footnotes] == [1, 2] and row.footnotes == (1, 2)
    assert [f.domain for f in summary.footnotes] == ["risk_of_bias", "imprecision"]
    imprecision = next(d for d in row.domains if d.suggestion.domain == "imprecision")
    assert imprecision.level == "very_serious" and imprecision.decided_by_panel


def test_indirectness_follows_the_slices_own_question(fixture_con) -> None:
    """Beta 2021 mixes axi-cel with tisa-cel and grades with CTCAE: against the default question
    (ASTCT grading) it differs; asked about CTCAE-graded cohorts it does not."""
    default = _rows(fixture_con)["treatment.icans_response"]
    indirect = next(d for d in default.domains if d.suggestion.domain == "indirectness")
    assert "grading system" in dict(indirect.suggestion.figures)["differs"]
    asked = _rows(fixture_con, grading=("CTCAE",))["treatment.icans_response"]
    indirect = next(d for d in asked.domains if d.suggestion.domain == "indirectness")
    assert "grading system" not in dict(indirect.suggestion.figures)["differs"]


def test_the_statement_hedges_by_certainty() -> None:
    estimate = sof.Estimate(0.7, 0.55, 0.82)
    words = {
        level: sof.rate_statement(
            "patients given anakinra for ICANS",
            "icans_response",
            estimate,
            grade.Certainty(4, level),
        )
        for level in (4, 3, 2, 1, None)
    }
    assert "about 70 in 100 improve (95% CI 55 to 82; high certainty)" in words[4]
    assert "probably improve" in words[3] and "may improve" in words[2]
    assert words[1].startswith("The evidence is very uncertain")
    assert "certainty not yet graded" in words[None]


def test_the_k_of_n_of_a_scoped_slice(fixture_con) -> None:
    counts = analysis.slice_summary(analysis.cohort_slice(fixture_con, Slice().within("treatment")))
    row = _rows(fixture_con)["treatment.grade5_icans"]
    assert row.studies_in_slice == counts.studies and row.patients_in_slice == counts.patients
