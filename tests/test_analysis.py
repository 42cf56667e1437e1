"""The analysis layer's pairing of cohorts: what it compares is what a reader is told."""

from __future__ import annotations

import duckdb
import pandas as pd

from evidence import analysis, db
from evidence.filters import Filters
from evidence.meta.comparisons import compare_groups
from evidence.sheets import OUTCOME_LABELS


def test_within_study_dose_comparison_pairs_highest_with_lowest_dose_of_each_study() -> None:
    rows = pd.DataFrame(
        {
            "study_id": ["A", "A", "A", "B", "B", "C"],
            "label": ["A low", "A mid", "A high", "B low", "B high", "C only"],
            "events": [2, 5, 9, 1, 4, 3],
            "total": [10, 10, 12, 8, 9, 7],
            "dose_mg_day_max": [100.0, 200.0, 600.0, 200.0, 800.0, 300.0],
        }
    )
    table, result = analysis.within_study_dose_comparisons(rows)
    assert table[["study_id", "high_label", "low_label"]].values.tolist() == [
        ["A", "A high", "A low"],
        ["B", "B high", "B low"],
    ]
    expected = compare_groups([9, 4], [12, 9], [2, 1], [10, 8], measure="RR", method="MH")
    assert result is not None and result.estimate == expected.estimate


def test_no_study_with_two_doses_gives_no_comparison() -> None:
    rows = pd.DataFrame(
        {"study_id": ["A"], "label": ["A"], "events": [1], "total": [5],
         "dose_mg_day_max": [100.0]}
    )  # fmt: skip
    table, result = analysis.within_study_dose_comparisons(rows)
    assert table.empty and result is None


def test_a_slices_counts_are_exactly_its_cohorts_chosen_counts(
    fixture_con: duckdb.DuckDBPyConnection,
) -> None:
    """The dashboard reads every cohort's counts once and picks a slice's rows by cohort id. The
    rows must be those the database marks for analysis in exactly the slice's cohorts (checked
    against the per-cohort `outcome_rows` query), so an excluded study's counts never pool."""
    every = analysis.every_poolable_row(fixture_con)
    first = str(every["study_id"].iloc[0])
    for filters in (Filters(), Filters(exclude=(first,)), Filters(indication=("prophylaxis",))):
        cohorts = analysis.cohort_slice(fixture_con, filters)
        picked = analysis.in_slice(every, cohorts)
        extracted = db.run(fixture_con, "outcome_rows", cohort_ids=cohorts["cohort_id"].tolist())
        chosen = extracted[
            extracted["use_in_analysis"] & extracted["events"].notna() & (extracted["total"] > 0)
        ]
        key = ["outcome", "cohort_id", "events", "total"]
        assert sorted(picked[key].itertuples(index=False)) == sorted(
            chosen[key].astype({"events": int, "total": int}).itertuples(index=False)
        )
        assert set(picked["cohort_id"]) <= set(cohorts["cohort_id"])
        assert picked.index.tolist() == list(range(len(picked)))
    without_first = analysis.cohort_slice(fixture_con, Filters(exclude=(first,)))
    assert first not in set(analysis.in_slice(every, without_first)["study_id"])


def test_pooling_a_pages_outcomes_at_once_gives_each_outcomes_own_result(
    fixture_con: duckdb.DuckDBPyConnection,
) -> None:
    """The dashboard pools a page's outcomes from one query of the slice's counts; every number
    must be what pooling that outcome alone gives, in the order the page asked for."""
    filters = Filters()
    counts = analysis.poolable_rows(fixture_con, analysis.cohort_slice(fixture_con, filters))
    codes = tuple(reversed(OUTCOME_LABELS))  # every outcome, not in the frame's order
    together = analysis.pool_outcomes(counts, codes, filters, origin="v1|slice")
    assert [a.outcome for a in together] == list(codes)
    assert {a.origin for a in together} == {"v1|slice"}
    assert any(a.result is None and a.rows.empty for a in together)
    for shared in together:
        alone = analysis.analyse_outcome(fixture_con, filters, shared.outcome)
        pd.testing.assert_frame_equal(shared.rows, alone.rows)
        assert shared.result == alone.result
        assert shared.forest_records() == alone.forest_records()
    assert any(a.result is not None and a.result.k >= 2 for a in together)
