"""Charts as files for a guideline document: SVG and PNG of exactly the chart a page shows.

A panel pastes forest plots into its evidence profiles, where the picture travels without the
dashboard around it. So an exported chart carries, under its title, the lines that make it
traceable on its own: the slice in words, the pooled numbers and method, and the data version.

The input is the spec the page sent to the browser (`evidence.ui.vega.vega_spec`): its rows are
decoded from the Arrow bytes it carries, so the file shows the same rows, highlight included, as
the screen. Rendering is vl-convert's (the Vega-Lite and Vega JavaScript libraries in an
embedded engine, no browser needed); it is imported on the first export, because it is large and
a page that nobody exports from should not pay for it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Literal

import pandas as pd
import pyarrow as pa

_MARKDOWN_ESCAPE = re.compile(r"\\(.)")
EXPORT_WIDTH = 900  # px: the charts are drawn as wide as their container on screen
PNG_SCALE = 2  # a PNG at twice the size stays sharp on a slide or in print
# The charts' own title style (charts._style) plus the notes' lines under it.
TITLE_STYLE = {"fontSize": 15, "anchor": "start", "subtitleFontSize": 12, "subtitleColor": "#333"}
Format = Literal["svg", "png"]
MIME = {"svg": "image/svg+xml", "png": "image/png"}


def rows_from_arrow(data: bytes) -> list[dict]:
    """The records an Arrow IPC stream holds (the inverse of evidence.ui.vega.arrow_bytes)."""
    return pa.ipc.open_stream(data).read_all().to_pylist()


# Each chart's rows as a table a person reads (the chart's text alternative): for each dataset a
# chart draws from, the fields shown and their headers.
TABLES = {
    "forest": {
        "row": "Study",
        "counts": "Events / patients",
        "estimate_text": "Proportion [95% CI]",
        "interval_text": "Prediction interval",
        "weight": "Weight (%)",
    },
    "subgroups": {
        "row": "Subgroup",
        "patients": "Patients",
        "estimate_text": "Pooled proportion [95% CI]",
    },
    "points": {
        "label": "Cohort",
        "dose_text": "Dose (mg/day)",
        "estimate_text": "Events / patients (proportion)",
    },
    "ratios": {"label": "Study", "text": "Risk ratio [95% CI]"},
}


def chart_table(spec: dict) -> pd.DataFrame:
    """The rows a chart draws, as a table with headers in words (empty when the chart draws
    none of the datasets in `TABLES`)."""
    for name, columns in TABLES.items():
        rows = spec.get("datasets", {}).get(name)
        if rows is None:
            continue
        records = rows_from_arrow(rows) if isinstance(rows, bytes) else rows
        frame = pd.DataFrame(records, columns=list(columns)).rename(columns=columns)
        if "Weight (%)" in frame:
            frame["Weight (%)"] = frame["Weight (%)"].map(
                lambda w: "" if pd.isna(w) else f"{w:.1f}"
            )
        return frame
    return pd.DataFrame()


def standalone_spec(spec: dict, notes: Sequence[str], width: int = EXPORT_WIDTH) -> dict:
    """`spec` with its rows inline as JSON, a fixed width and `notes` under the title.

    Arrow bytes are how Streamlit's frontend takes rows; a file renderer needs JSON values. A
    chart as wide as its container has no width outside a page, so it gets `width` pixels.
    """
    datasets = {
        name: rows_from_arrow(rows) if isinstance(rows, bytes) else rows
        for name, rows in spec.get("datasets", {}).items()
    }
    title = spec.get("title", "")
    text = title.get("text", "") if isinstance(title, dict) else title
    exported = {
        **spec,
        "datasets": datasets,
        "title": {"text": text, "subtitle": list(notes)},
        "background": "white",  # a transparent PNG vanishes on a dark slide
        "config": {**spec.get("config", {}), "title": TITLE_STYLE},
    }
    if spec.get("width") == "container":
        exported["width"] = width
    return exported


def export_notes(lines: Sequence[str], data_label: str, data_key: str) -> list[str]:
    """The lines under an exported chart's title: what the page says about the chart (Markdown
    emphasis and escapes removed: a file shows text), then where the numbers come from and when
    the file was made."""
    plain = [
        _MARKDOWN_ESCAPE.sub(r"\1", line.replace("**", "")).replace("\u200b", "")
        for line in lines
        if line
    ]
    source = (
        f"Anakinra-for-ICANS evidence dashboard · data: {data_label} ({data_key[:24]}) · "
        f"exported {dt.date.today().isoformat()}"
    )
    return [*plain, source]


def chart_file(spec: dict, notes: Sequence[str], kind: Format) -> bytes:
    """The chart of `spec` as an SVG or PNG file's bytes."""
    import vl_convert  # a ~40 MB native module: loaded on the first export, not at start

    standalone = standalone_spec(spec, notes)
    if kind == "svg":
        return vl_convert.vegalite_to_svg(standalone).encode("utf-8")
    return vl_convert.vegalite_to_png(standalone, scale=PNG_SCALE)
