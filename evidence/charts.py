"""Altair chart builders over tidy frames. No Streamlit here: charts are data, pages render them.

Readable on a projector (axis labels 13 px, titles 14 px) and colour-blind safe: the Okabe-Ito
palette (Okabe & Ito 2008, "Color Universal Design"), with shape and weight carrying meaning as
well as colour. A point selection named `pick` on study markers lets a page highlight a clicked
study everywhere and offer to exclude it.

Each chart is a layout (`*_layout`: marks, scales, title) plus its rows (`*_data`: named
datasets). The layout does not depend on the rows, so the dashboard builds it once per outcome
and sends new rows for each slice (evidence.ui.vega).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "black": "#000000",
    "grey": "#7F7F7F",
}
ROW_HEIGHT = 30
REVIEW_DOSE_SPLIT = 200  # mg/day: the review's high- vs low-dose threshold
PICK = "pick"


def _style(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure_axis(labelFontSize=13, titleFontSize=14, labelLimit=380)
        .configure_legend(labelFontSize=13, titleFontSize=13)
        .configure_title(fontSize=15, anchor="start")
        .configure_view(strokeWidth=0)
    )


def _clean(value: object) -> object:
    """A JSON-ready cell: None for missing (a Vega-Lite spec must be valid JSON, no NaN), plain
    Python numbers for numpy ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _records(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[dict]:
    """JSON-ready rows (pandas would turn None back into NaN in a float column)."""
    part = frame if columns is None else frame[list(columns)]
    return [{k: _clean(v) for k, v in row.items()} for row in part.to_dict("records")]


def _named(name: str) -> alt.NamedData:
    """Data by a fixed name, filled from the top-level `datasets`. A fixed name (Altair would
    name it by a hash of the rows) and field-based sorting keep the spec identical when only the
    rows change, so a dashboard redraws the chart by swapping its data instead of rebuilding it."""
    return alt.NamedData(name=name)


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Number the rows so the y axis keeps the frame's order through a `sort` on a field."""
    return frame.assign(order=range(len(frame)))


ORDER = alt.EncodingSortField(field="order", op="min")
# What a forest plot draws and its tooltips show (the frame also carries quotes and locators).
FOREST_COLUMNS = (
    "row_type", "study_id", "events", "total", "proportion", "ci_low", "ci_high", "pi_low",
    "pi_high", "weight",
)  # fmt: skip


def _percent_text(estimate: float | None, low: float | None, high: float | None) -> str:
    """Tooltip text such as "70.8% [56.7%, 81.8%]", or "not estimable" where there is none."""
    if estimate is None or pd.isna(estimate):
        return "not estimable"
    return f"{estimate:.1%} [{low:.1%}, {high:.1%}]"


def _percent_axis(title: str, domain: Sequence[float] = (0, 1)) -> alt.X:
    return alt.X(
        "x:Q",
        title=title,
        scale=alt.Scale(domain=list(domain), clamp=True),
        axis=alt.Axis(format="%", tickCount=6),
    )


def forest_data(
    records: Sequence[Mapping[str, object]], highlight: str | None = None
) -> dict[str, list[dict]]:
    """The forest plot's rows (from OutcomeAnalysis.forest_records): what its marks draw and its
    tooltips show."""
    rows = []
    for order, source in enumerate(records):
        row = {column: _clean(source[column]) for column in FOREST_COLUMNS}
        is_study = row["row_type"] == "study"
        row |= {
            "x": row["proportion"],
            "row": source["label"] if is_study else "Pooled estimate",
            "counts": f"{int(row['events'])}/{int(row['total'])}",
            "estimate_text": _percent_text(row["proportion"], row["ci_low"], row["ci_high"]),
            "highlighted": highlight is not None and row["study_id"] == highlight,
            "order": order,
        }
        rows.append(row)
    return {"forest": rows}


def forest_layout(title: str, x_title: str = "Proportion") -> alt.TopLevelMixin:
    """Everything of the forest plot but its rows (the same for every slice of one outcome)."""
    y = alt.Y("row:N", sort=ORDER, title=None)
    tooltip = [
        alt.Tooltip("row:N", title="Study"),
        alt.Tooltip("total:Q", title="n"),
        alt.Tooltip("events:Q", title="Events"),
        alt.Tooltip("estimate_text:N", title="Estimate [95% CI]"),
        alt.Tooltip("weight:Q", title="Weight (%)", format=".1f"),
    ]
    base = alt.Chart(_named("forest")).encode(y=y)
    studies = base.transform_filter(alt.datum.row_type == "study")
    pooled = base.transform_filter(alt.datum.row_type == "pooled")
    pick = alt.selection_point(name=PICK, fields=["study_id"], on="click")
    colour = alt.condition(
        alt.datum.highlighted, alt.value(OKABE_ITO["vermillion"]), alt.value(OKABE_ITO["blue"])
    )
    ci = (
        studies.mark_rule(strokeWidth=2)
        .encode(x=_percent_axis(x_title), x2="ci_high:Q", color=colour, tooltip=tooltip)
        .transform_calculate(x="datum.ci_low")
    )
    points = (
        studies.mark_square(opacity=0.9)
        .encode(
            x="proportion:Q",
            size=alt.Size("weight:Q", scale=alt.Scale(range=[40, 400]), legend=None),
            color=colour,
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    pi = pooled.mark_rule(strokeDash=[4, 3], strokeWidth=1.5, color=OKABE_ITO["black"]).encode(
        x="pi_low:Q", x2="pi_high:Q", tooltip=tooltip
    )
    pooled_ci = pooled.mark_rule(strokeWidth=6, color=OKABE_ITO["orange"]).encode(
        x="ci_low:Q", x2="ci_high:Q", tooltip=tooltip
    )
    counts = studies.mark_text(align="left", dx=8, fontSize=12, color=OKABE_ITO["black"]).encode(
        x="ci_high:Q", text="counts:N"
    )
    diamond = pooled.mark_point(
        shape="diamond", size=260, filled=True, color=OKABE_ITO["black"]
    ).encode(x="proportion:Q", tooltip=tooltip)
    chart = alt.layer(ci, points, counts, pi, pooled_ci, diamond).properties(
        title=title, height=alt.Step(ROW_HEIGHT), width="container", padding={"right": 48}
    )
    return _style(chart)


def subgroup_data(records: Sequence[Mapping[str, object]]) -> dict[str, list[dict]]:
    """The subgroup chart's rows (from analysis.subgroup_records), in plain Python like
    `forest_data`."""
    rows = []
    for order, source in enumerate(records):
        row = {column: _clean(value) for column, value in source.items()}
        row |= {
            "order": order,
            "x": row["ci_low"],
            "row": f"{row['subgroup']}  (k = {row['k']})",
            "estimate_text": _percent_text(row["estimate"], row["ci_low"], row["ci_high"]),
        }
        rows.append(row)
    return {"subgroups": rows}


def subgroup_layout(title: str) -> alt.TopLevelMixin:
    tooltip = [
        alt.Tooltip("row:N", title="Subgroup"),
        alt.Tooltip("estimate_text:N", title="Pooled [95% CI]"),
    ]
    base = alt.Chart(_named("subgroups")).encode(y=alt.Y("row:N", sort=ORDER, title=None))
    ci = base.mark_rule(strokeWidth=4, color=OKABE_ITO["sky"]).encode(
        x=_percent_axis("Pooled proportion"), x2="ci_high:Q", tooltip=tooltip
    )
    point = base.mark_point(shape="diamond", size=220, filled=True, color=OKABE_ITO["blue"]).encode(
        x="estimate:Q", tooltip=tooltip
    )
    chart = alt.layer(ci, point).properties(
        title=title, height=alt.Step(ROW_HEIGHT), width="container"
    )
    return _style(chart)


def dose_data(
    points: pd.DataFrame, line: pd.DataFrame | None, highlight: str | None = None
) -> dict[str, list[dict]]:
    data = points.copy()
    data["highlighted"] = data["study_id"].eq(highlight) if highlight else False
    data["estimate_text"] = [
        f"{e}/{t} ({e / t:.1%})" for e, t in zip(data["events"], data["total"], strict=True)
    ]
    datasets = {"points": _records(data), "threshold": [{"dose": REVIEW_DOSE_SPLIT}]}
    if line is not None and not line.empty:
        datasets["line"] = _records(line)
    return datasets


def dose_layout(title: str, with_line: bool) -> alt.TopLevelMixin:
    tooltip = [
        alt.Tooltip("label:N", title="Study"),
        alt.Tooltip("total:Q", title="n"),
        alt.Tooltip("estimate_text:N", title="Events"),
        alt.Tooltip("dose_mg_day_min:Q", title="Dose from (mg/day)"),
        alt.Tooltip("dose_mg_day_max:Q", title="Dose to (mg/day)"),
    ]
    x = alt.X("dose_mid:Q", title="Anakinra dose (mg/day, midpoint of reported range)")
    y = alt.Y(
        "proportion:Q",
        title="Proportion",
        axis=alt.Axis(format="%"),
        scale=alt.Scale(domain=[0, 1]),
    )
    colour = alt.condition(
        alt.datum.highlighted, alt.value(OKABE_ITO["vermillion"]), alt.value(OKABE_ITO["blue"])
    )
    pick = alt.selection_point(name=PICK, fields=["study_id"], on="click")
    ranges = (
        alt.Chart(_named("points"))
        .mark_rule(strokeWidth=2, opacity=0.5)
        .encode(x="dose_mg_day_min:Q", x2="dose_mg_day_max:Q", y=y, color=colour, tooltip=tooltip)
    )
    bubbles = (
        alt.Chart(_named("points"))
        .mark_circle(opacity=0.75, stroke="black", strokeWidth=0.5)
        .encode(
            x=x,
            y=y,
            size=alt.Size("total:Q", title="Patients", scale=alt.Scale(range=[60, 1200])),
            color=colour,
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    threshold = (
        alt.Chart(_named("threshold"))
        .mark_rule(strokeDash=[6, 4], color=OKABE_ITO["grey"])
        .encode(x="dose:Q")
    )
    layers = [threshold, ranges, bubbles]
    if with_line:
        band = (
            alt.Chart(_named("line"))
            .mark_area(opacity=0.2, color=OKABE_ITO["orange"])
            .encode(x="x:Q", y="ci_low:Q", y2="ci_high:Q")
        )
        fit = (
            alt.Chart(_named("line"))
            .mark_line(color=OKABE_ITO["orange"], strokeWidth=3)
            .encode(x="x:Q", y="estimate:Q")
        )
        layers = [band, fit, *layers]
    chart = alt.layer(*layers).properties(title=title, height=380, width="container")
    return _style(chart)


def ratio_data(frame: pd.DataFrame) -> dict[str, list[dict]]:
    data = _in_order(frame.dropna(subset=["ratio"]))
    data["text"] = [
        f"{r:.2f} [{lo:.2f}, {hi:.2f}]"
        for r, lo, hi in zip(data["ratio"], data["ci_low"], data["ci_high"], strict=True)
    ]
    return {"ratios": _records(data), "no_effect": [{"one": 1.0}]}


def ratio_layout(title: str, measure: str = "RR") -> alt.TopLevelMixin:
    y = alt.Y("label:N", sort=ORDER, title=None)
    x = alt.X("ci_low:Q", title=f"{measure} (log scale)", scale=alt.Scale(type="log"))
    tooltip = [alt.Tooltip("label:N"), alt.Tooltip("text:N", title=f"{measure} [95% CI]")]
    base = alt.Chart(_named("ratios")).encode(y=y)
    rules = base.mark_rule(strokeWidth=2, color=OKABE_ITO["blue"]).encode(
        x=x, x2="ci_high:Q", tooltip=tooltip
    )
    marks = base.mark_point(filled=True, size=120, color=OKABE_ITO["black"]).encode(
        x="ratio:Q", shape=alt.Shape("row_type:N", legend=None), tooltip=tooltip
    )
    one = alt.Chart(_named("no_effect")).mark_rule(color=OKABE_ITO["grey"]).encode(x="one:Q")
    chart = alt.layer(one, rules, marks).properties(
        title=title, height=alt.Step(ROW_HEIGHT), width="container"
    )
    return _style(chart)


# ---- a large evidence base: summaries instead of one row per study --------------------------
# (analysis.LARGE_FOREST_STUDIES says when the dashboard draws these instead of a forest plot)
HISTOGRAM_BINS = 40
FUNNEL_BINS = (40, 25)  # estimate x standard error cells of the binned funnel plot


def summary_forest_data(
    pooled: Mapping[str, object], records: Sequence[Mapping[str, object]]
) -> dict[str, list[dict]]:
    """A forest plot of subgroups with the pooled row pinned first: `pooled` has estimate,
    ci_low, ci_high, pi_low, pi_high and k; `records` are analysis.subgroup_records."""
    first = {column: _clean(value) for column, value in pooled.items()}
    rows = [
        first
        | {
            "row": f"All studies, pooled  (k = {first['k']:,})",
            "row_type": "pooled",
            "order": 0,
            "estimate_text": _percent_text(first["estimate"], first["ci_low"], first["ci_high"]),
        }
    ]
    for order, source in enumerate(records, start=1):
        row = {column: _clean(value) for column, value in source.items()}
        rows.append(
            row
            | {
                "row": f"{row['subgroup']}  (k = {row['k']:,})",
                "row_type": "subgroup",
                "order": order,
                "estimate_text": _percent_text(row["estimate"], row["ci_low"], row["ci_high"]),
            }
        )
    return {"summary": rows}


def summary_forest_layout(title: str) -> alt.TopLevelMixin:
    """Pooled row (diamond, CI and dashed prediction interval) above one row per subgroup."""
    tooltip = [
        alt.Tooltip("row:N", title="Studies"),
        alt.Tooltip("estimate_text:N", title="Pooled [95% CI]"),
    ]
    base = alt.Chart(_named("summary")).encode(y=alt.Y("row:N", sort=ORDER, title=None))
    pooled = base.transform_filter(alt.datum.row_type == "pooled")
    pi = pooled.mark_rule(strokeDash=[4, 3], strokeWidth=1.5, color=OKABE_ITO["black"]).encode(
        x=_percent_axis("Pooled proportion"), x2="pi_high:Q"
    )
    pi = pi.transform_calculate(x="datum.pi_low")
    ci = base.mark_rule(strokeWidth=5).encode(
        x="ci_low:Q",
        x2="ci_high:Q",
        color=alt.condition(
            alt.datum.row_type == "pooled",
            alt.value(OKABE_ITO["orange"]),
            alt.value(OKABE_ITO["sky"]),
        ),
        tooltip=tooltip,
    )
    point = base.mark_point(shape="diamond", filled=True, size=220).encode(
        x="estimate:Q",
        color=alt.condition(
            alt.datum.row_type == "pooled",
            alt.value(OKABE_ITO["black"]),
            alt.value(OKABE_ITO["blue"]),
        ),
        tooltip=tooltip,
    )
    chart = alt.layer(pi, ci, point).properties(
        title=title, height=alt.Step(ROW_HEIGHT), width="container"
    )
    return _style(chart)


def distribution_data(
    proportions: Sequence[float] | object, pooled: Mapping[str, object]
) -> dict[str, list[dict]]:
    """Study proportions counted in `HISTOGRAM_BINS` equal bins of 0-100% (binned here, so the
    chart carries 40 rows whatever the number of studies), with the pooled estimate and its
    prediction interval."""
    values = np.asarray(proportions, dtype=float)
    counts, edges = np.histogram(values[np.isfinite(values)], bins=HISTOGRAM_BINS, range=(0, 1))
    bins = [
        {"low": float(lo), "high": float(hi), "studies": int(c)}
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    marker = {column: _clean(value) for column, value in pooled.items()}
    return {"bins": bins, "pooled": [marker]}


def distribution_layout(title: str) -> alt.TopLevelMixin:
    """Histogram of the studies' own proportions; the pooled estimate (line) and its 95%
    prediction interval (band), where a new study's true proportion is expected to lie."""
    band = (
        alt.Chart(_named("pooled"))
        .mark_rect(opacity=0.15, color=OKABE_ITO["orange"])
        .encode(x=_percent_axis("Study proportion"), x2="pi_high:Q")
        .transform_calculate(x="datum.pi_low")
    )
    bars = (
        alt.Chart(_named("bins"))
        .mark_rect(color=OKABE_ITO["blue"], opacity=0.85)
        .encode(
            x="low:Q",
            x2="high:Q",
            y=alt.Y("studies:Q", title="Studies"),
            y2=alt.datum(0),
            tooltip=[
                alt.Tooltip("low:Q", title="From", format=".1%"),
                alt.Tooltip("high:Q", title="To", format=".1%"),
                alt.Tooltip("studies:Q", title="Studies"),
            ],
        )
    )
    line = (
        alt.Chart(_named("pooled"))
        .mark_rule(color=OKABE_ITO["black"], strokeWidth=2)
        .encode(x="estimate:Q")
    )
    chart = alt.layer(band, bars, line).properties(title=title, height=240, width="container")
    return _style(chart)


def funnel_data(
    yi: Sequence[float] | object, se: Sequence[float] | object, estimate: float
) -> dict[str, list[dict]]:
    """A funnel plot binned into `FUNNEL_BINS` cells (studies per cell), so its size does not
    grow with the number of studies, and the pseudo 95% limits estimate ± 1.96 SE (Sterne &
    Egger 2001, J Clin Epidemiol 54:1046)."""
    y, s = np.asarray(yi, dtype=float), np.asarray(se, dtype=float)
    keep = np.isfinite(y) & np.isfinite(s)
    y, s = y[keep], s[keep]
    if y.size == 0:
        return {"cells": [], "limits": []}
    top = float(s.max()) * 1.02
    half = max(float(np.abs(y - estimate).max()), 1.96 * top) * 1.02
    counts, xe, ye = np.histogram2d(
        y, s, bins=FUNNEL_BINS, range=((estimate - half, estimate + half), (0, top))
    )
    cells = [
        {"x": float(xe[i]), "x2": float(xe[i + 1]), "se": float(ye[j]), "se2": float(ye[j + 1]),
         "studies": int(counts[i, j])}
        for i, j in zip(*np.nonzero(counts), strict=True)
    ]  # fmt: skip
    grid = np.linspace(0, top, 30)
    limits = [
        {"se": float(v), "low": estimate - 1.96 * float(v), "high": estimate + 1.96 * float(v),
         "estimate": estimate}
        for v in grid
    ]  # fmt: skip
    return {"cells": cells, "limits": limits}


def funnel_layout(title: str, x_title: str) -> alt.TopLevelMixin:
    """Estimate (model scale) against its standard error, most precise studies at the top."""
    y = alt.Y("se:Q", title="Standard error", scale=alt.Scale(reverse=True))
    cells = (
        alt.Chart(_named("cells"))
        .mark_rect()
        .encode(
            x=alt.X("x:Q", title=x_title),
            x2="x2:Q",
            y=y,
            y2="se2:Q",
            color=alt.Color(
                "studies:Q", title="Studies", scale=alt.Scale(scheme="blues", type="log")
            ),
            tooltip=[alt.Tooltip("studies:Q", title="Studies")],
        )
    )
    base = alt.Chart(_named("limits")).encode(y=y)
    low = base.mark_line(strokeDash=[4, 3], color=OKABE_ITO["black"]).encode(x="low:Q")
    high = base.mark_line(strokeDash=[4, 3], color=OKABE_ITO["black"]).encode(x="high:Q")
    centre = base.mark_line(color=OKABE_ITO["orange"], strokeWidth=2).encode(x="estimate:Q")
    chart = alt.layer(cells, low, high, centre).properties(
        title=title, height=300, width="container"
    )
    return _style(chart)
