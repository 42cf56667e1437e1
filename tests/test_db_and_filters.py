"""Named queries and the filter object: what a user's slice selects, and how a link restores it."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from evidence import db
from evidence.filters import SPECS, Filters

ROOT = Path(__file__).resolve().parent.parent


def _slice(con: duckdb.DuckDBPyConnection, **kwargs: object) -> list[str]:
    filters = Filters(**kwargs)  # type: ignore[arg-type]
    return sorted(db.run(con, "cohort_slice", **filters.sql_params())["cohort_id"])


def test_every_named_query_runs_on_the_fixture(fixture_con: duckdb.DuckDBPyConnection) -> None:
    sample = {
        **Filters().sql_params(),
        "outcome": "icans_response",
        "cohort_ids": ["Alpha_icans", "Delta_proph"],
        "study_ids": ["Alpha2020"],
    }
    for name in db.queries():
        frame = db.run(fixture_con, name, **sample)
        assert frame is not None, name


def test_code_asks_only_for_queries_that_exist() -> None:
    names = set(db.queries())
    for path in [*ROOT.glob("evidence/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for asked in re.findall(r"""(?:db\.run|query)\([^,()]*,\s*["'](\w+)["']""", text):
            assert asked in names, f"{path.name} asks for unknown query {asked!r}"


def test_unknown_query_and_missing_parameter_fail_loudly(
    fixture_con: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(db.UnknownQuery):
        db.run(fixture_con, "no_such_query")
    with pytest.raises(TypeError, match="needs parameters"):
        db.run(fixture_con, "outcome_rows")


def test_database_opens_read_only(fixture_db_path: Path) -> None:
    con = db.connect_read_only(fixture_db_path)
    with pytest.raises(duckdb.Error):
        con.execute("DELETE FROM studies")


def test_unfiltered_slice_leaves_out_duplicate_reports_and_comparators(
    fixture_con: duckdb.DuckDBPyConnection,
) -> None:
    # Gamma_abs reports the same patients as Gamma2023; Delta_ctrl is a comparator.
    assert _slice(fixture_con) == ["Alpha_icans", "Beta_icans", "Delta_proph", "Gamma_icans"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"indication": ("prophylaxis",)}, ["Delta_proph"]),
        ({"indication": ("steroid_refractory_icans",)}, ["Beta_icans", "Gamma_icans"]),
        ({"product": ("tisa-cel",)}, ["Beta_icans"]),
        ({"product": ("mixed",)}, ["Beta_icans", "Delta_proph"]),
        ({"product": ("axi-cel",)}, ["Alpha_icans", "Beta_icans", "Delta_proph"]),
        ({"dose_min": 250.0}, ["Beta_icans", "Gamma_icans"]),
        ({"dose_max": 150.0}, ["Alpha_icans"]),
        ({"dose_band": ("gt200",)}, ["Beta_icans", "Gamma_icans"]),
        ({"route": ("IV",)}, ["Beta_icans", "Gamma_icans"]),
        ({"grading": ("CTCAE",)}, ["Beta_icans"]),
        ({"design": ("prospective",)}, ["Delta_proph"]),
        ({"pubtype": ("abstract",)}, ["Beta_icans"]),
        ({"year_min": 2022}, ["Delta_proph", "Gamma_icans"]),
        ({"year_max": 2020}, ["Alpha_icans"]),
        ({"min_n": 15}, ["Delta_proph", "Gamma_icans"]),
        ({"window": "review"}, ["Alpha_icans", "Beta_icans", "Delta_proph"]),
        ({"exclude": ("Beta2021",)}, ["Alpha_icans", "Delta_proph", "Gamma_icans"]),
    ],
)
def test_each_filter_selects_the_matching_cohorts(
    fixture_con: duckdb.DuckDBPyConnection, filters: dict[str, object], expected: list[str]
) -> None:
    assert _slice(fixture_con, **filters) == expected


def test_link_round_trip_restores_every_filter() -> None:
    filters = Filters(
        indication=("treatment",),
        product=("axi-cel", "tisa-cel"),
        dose_min=100.0,
        dose_max=800.0,
        dose_band=("gt200",),
        route=("IV",),
        grading=("ASTCT",),
        design=("retrospective",),
        pubtype=("full_paper",),
        year_min=2019,
        year_max=2023,
        min_n=5,
        window="review",
        outcome="grade5_icans",
        method="reml_hksj",
        exclude=("Beta2021",),
    )
    params = filters.to_query_params()
    assert set(params) == {spec.name for spec in SPECS}
    assert Filters.from_query_params(params) == (filters, [])


def test_defaults_make_an_empty_link() -> None:
    assert Filters().to_query_params() == {}


def test_malformed_link_values_are_ignored_with_a_notice() -> None:
    filters, notices = Filters.from_query_params(
        {
            "product": ["axi-cel", "cilta-cel"],
            "dose_min": "lots",
            "year_min": "2024",
            "year_max": "2020",
            "method": "bayes",
            "colour": "red",
            "exclude": ["Beta2021", "x;DROP"],
        }
    )
    assert filters == Filters(product=("axi-cel",), exclude=("Beta2021",))
    joined = " ".join(notices)
    for fragment in ("cilta-cel", "'lots'", "year range", "'bayes'", "colour", "x;DROP"):
        assert fragment in joined


def test_caption_comes_from_the_same_filters() -> None:
    filters = Filters(indication=("treatment",), dose_band=("gt200",), grading=("ASTCT",))
    assert filters.describe(3, 28) == (
        "Treatment of ICANS cohorts, anakinra > 200 mg/day, ASTCT grading: 3 studies, 28 patients"
    )
    assert Filters().describe(1, 1) == "All anakinra cohorts: 1 study, 1 patient"


def test_toggle_exclusion_adds_and_removes() -> None:
    filters = Filters().toggle_exclusion("Alpha2020")
    assert filters.exclude == ("Alpha2020",)
    assert filters.toggle_exclusion("Alpha2020") == Filters()


def test_page_scope_keeps_only_its_own_indications() -> None:
    assert Filters().within("treatment") == Filters(indication=("treatment",))
    mixed = Filters(indication=("steroid_refractory_icans", "prophylaxis"))
    assert mixed.within("treatment") == Filters(indication=("steroid_refractory_icans",))
    assert Filters(indication=("prophylaxis",)).within("treatment") is None
