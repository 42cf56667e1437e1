"""Text alternatives and keyboard paths: a chart's numbers as a table with headers in words, and
the Studies page's list that highlights a study as its table's row selection does. (axe-core on
every page, the charts' labels and the keyboard itself are checked in Chromium:
tests/test_browser_room.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from evidence import figures
from evidence.ui import accessible

ROOT = Path(__file__).resolve().parent.parent


def test_a_forest_plots_table_has_a_row_per_study_and_the_pool(shipped_con, evidence_of) -> None:
    spec = evidence_of(shipped_con).forest_spec("icans_response", None)
    table = figures.chart_table(spec)
    assert list(table.columns) == [
        "Study", "Events / patients", "Proportion [95% CI]", "Prediction interval", "Weight (%)",
    ]  # fmt: skip
    strati = table[table["Study"].str.startswith("Strati 2020")].iloc[0]
    assert strati["Events / patients"] == "4/6"
    assert strati["Proportion [95% CI]"] == "66.7% [22.3%, 95.7%]"
    assert strati["Prediction interval"] == ""  # a study has none
    pooled = table.iloc[-1]
    assert pooled["Study"] == "Pooled estimate" and pooled["Weight (%)"] == "100.0"
    assert pooled["Prediction interval"].endswith("%")


def test_the_dose_and_ratio_tables_say_doses_and_ratios(shipped_con, evidence_of) -> None:
    evidence = evidence_of(shipped_con)
    dose = figures.chart_table(evidence.dose_spec("icans_response", None))
    assert list(dose.columns) == ["Cohort", "Dose (mg/day)", "Events / patients (proportion)"]
    assert dose.iloc[0]["Dose (mg/day)"] == "50-200"
    assert figures.chart_table({"datasets": {}}).empty


@pytest.fixture
def app(shipped_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    yield AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def test_every_chart_has_its_table_under_it_closed(app: AppTest) -> None:
    app.run()
    app.switch_page("pages/treatment.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    charts = app.get("vega_lite_chart")
    boxes = [e for e in app.expander if e.label == "Chart data as a table"]
    assert charts and len(boxes) == len(charts)
    assert not app.table  # made only when opened


def test_the_study_list_highlights_the_study_and_shows_its_provenance(app: AppTest) -> None:
    app.run()
    app.switch_page("pages/studies.py")
    app.run()
    picker = app.selectbox(key=accessible.STUDY_PICKER)
    assert picker.value is None
    assert "Strati2020" in picker.options[0] or any("(Strati2020)" in o for o in picker.options)
    picker.set_value("Strati2020").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["view"].study == "Strati2020"
    assert app.query_params["study"] in (["Strati2020"], "Strati2020")
    assert any("where every number was read" in h.value for h in app.header)
    assert app.selectbox(key=accessible.STUDY_PICKER).value == "Strati2020"


def test_a_row_still_selected_in_the_table_does_not_undo_the_lists_choice(app: AppTest) -> None:
    """The table sends its selection with every rerun: once applied it is not applied again, so
    a study chosen from the list afterwards stays highlighted."""
    app.run()
    app.switch_page("pages/studies.py")
    app.run()
    ids = app.dataframe[0].value["study_id"].tolist()
    app.session_state["studies_table"] = {"selection": {"rows": [ids.index("Park2023")]}}
    app.run()
    assert app.session_state["view"].study == "Park2023"
    app.selectbox(key=accessible.STUDY_PICKER).set_value("Strati2020").run()
    assert app.session_state["view"].study == "Strati2020"
    app.run()  # the table's old selection comes again with the next rerun
    assert app.session_state["view"].study == "Strati2020"
