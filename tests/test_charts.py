"""Chart specs: valid Vega-Lite, rows in the analysis' order, and a spec that stays the same when
only the rows change (so the browser swaps the data instead of rebuilding the chart)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from evidence import analysis, build, charts
from evidence.filters import Filters
from evidence.ui.vega import vega_spec


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """The shipped extraction, built into a private file."""
    target = tmp_path_factory.mktemp("charts") / "anakinra.duckdb"
    build.build_file(build.read_sheet_dir(build.SHEETS_DIR), target, origin="test")
    connection = duckdb.connect(str(target), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def response(con: duckdb.DuckDBPyConnection) -> analysis.OutcomeAnalysis:
    return analysis.analyse_outcome(
        con, Filters(), "icans_response", analysis.cohort_slice(con, Filters())
    )


def _without_data(spec: dict) -> dict:
    return {key: value for key, value in spec.items() if key != "datasets"}


def test_forest_spec_is_valid_vega_lite_and_keeps_the_frame_order(response) -> None:
    frame = response.forest_frame()
    spec = charts.forest_plot(frame, response.label).to_dict(validate=True)
    rows = spec["datasets"]["forest"]
    assert [r["row"] for r in rows][:-1] == frame["label"].tolist()[:-1]
    assert rows[-1]["row"] == "Pooled estimate"
    assert [r["order"] for r in rows] == list(range(len(frame)))
    assert "quote" not in rows[0]  # provenance text stays out of the chart's payload


def test_forest_spec_changes_only_in_its_data_when_a_study_is_excluded(con, response) -> None:
    excluded = Filters(exclude=(response.rows["study_id"].iloc[0],))
    fewer = analysis.analyse_outcome(
        con, excluded, "icans_response", analysis.cohort_slice(con, excluded)
    )
    assert fewer.result is not None and fewer.result.k == response.result.k - 1
    before = charts.forest_plot(response.forest_frame(), response.label).to_dict()
    after = charts.forest_plot(fewer.forest_frame(), fewer.label).to_dict()
    assert before["datasets"] != after["datasets"]
    assert _without_data(before) == _without_data(after)


def test_highlighting_a_study_changes_only_the_data(response) -> None:
    frame = response.forest_frame()
    study = frame["study_id"].iloc[1]
    plain = charts.forest_plot(frame, response.label).to_dict()
    marked = charts.forest_plot(frame, response.label, highlight=study).to_dict()
    assert _without_data(plain) == _without_data(marked)
    flagged = [r["study_id"] for r in marked["datasets"]["forest"] if r["highlighted"]]
    assert flagged == [study]


def test_spec_sent_to_the_browser_carries_each_dataset_as_arrow_with_the_same_rows(
    response,
) -> None:
    chart = charts.forest_plot(response.forest_frame(), response.label)
    rows = chart.to_dict()["datasets"]["forest"]
    layout = charts.forest_layout(response.label).to_dict(validate=False)
    sent = vega_spec(layout, charts.forest_data(response.forest_records()))
    table = pa.ipc.open_stream(io.BytesIO(sent["datasets"]["forest"])).read_all()
    back = table.to_pandas()
    assert back["row"].tolist() == [r["row"] for r in rows]
    assert back["events"].tolist() == [r["events"] for r in rows]
    pd.testing.assert_series_equal(
        back["pi_low"], pd.Series([r["pi_low"] for r in rows], dtype=float), check_names=False
    )
    assert _without_data(sent) == _without_data(chart.to_dict(validate=False))


def test_dose_plot_spec_has_its_threshold_and_line_as_named_data() -> None:
    points = pd.DataFrame(
        {
            "study_id": ["A", "B"],
            "label": ["A 2021", "B 2022"],
            "events": [3, 5],
            "total": [10, 8],
            "proportion": [0.3, 0.625],
            "dose_mg_day_min": [100.0, 400.0],
            "dose_mg_day_max": [200.0, 800.0],
            "dose_mid": [150.0, 600.0],
        }
    )
    line = pd.DataFrame({"x": [100.0, 800.0], "estimate": [0.3, 0.6], "ci_low": [0.1, 0.3],
                         "ci_high": [0.6, 0.8]})  # fmt: skip
    spec = charts.dose_bubble_plot(points, line, "Response").to_dict(validate=True)
    assert spec["datasets"]["threshold"] == [{"dose": 200}]
    assert len(spec["datasets"]["line"]) == 2
    without_line = charts.dose_bubble_plot(points, None, "Response").to_dict(validate=True)
    assert "line" not in without_line["datasets"]


def test_subgroup_rows_read_as_the_panel_sees_them_and_stay_valid_json() -> None:
    records = [
        {"subgroup": "axi-cel", "k": 3, "patients": 40, "estimate": 0.7, "ci_low": 0.55,
         "ci_high": 0.82, "method": "GLMM"},
        {"subgroup": "tisa-cel", "k": 2, "patients": 9, "estimate": float("nan"),
         "ci_low": float("nan"), "ci_high": float("nan"), "method": "GLMM"},
    ]  # fmt: skip
    rows = charts.subgroup_data(records)["subgroups"]
    assert [r["row"] for r in rows] == ["axi-cel  (k = 3)", "tisa-cel  (k = 2)"]
    assert [r["order"] for r in rows] == [0, 1]
    assert rows[0]["estimate_text"] == "70.0% [55.0%, 82.0%]"
    assert rows[0]["x"] == 0.55  # the CI rule starts at its lower bound
    assert rows[1]["estimate_text"] == "not estimable"
    assert rows[1]["estimate"] is None and rows[1]["x"] is None  # JSON null, never NaN
    frame = pd.DataFrame(records)
    spec = charts.subgroup_plot(frame, "Response").to_dict(validate=True)
    assert spec["datasets"]["subgroups"] == rows
