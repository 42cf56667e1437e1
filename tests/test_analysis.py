"""The analysis layer's pairing of cohorts: what it compares is what a reader is told."""

from __future__ import annotations

import pandas as pd

from evidence import analysis
from evidence.meta.comparisons import compare_groups


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
