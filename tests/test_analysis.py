"""The analysis layer's pairing of cohorts: what it compares is what a reader is told."""

from __future__ import annotations

import duckdb
import pandas as pd

from evidence import analysis, db, vocab
from evidence.filters import Slice
from evidence.meta.comparisons import compare_groups
from evidence.meta.proportions import pool_proportions


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
    assert result is not None and result.ratio == expected.ratio


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
    for rows in (Slice(), Slice(exclude=(first,)), Slice(indication=("prophylaxis",))):
        cohorts = analysis.cohort_slice(fixture_con, rows)
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
    without_first = analysis.cohort_slice(fixture_con, Slice(exclude=(first,)))
    assert first not in set(analysis.in_slice(every, without_first)["study_id"])


def test_every_outcome_of_a_slice_pools_exactly_its_own_counts(
    fixture_con: duckdb.DuckDBPyConnection, evidence_of
) -> None:
    """What the dashboard's facade shows for each outcome is the engine's result for that
    outcome's counts in the slice, with the method asked for, and nothing for an outcome no
    cohort reports as counts."""
    for method in ("glmm", "dl"):
        evidence = evidence_of(fixture_con, Slice(), method)
        counts = analysis.in_slice(
            analysis.every_poolable_row(fixture_con),
            analysis.cohort_slice(fixture_con, Slice()),
        )
        for code in vocab.OUTCOMES:
            shown = evidence.outcome(code)
            own = counts[counts["outcome"] == code]
            assert shown.outcome == code and shown.method == method
            assert shown.rows["cohort_id"].tolist() == own["cohort_id"].tolist()
            if own.empty:
                assert shown.result is None and "No study in this slice reports" in shown.message
                continue
            expected = pool_proportions(
                own["events"].to_numpy(dtype=int),
                own["total"].to_numpy(dtype=int),
                labels=own["label"].tolist(),
                **vocab.POOLING_ARGUMENTS[method],
            )
            assert shown.result == expected


def test_outcome_groups_come_back_in_their_order(
    fixture_con: duckdb.DuckDBPyConnection, evidence_of
) -> None:
    evidence = evidence_of(fixture_con)
    for group, codes in vocab.OUTCOME_GROUPS.items():
        assert [a.outcome for a in evidence.outcomes(group)] == list(codes)


def test_no_count_message_reads_the_outcome_as_a_person_writes_it() -> None:
    assert analysis.in_sentence("Any-grade ICANS") == "any-grade ICANS"
    assert analysis.in_sentence("ICANS resolution") == "ICANS resolution"


def test_a_product_slice_marks_cohorts_that_mix_products(
    fixture_con: duckdb.DuckDBPyConnection, evidence_of
) -> None:
    """Beta 2021 holds axi-cel and tisa-cel without a split: in an axi-cel slice its forest row
    says so; its own products alone leave it out."""
    import io

    import pyarrow as pa

    evidence = evidence_of(fixture_con, Slice(product=("axi-cel",)))
    spec = evidence.forest_spec("icans_response", None)
    rows = pa.ipc.open_stream(io.BytesIO(spec["datasets"]["forest"])).read_all().to_pylist()
    labels = [r["row"] for r in rows]
    assert "Beta 2021 — axi-cel + tisa-cel, split not reported" in labels
    alone = evidence_of(fixture_con, Slice(product=("axi-cel",), product_mix="alone"))
    assert "Beta2021" not in set(alone.outcome("icans_response").rows["study_id"])


def test_figures_tables_set_the_comparison_cohort_beside_the_anakinra_cohort(
    fixture_con: duckdb.DuckDBPyConnection, evidence_of
) -> None:
    evidence = evidence_of(fixture_con, Slice().within("prophylaxis"))
    rows = evidence.numbers(only="prophylaxis", with_comparators=True)
    icans = rows[rows["outcome"] == vocab.OUTCOMES.label("any_icans")]
    assert list(
        zip(icans["arm"], icans["label"], icans["events"], icans["total"], strict=True)
    ) == [
        ("anakinra", "Delta 2022", 6, 30),
        ("comparator", "Delta 2022 controls", 18, 40),
    ]
