"""Named queries and the filter declarations: what a user's slice selects, and how a link
restores it."""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import pytest

from evidence import db
from evidence.extraction.contract import SYNTHETIC_MARK
from evidence.filters import FILTERS, Range, Slice, View, link_params, read_link

ROOT = Path(__file__).resolve().parent.parent


def _slice(con: duckdb.DuckDBPyConnection, **chosen: object) -> list[str]:
    return sorted(db.run(con, "cohort_slice", **Slice(**chosen).sql_params())["cohort_id"])


# Parameters that make each query return rows on the fixture database.
SAMPLE = {
    **Slice().sql_params(),
    "cohort_ids": ["Alpha_icans", "Delta_proph"],
    "study_ids": ["Alpha2020", "Delta2022"],
    "mark": SYNTHETIC_MARK,
}


@pytest.mark.parametrize("name", sorted(db.queries()))
def test_every_named_query_returns_rows_on_the_fixture(
    fixture_con: duckdb.DuckDBPyConnection, name: str
) -> None:
    frame = db.run(fixture_con, name, **SAMPLE)
    assert len(frame) > 0 and len(frame.columns) > 0, f"{name} returned nothing"


def _asked_queries() -> dict[str, set[str]]:
    """Every query name the code asks for: the string argument after the connection or data
    source in calls of `db.run(...)` and `_query(...)`, found in the syntax tree."""
    asked: dict[str, set[str]] = {}
    for path in [*ROOT.glob("evidence/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            if name in ("run", "_query") and isinstance(node.args[1], ast.Constant):
                asked.setdefault(str(node.args[1].value), set()).add(path.name)
    return asked


def test_code_asks_only_for_queries_that_exist_and_every_query_is_asked_for() -> None:
    asked, defined = _asked_queries(), set(db.queries())
    assert asked, "the syntax-tree search found no query calls at all"
    unknown = {name: files for name, files in asked.items() if name not in defined}
    assert not unknown, f"code asks for queries queries.sql does not define: {unknown}"
    assert defined - set(asked) == set(), "queries.sql defines queries nothing runs"


def test_every_filter_has_its_clause_in_the_slice_query() -> None:
    sql = db.queries()["cohort_slice"]
    for f in FILTERS:
        for parameter in f.sql_parameters(f.default):
            assert f"${parameter}" in sql, f"filter {f.key!r}: no ${parameter} in cohort_slice"


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
    ("chosen", "expected"),
    [
        ({"indication": ("prophylaxis",)}, ["Delta_proph"]),
        ({"indication": ("steroid_refractory_icans",)}, ["Beta_icans", "Gamma_icans"]),
        ({"product": ("tisa-cel",)}, ["Beta_icans"]),
        ({"product": ("mixed",)}, ["Beta_icans", "Delta_proph"]),
        ({"product": ("axi-cel",)}, ["Alpha_icans", "Beta_icans", "Delta_proph"]),
        ({"product": ("axi-cel",), "product_mix": "alone"}, ["Alpha_icans"]),
        (
            {"product": ("axi-cel", "tisa-cel"), "product_mix": "alone"},
            ["Alpha_icans", "Beta_icans"],
        ),
        ({"dose": Range(250.0, None)}, ["Beta_icans", "Gamma_icans"]),
        ({"dose": Range(None, 150.0)}, ["Alpha_icans"]),
        ({"dose_band": ("gt200",)}, ["Beta_icans", "Gamma_icans"]),
        ({"route": ("IV",)}, ["Beta_icans", "Gamma_icans"]),
        ({"grading": ("CTCAE",)}, ["Beta_icans"]),
        ({"design": ("prospective",)}, ["Delta_proph"]),
        ({"pubtype": ("abstract",)}, ["Beta_icans"]),
        ({"year": Range(2022, None)}, ["Delta_proph", "Gamma_icans"]),
        ({"year": Range(None, 2020)}, ["Alpha_icans"]),
        ({"min_n": 15}, ["Delta_proph", "Gamma_icans"]),
        ({"window": "review"}, ["Alpha_icans", "Beta_icans", "Delta_proph"]),
        ({"exclude": ("Beta2021",)}, ["Alpha_icans", "Delta_proph", "Gamma_icans"]),
    ],
)
def test_each_filter_selects_the_matching_cohorts(
    fixture_con: duckdb.DuckDBPyConnection, chosen: dict[str, object], expected: list[str]
) -> None:
    assert _slice(fixture_con, **chosen) == expected


def test_link_round_trip_restores_every_filter_and_view_setting() -> None:
    rows = Slice(
        indication=("treatment",),
        product=("axi-cel", "tisa-cel"),
        dose=Range(100.0, 800.0),
        dose_band=("gt200",),
        route=("IV",),
        grading=("ASTCT",),
        design=("retrospective",),
        pubtype=("full_paper",),
        product_mix="alone",
        year=Range(2019, 2023),
        min_n=5,
        window="review",
        exclude=("Beta2021",),
    )
    view = View(
        method="reml_hksj", outcome="grade5_icans", split="dose_band", study="Park2023",
        mode="meeting",
    )  # fmt: skip
    params = link_params(rows, view)
    link_keys = {key for f in FILTERS for key in f.link_keys}
    assert set(params) == link_keys | {"method", "outcome", "split", "study", "mode"}
    assert read_link(params) == (rows, view, [])


def test_a_range_open_at_one_end_round_trips() -> None:
    rows = Slice(dose=Range(None, 300.0))
    assert link_params(rows, View()) == {"dose_max": ["300"]}
    assert read_link({"dose_max": "300"})[0] == rows


def test_defaults_make_an_empty_link() -> None:
    assert link_params(Slice(), View()) == {}


def test_malformed_link_values_are_ignored_with_a_notice() -> None:
    rows, view, notices = read_link(
        {
            "product": ["axi-cel", "cilta-cel"],
            "dose_min": "lots",
            "year_min": "2024",
            "year_max": "2020",
            "method": "bayes",
            "split": "colour",
            "study": "x;DROP",
            "colour": "red",
            "exclude": ["Beta2021", "x;DROP"],
        }
    )
    assert rows == Slice(product=("axi-cel",), exclude=("Beta2021",))
    assert view == View()
    joined = " ".join(notices)
    for fragment in ("cilta-cel", "'lots'", "year range", "'bayes'", "colour", "x;DROP"):
        assert fragment in joined


def test_caption_comes_from_the_same_declarations() -> None:
    rows = Slice(indication=("treatment",), dose_band=("gt200",), grading=("ASTCT",))
    assert rows.describe(3, 28) == (
        "Treatment of ICANS cohorts, anakinra > 200 mg/day, ASTCT grading: 3 studies, 28 patients"
    )
    assert Slice().describe(1, 1) == "All anakinra cohorts: 1 study, 1 patient"
    assert Slice(design=("prospective",), year=Range(2021, None)).clauses() == [
        "prospective studies",
        "published 2021-…",
    ]


def test_design_groups_ask_the_query_for_every_design_they_cover() -> None:
    params = Slice(design=("prospective",)).sql_params()
    assert sorted(params["design"]) == [
        "prospective_phase1",
        "prospective_phase2",
        "prospective_single_arm",
    ]


def test_toggle_exclusion_adds_and_removes() -> None:
    rows = Slice().toggle_exclusion("Alpha2020")
    assert rows.exclude == ("Alpha2020",)
    assert rows.toggle_exclusion("Alpha2020") == Slice()


def test_page_scope_keeps_only_its_own_indications() -> None:
    assert Slice().within("treatment") == Slice(indication=("treatment",))
    mixed = Slice(indication=("steroid_refractory_icans", "prophylaxis"))
    assert mixed.within("treatment") == Slice(indication=("steroid_refractory_icans",))
    assert Slice(indication=("prophylaxis",)).within("treatment") is None


def test_a_slice_is_immutable_and_refuses_unknown_filters() -> None:
    with pytest.raises(TypeError, match="colour"):
        Slice(colour=("red",))
    with pytest.raises(AttributeError):
        Slice().product = ("axi-cel",)  # type: ignore[misc]
    assert Slice(product=["axi-cel"]) == Slice(product=("axi-cel",))
    assert hash(Slice(min_n=3)) == hash(Slice(min_n=3))
