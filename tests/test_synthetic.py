"""The synthetic extraction generator: valid against the sheet contract, the same bytes for the
same seed, every row marked synthetic, and a set larger than an upload may be built from the
command line (while the hosted uploader keeps its limit)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evidence import synthetic
from evidence.extraction import build
from evidence.extraction.contract import SHEETS, SYNTHETIC_MARK
from evidence.extraction.validate import BUILD_LIMITS, UPLOAD_LIMITS, validate_sheets

ROOT = Path(__file__).resolve().parent.parent
# The free-text column of each sheet that carries the mark (every row of every sheet has one).
MARKED = {
    "studies": "notes",
    "sources": "citation",
    "cohorts": "notes",
    "outcomes": "quote",
    "review_figures": "description",
    "quality": "reason",
}


def _rows(folder: Path, sheet: str) -> list[dict[str, str]]:
    with (folder / f"{sheet}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sheets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    assert synthetic.main(["--cohorts", "400", "--out", str(out), "--seed", "7"]) == 0
    return out


def test_the_sheets_pass_the_contract_with_exactly_the_cohorts_asked_for(sheets: Path) -> None:
    tables = build.validated_tables(build.read_sheet_dir(sheets))
    assert len(tables["cohorts"]) == 400
    assert {s.name for s in SHEETS} == set(tables)
    cohorts = tables["cohorts"]
    # realistic spread: both indications, comparators, several products, doses on both sides of
    # 200 mg/day, several grading systems and designs, years over several years
    assert {c["indication"] for c in cohorts} == {"treatment", "prophylaxis"}
    assert any(c["arm"] == "comparator" for c in cohorts)
    assert len({c["products"] for c in cohorts}) >= 4
    assert {"le200", "gt200", "mixed"} <= {c["dose_band"] for c in cohorts}
    assert len({c["grading_system"] for c in cohorts}) >= 3
    assert len({s["design"] for s in tables["studies"]}) >= 3
    assert len({s["year"] for s in tables["studies"]}) >= 5
    used = [o for o in tables["outcomes"] if o["use_in_analysis"]]
    assert {"icans_response", "any_icans"} <= {o["outcome"] for o in used}
    assert any(not o["use_in_analysis"] for o in tables["outcomes"])  # duplicates kept unused


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_data(
    sheets: Path, tmp_path: Path
) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    synthetic.main(["--cohorts", "400", "--out", str(again), "--seed", "7"])
    synthetic.main(["--cohorts", "400", "--out", str(other), "--seed", "8"])
    for sheet in MARKED:
        name = f"{sheet}.csv"
        assert (again / name).read_bytes() == (sheets / name).read_bytes(), name
    assert (other / "outcomes.csv").read_bytes() != (sheets / "outcomes.csv").read_bytes()


def test_every_row_of_every_sheet_says_it_is_synthetic(sheets: Path) -> None:
    for sheet, column in MARKED.items():
        rows = _rows(sheets, sheet)
        assert rows, sheet
        assert all(row[column].startswith(SYNTHETIC_MARK) for row in rows), sheet
    assert all(r["study_id"].startswith("SYN") for r in _rows(sheets, "studies"))
    assert all(r["label"].startswith("SYN") for r in _rows(sheets, "cohorts"))


def test_the_command_line_builds_more_rows_than_an_upload_may_hold(tmp_path: Path) -> None:
    """The uploader keeps its per-sheet row limit; a host's build from a folder does not."""
    folder = tmp_path / "large"
    synthetic.write(synthetic.generate(2_500), folder)
    raw = build.read_sheet_dir(folder)
    assert max(len(_rows(folder, s.name)) for s in SHEETS) > UPLOAD_LIMITS.rows
    _, problems = validate_sheets(raw, limits=UPLOAD_LIMITS)
    assert any(f"more than {UPLOAD_LIMITS.rows:,} rows" in p.message for p in problems)
    assert validate_sheets(raw, limits=BUILD_LIMITS)[1] == []
    target = tmp_path / "large.duckdb"
    assert build.main(["--from", str(folder), "--out", str(target)]) == 0
    assert build.stored_info(target)["rows:cohorts"] == "2500"


def _banner_warnings(database: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ANAKINRA_DB", str(database))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    st.cache_resource.clear()  # the next test's app opens its own database
    return [w.value for w in at.warning]


def test_the_banner_says_when_synthetic_data_is_in_use(
    tmp_path: Path, shipped_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, target = tmp_path / "syn", tmp_path / "syn.duckdb"
    synthetic.write(synthetic.generate(60), folder)
    assert build.main(["--from", str(folder), "--out", str(target)]) == 0
    shown = _banner_warnings(target, monkeypatch)
    assert any("Synthetic data" in w and "All" in w and "no real patients" in w for w in shown)
    assert not any("Synthetic data" in w for w in _banner_warnings(shipped_db, monkeypatch))


@pytest.fixture(scope="module")
def database_of(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A built database of `cohorts` synthetic cohorts (made once per size)."""
    made: dict[int, Path] = {}

    def make(cohorts: int) -> Path:
        if cohorts not in made:
            folder = tmp_path_factory.mktemp(f"syn{cohorts}")
            synthetic.write(synthetic.generate(cohorts), folder / "sheets")
            target = folder / "syn.duckdb"
            assert build.main(["--from", str(folder / "sheets"), "--out", str(target)]) == 0
            made[cohorts] = target
        return made[cohorts]

    return make


def _treatment_page(database: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ANAKINRA_DB", str(database))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/treatment.py").run()
    assert not at.exception, [e.value for e in at.exception]
    st.cache_resource.clear()
    return at


def test_above_the_threshold_a_large_evidence_base_gets_summaries_not_a_forest_plot(
    database_of, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence.analysis import LARGE_FOREST_STUDIES

    at = _treatment_page(database_of(200), monkeypatch)
    captions = [c.value for c in at.caption]
    large = [c for c in captions if f"a forest plot of more than {LARGE_FOREST_STUDIES} rows" in c]
    assert large, captions
    assert "forest plot by CAR-T product" in large[0].replace("\n", " ")
    assert "funnel" in large[0] and "furthest from the pooled estimate" in large[0]
    # the study table is read a page at a time, with the pooled row's summaries above it
    pages = [n for n in at.number_input if n.key.endswith("_studies_page")]
    assert pages and pages[0].value == 1
    shown = [d.value for d in at.dataframe]
    assert any(len(frame) == 50 for frame in shown)
    assert any(len(frame) == 10 for frame in shown)  # the outliers
    pages[0].set_value(3).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Studies 101-" in c.value for c in at.caption)
    # a slice with fewer studies than the page reached: its last page, not an error
    at.run()
    at.multiselect(key="filter_product").set_value(["axi-cel", "tisa-cel"]).run()
    assert not at.exception, [e.value for e in at.exception]
    clamped = [n for n in at.number_input if n.key == pages[0].key]
    assert clamped and clamped[0].value == 2, [(n.key, n.value) for n in at.number_input]


def test_below_the_threshold_every_study_keeps_its_forest_plot_row(
    database_of, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence.analysis import LARGE_FOREST_STUDIES

    at = _treatment_page(database_of(30), monkeypatch)
    assert not any(
        f"a forest plot of more than {LARGE_FOREST_STUDIES} rows" in c.value for c in at.caption
    )
    assert not [n for n in at.number_input if n.key.endswith("_studies_page")]
