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


# ---- styles, contrast, the highlight's second cue, narrow charts and the dose axis ----------
def _layouts(style: str) -> dict[str, dict]:
    """Every layout in one style, as the facade builds it."""
    return {
        "forest": charts.forest_layout("Response", style=style).to_dict(validate=True),
        "subgroup": charts.subgroup_layout("Response", style=style).to_dict(validate=True),
        "dose": charts.dose_layout("Response", True, style=style).to_dict(validate=True),
        "ratio": charts.ratio_layout("Any ICANS", style=style).to_dict(validate=True),
    }


def _marks(spec: dict) -> list[dict]:
    """Every layer's mark definition (with its encoding) of a layered spec."""
    found = []
    for layer in spec.get("layer", []):
        mark = layer["mark"] if isinstance(layer["mark"], dict) else {"type": layer["mark"]}
        found.append({**mark, "encoding": layer.get("encoding", {})})
    return found


def _colours(mark: dict) -> list[str]:
    """The colours a mark is drawn in: its own and those its colour encoding can take."""
    found = [mark[key] for key in ("color", "fill", "stroke") if isinstance(mark.get(key), str)]
    for channel in ("color", "fill", "stroke"):
        encoded = mark["encoding"].get(channel, {})
        conditions = encoded.get("condition", [])
        for part in [encoded, *(conditions if isinstance(conditions, list) else [conditions])]:
            if isinstance(part.get("value"), str):
                found.append(part["value"])
    return found


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str = "#FFFFFF") -> float:
    """WCAG 2 contrast ratio of two colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_gives_wcags_figures() -> None:
    assert contrast("#000000") == pytest.approx(21.0)
    assert contrast("#E69F00") == pytest.approx(2.25, abs=0.01)  # Okabe-Ito orange: too pale
    assert contrast("#0072B2") == pytest.approx(5.19, abs=0.01)


@pytest.mark.parametrize("style", sorted(charts.STYLES))
def test_every_mark_that_carries_meaning_keeps_3_to_1_against_the_background(style) -> None:
    """WCAG 1.4.11 (non-text contrast): a projector washes colours out first. A filled band
    under a line (drawn at low opacity, its line drawn in full) is the one exception."""
    for kind, spec in _layouts(style).items():
        for mark in _marks(spec):
            if mark["type"] == "area" or mark.get("opacity") == 0:
                continue
            for colour in _colours(mark):
                assert contrast(colour) >= 3, f"{kind}: {mark['type']} in {colour}"


def test_the_styles_are_the_display_modes() -> None:
    from evidence import vocab

    assert set(charts.STYLES) == set(vocab.DISPLAY_MODES.codes)


def _font_sizes(spec: dict) -> list[tuple[str, float]]:
    """Every font size a layout sets: its config's and any a mark sets itself."""
    config = spec["config"]
    sizes = [
        ("axis labels", config["axis"]["labelFontSize"]),
        ("axis titles", config["axis"]["titleFontSize"]),
        ("legend labels", config["legend"]["labelFontSize"]),
        ("legend titles", config["legend"]["titleFontSize"]),
        ("chart title", config["title"]["fontSize"]),
        ("text on marks", config["text"]["fontSize"]),
    ]
    sizes += [(f"{m['type']} mark", m["fontSize"]) for m in _marks(spec) if "fontSize" in m]
    return sizes


def test_meeting_charts_set_every_text_at_22_px_or_more_and_screen_charts_stay_as_they_were() -> (
    None
):
    for kind, spec in _layouts("meeting").items():
        small = [(what, size) for what, size in _font_sizes(spec) if size < 22]
        assert not small, f"{kind}: {small}"
    for spec in _layouts("screen").values():
        assert dict(_font_sizes(spec))["axis labels"] == 13


