"""Chart files: an exported forest plot shows the rows the page showed, with the slice, the
pooled numbers and the data version under its title, as SVG and as a PNG sharp enough to print."""

from __future__ import annotations

import io

import duckdb
import pytest

from evidence import analysis, charts, figures
from evidence.meta.comparisons import compare_groups
from evidence.ui.vega import vega_spec

pytest.importorskip("vl_convert")

NOTES = ["Treatment of ICANS: 3 studies, 62 patients", "**71.0%** (95% CI 58.6%–80.9%)"]


@pytest.fixture(scope="module")
def shown_spec(shipped_con: duckdb.DuckDBPyConnection, evidence_of) -> tuple[dict, dict]:
    """The Treatment page's forest plot as the page sends it, with Strati 2020 highlighted."""
    evidence = evidence_of(shipped_con)
    result = evidence.outcome("icans_response")
    rows = charts.forest_data(result.forest_records(), highlight="Strati2020")
    return evidence.forest_spec("icans_response", "Strati2020"), rows


def test_standalone_spec_carries_the_same_rows_the_page_was_sent(shown_spec) -> None:
    spec, rows = shown_spec
    standalone = figures.standalone_spec(spec, NOTES)
    assert standalone["datasets"] == rows
    assert isinstance(spec["datasets"]["forest"], bytes)  # the page's spec is left as it was
    assert standalone["width"] == figures.EXPORT_WIDTH  # "container" has no width in a file
    assert standalone["title"] == {"text": "Neurological response / improvement", "subtitle": NOTES}


def test_export_notes_are_plain_text_ending_with_the_data_version() -> None:
    lines = figures.export_notes([*NOTES, ""], "the shipped extraction", "shipped:0123456789abcdef")
    assert lines[1] == "71.0% (95% CI 58.6%–80.9%)"  # markdown emphasis removed
    assert len(lines) == 3
    assert "data: the shipped extraction (shipped:0123456789abcdef)" in lines[-1]


def test_svg_shows_every_study_the_highlight_and_the_notes(shown_spec) -> None:
    spec, rows = shown_spec
    notes = figures.export_notes(NOTES, "the shipped extraction", "shipped:0123456789abcdef")
    svg = figures.chart_file(spec, notes, "svg").decode("utf-8")
    assert svg.startswith("<svg")
    for row in rows["forest"]:
        assert row["row"] in svg
    for note in notes:
        assert note in svg
    assert charts.OKABE_ITO["vermillion"] in svg  # Strati 2020 drawn highlighted, as on screen


def test_png_is_a_white_image_twice_the_export_width(shown_spec) -> None:
    """White, not transparent: a transparent chart vanishes on a dark slide."""
    from PIL import Image

    spec, _ = shown_spec
    png = figures.chart_file(spec, NOTES, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    width, height = image.size
    assert width >= figures.PNG_SCALE * figures.EXPORT_WIDTH
    assert height > 200
    corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
    assert {image.getpixel(corner) for corner in corners} == {(255, 255, 255, 255)}


@pytest.fixture(scope="module")
def other_specs(shipped_con: duckdb.DuckDBPyConnection, evidence_of) -> dict[str, dict]:
    """The dashboard's other three charts: two as its facade builds them, the ratio chart from
    made-up counts."""
    evidence = evidence_of(shipped_con)
    response = evidence.outcome("icans_response")
    # No shipped study gives counts on both sides yet: two made-up cohorts, chart input only.
    comparison = compare_groups(
        [3, 5], [20, 30], [9, 11], [21, 28], measure="RR", labels=["A", "B"]
    )
    points = analysis.dose_points(response.rows)
    return {
        "subgroup": evidence.subgroup_spec("icans_response", "product"),
        "dose": vega_spec(
            charts.dose_layout(response.label, False).to_dict(validate=False),
            charts.dose_data(points, None, None),
        ),
        "ratio": vega_spec(
            charts.ratio_layout("Any ICANS: risk ratio").to_dict(validate=False),
            charts.ratio_data(comparison.to_frame()),
        ),
    }


# Text each chart draws only from its rows: a subgroup's label, the bubble-size legend, a cohort.
@pytest.mark.parametrize(
    ("kind", "drawn_from_rows"),
    [("subgroup", "axi-cel  (k = 1)"), ("dose", "Patients"), ("ratio", "B")],
)
def test_every_chart_kind_exports_with_its_notes(
    other_specs: dict, kind: str, drawn_from_rows: str
) -> None:
    """The download under each of the dashboard's charts renders (not only the forest plot)."""
    svg = figures.chart_file(other_specs[kind], NOTES[:1], "svg").decode("utf-8")
    assert NOTES[0] in svg
    assert f">{drawn_from_rows}<" in svg
    assert figures.chart_file(other_specs[kind], NOTES[:1], "png")[:4] == b"\x89PNG"
