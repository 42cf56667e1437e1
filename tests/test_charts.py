"""Chart specs: valid Vega-Lite, rows in the analysis' order, and a spec that stays the same when
only the rows change (so the browser swaps the data instead of rebuilding the chart)."""

from __future__ import annotations

import io

import altair as alt
import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from evidence import analysis, charts
from evidence.filters import Slice
from evidence.ui.vega import vega_spec


@pytest.fixture(scope="module")
def response(shipped_con: duckdb.DuckDBPyConnection, evidence_of) -> analysis.OutcomeAnalysis:
    return evidence_of(shipped_con).outcome("icans_response")


def _chart(layout: alt.TopLevelMixin, datasets: dict) -> dict:
    """A layout with its rows inline, validated against the Vega-Lite schema."""
    return layout.properties(datasets=datasets).to_dict(validate=True)


def _without_data(spec: dict) -> dict:
    return {key: value for key, value in spec.items() if key != "datasets"}


def test_forest_spec_is_valid_vega_lite_and_keeps_the_analysis_order(response) -> None:
    records = response.forest_records()
    spec = _chart(charts.forest_layout(response.label), charts.forest_data(records))
    rows = spec["datasets"]["forest"]
    assert [r["row"] for r in rows][:-1] == [r["label"] for r in records][:-1]
    assert rows[-1]["row"] == "Pooled estimate"
    assert [r["order"] for r in rows] == list(range(len(records)))
    assert "quote" not in rows[0]  # provenance text stays out of the chart's payload


def test_forest_spec_changes_only_in_its_data_when_a_study_is_excluded(
    shipped_con, evidence_of, response
) -> None:
    excluded = Slice(exclude=(response.rows["study_id"].iloc[0],))
    fewer = evidence_of(shipped_con, excluded).outcome("icans_response")
    assert fewer.result is not None and fewer.result.k == response.result.k - 1
    before = evidence_of(shipped_con).forest_spec("icans_response", None)
    after = evidence_of(shipped_con, excluded).forest_spec("icans_response", None)
    assert before["datasets"] != after["datasets"]
    assert _without_data(before) == _without_data(after)


def test_highlighting_a_study_changes_only_the_data(shipped_con, evidence_of, response) -> None:
    study = response.rows["study_id"].iloc[1]
    evidence = evidence_of(shipped_con)
    plain = evidence.forest_spec("icans_response", None)
    marked = evidence.forest_spec("icans_response", study)
    assert _without_data(plain) == _without_data(marked)
    rows = pa.ipc.open_stream(io.BytesIO(marked["datasets"]["forest"])).read_all().to_pylist()
    assert [r["study_id"] for r in rows if r["highlighted"]] == [study]


def test_spec_sent_to_the_browser_carries_each_dataset_as_arrow_with_the_same_rows(
    response,
) -> None:
    datasets = charts.forest_data(response.forest_records())
    rows = _chart(charts.forest_layout(response.label), datasets)["datasets"]["forest"]
    layout = charts.forest_layout(response.label).to_dict(validate=False)
    sent = vega_spec(layout, datasets)
    table = pa.ipc.open_stream(io.BytesIO(sent["datasets"]["forest"])).read_all()
    back = table.to_pandas()
    assert back["row"].tolist() == [r["row"] for r in rows]
    assert back["events"].tolist() == [r["events"] for r in rows]
    pd.testing.assert_series_equal(
        back["pi_low"], pd.Series([r["pi_low"] for r in rows], dtype=float), check_names=False
    )
    assert _without_data(sent) == layout


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
    spec = _chart(charts.dose_layout("Response", True), charts.dose_data(points, line))
    assert spec["datasets"]["threshold"] == [{"dose": 200}]
    assert len(spec["datasets"]["line"]) == 2
    without_line = _chart(charts.dose_layout("Response", False), charts.dose_data(points, None))
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
    spec = _chart(charts.subgroup_layout("Response"), charts.subgroup_data(records))
    assert spec["datasets"]["subgroups"] == rows