def test_the_facade_keys_its_layouts_by_style_and_sends_the_same_rows(
    shipped_con, evidence_of
) -> None:
    evidence = evidence_of(shipped_con)
    screen = evidence.forest_spec("icans_response", None, "screen")
    meeting = evidence.forest_spec("icans_response", None, "meeting")
    assert screen["datasets"] == meeting["datasets"]
    assert screen["config"]["axis"]["labelFontSize"] == 13
    assert meeting["config"]["axis"]["labelFontSize"] >= 22
    assert evidence.forest_spec("icans_response", None) == screen  # no session: the desk's style


vl_convert = pytest.importorskip("vl_convert")


def _svg(spec: dict) -> str:
    from evidence import figures

    return vl_convert.vegalite_to_svg(figures.standalone_spec(spec, []))


def _squares(svg: str) -> dict[str, str]:
    """Each forest marker's SVG element (a study's square, the pooled diamond), by the start of
    its label for screen readers."""
    import re

    markers = re.finditer(r'<path aria-label="([^"]*)"[^>]*aria-roledescription="point"[^>]*>', svg)
    return {match.group(1).split(" - ")[0].split(":")[0]: match.group(0) for match in markers}


def test_a_highlighted_study_is_outlined_not_only_coloured(response) -> None:
    layout = charts.forest_layout(response.label).to_dict(validate=False)
    study = response.rows["study_id"].iloc[1]
    label = response.rows["label"].iloc[1].split(" - ")[0]
    squares = _squares(
        _svg(vega_spec(layout, charts.forest_data(response.forest_records(), study)))
    )
    assert 'stroke-width="0"' not in squares[label]
    assert charts.OKABE_ITO["vermillion"] in squares[label]
    others = [e for name, e in squares.items() if name not in (label, "Pooled estimate")]
    assert others and all('stroke-width="0"' in element for element in others)


def test_each_forest_row_says_its_numbers_in_text_and_in_words(response) -> None:
    rows = charts.forest_data(response.forest_records())["forest"]
    strati = next(r for r in rows if r["row"].startswith("Strati 2020"))
    assert strati["column_text"] == "4/6  66.7% [22.3, 95.7]"
    assert strati["spoken"].endswith("4 of 6 patients, 66.7% (95% CI 22.3% to 95.7%)")
    assert rows[-1]["spoken"].startswith("Pooled estimate: 44 of 62 patients, 71.0%")
    spec = vega_spec(charts.forest_layout(response.label).to_dict(validate=False), {"forest": rows})
    svg = _svg(spec)
    for row in rows:
        assert row["column_text"] in svg  # the text column, drawn
        assert row["spoken"] in svg  # what a screen reader says of the mark
    from evidence import figures

    compiled = vl_convert.vegalite_to_vega(figures.standalone_spec(spec, []))
    assert compiled["description"].startswith("Forest plot of Neurological response")


def test_the_dose_axis_shows_both_sides_of_the_split_and_the_legend_reads_as_patients() -> None:
    """One cohort at 50-200 mg/day: the axis still runs past 200 (ux walkthrough A), and the
    bubble legend shows patient counts to read a bubble against, not 0-6."""
    import re

    points = pd.DataFrame(
        {"study_id": ["Strati2020"], "label": ["Strati 2020"], "events": [4], "total": [6],
         "proportion": [4 / 6], "dose_mg_day_min": [50.0], "dose_mg_day_max": [200.0],
         "dose_mid": [125.0]}
    )  # fmt: skip
    spec = vega_spec(
        charts.dose_layout("Response", False).to_dict(validate=False),
        charts.dose_data(points, None),
    )
    svg = _svg(spec)
    ticks = [float(t) for t in re.findall(r">(\d+)</text>", svg)]
    assert max(ticks) >= 2 * charts.REVIEW_DOSE_SPLIT
    for patients in charts.PATIENT_SIZES:
        assert f">{patients}</text>" in svg
    assert "Strati 2020: 4 of 6 patients (66.7%) at 50-200 mg/day" in svg
