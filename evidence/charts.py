"""Altair chart builders over tidy frames. No Streamlit here: charts are data, pages render them.

Two styles of the same layouts (`STYLES`): "screen" for a desk (axis labels 13 px, titles 14 px)
and "meeting" for a projector at 1920x1080 (axis labels and text on marks 22 px, titles 24-28 px).
Colour-blind safe and readable on either: the Okabe-Ito palette (Okabe & Ito 2008, "Color
Universal Design") without its orange and sky blue, which fall under 3:1 against white, and with
shape and weight carrying meaning as well as colour (a highlighted study is also outlined and
drawn heavier). A point selection named `pick` on study markers lets a page highlight a clicked
study everywhere and offer to exclude it.

Every chart states what it shows to a screen reader (the spec's `description`) and each mark
says its numbers in words (the `description` channel); marks that repeat them are left out of
the accessibility tree (`aria=False`).

The forest plot stays readable on a phone: its study labels wrap at " - " and are cut with an
ellipsis, never squeezing the axis, and each row's "events/n  estimate [95% CI]" is a text
column right of the plot, or, where the chart is too narrow for that column (`narrow_below`), a
line above the row's interval.

Each chart is a layout (`*_layout`: marks, scales, title) plus its rows (`*_data`: named
datasets). The layout does not depend on the rows, so the dashboard builds it once per outcome
and style and sends new rows for each slice (evidence.ui.vega).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
# The colours charts draw with: each at least 3:1 against white (WCAG 1.4.11), so a projector's
# washed-out picture keeps them. Orange (2.2:1) and sky blue (2.3:1) are not among them.
MARK_COLOURS = ("blue", "vermillion", "green", "black", "grey")
REVIEW_DOSE_SPLIT = 200  # mg/day: the review's high- vs low-dose threshold
PICK = "pick"


@dataclass(frozen=True)
class ChartStyle:
    """Type sizes (px) and spacing of the layouts in one style."""

    label: int  # axis and legend labels, text on marks
    title: int  # axis and legend titles
    heading: int  # the chart's title
    row: int  # a forest row: two lines of label
    label_limit: int  # the widest line of a study label (px); cut with an ellipsis beyond
    narrow_label_limit: int  # the same on a narrow chart (a phone)
    narrow_below: int  # a chart narrower than this (px) puts its numbers above each row
    scale: float  # mark sizes (squares, diamonds, bubbles) and stroke widths


STYLES = {
    "screen": ChartStyle(
        label=13, title=14, heading=15, row=40, label_limit=240, narrow_label_limit=110,
        narrow_below=700, scale=1.0,
    ),
    "meeting": ChartStyle(
        label=22, title=24, heading=28, row=66, label_limit=420, narrow_label_limit=200,
        narrow_below=1160, scale=2.0,
    ),
}  # fmt: skip
ROW_HEIGHT = STYLES["screen"].row


def _style(chart: alt.TopLevelMixin, style: str = "screen") -> alt.TopLevelMixin:
    sizes = STYLES[style]
    return (
        chart.configure_axis(
            labelFontSize=sizes.label, titleFontSize=sizes.title, labelLimit=sizes.label_limit
        )
        .configure_legend(labelFontSize=sizes.label, titleFontSize=sizes.title)
        .configure_title(fontSize=sizes.heading, anchor="start")
        .configure_text(fontSize=sizes.label)
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


def _column_text(counts: str, estimate: float | None, low: float | None, high: float | None) -> str:
    """A forest row's numbers as its text column shows them: "31/42  73.8% [58.0, 86.1]"."""
    if estimate is None or pd.isna(estimate):
        return f"{counts}  not estimable"
    return f"{counts}  {estimate:.1%} [{100 * low:.1f}, {100 * high:.1f}]"


def _spoken(estimate: float | None, low: float | None, high: float | None) -> str:
    """An estimate as a screen reader says it: "73.8% (95% CI 58.0% to 86.1%)"."""
    if estimate is None or pd.isna(estimate):
        return "not estimable"
    return f"{estimate:.1%} (95% CI {low:.1%} to {high:.1%})"


def _percent_axis(
    title: str, domain: Sequence[float] = (0, 1), ticks: int | alt.ExprRef = 6
) -> alt.X:
    return alt.X(
        "x:Q",
        title=title,
        scale=alt.Scale(domain=list(domain), clamp=True),
        axis=alt.Axis(format="%", tickCount=ticks),
    )


def forest_data(
    records: Sequence[Mapping[str, object]], highlight: str | None = None
) -> dict[str, list[dict]]:
    """The forest plot's rows (from OutcomeAnalysis.forest_records): what its marks draw, its
    text column and tooltips show and a screen reader says."""
    rows = []
    for order, source in enumerate(records):
        row = {column: _clean(source[column]) for column in FOREST_COLUMNS}
        is_study = row["row_type"] == "study"
        label = source["label"] if is_study else "Pooled estimate"
        counts = f"{int(row['events'])}/{int(row['total'])}"
        estimate = (row["proportion"], row["ci_low"], row["ci_high"])
        spoken = f"{label}: {row['events']} of {row['total']} patients, {_spoken(*estimate)}"
        interval = ""
        if not is_study and row["pi_low"] is not None:
            spoken += f", prediction interval {row['pi_low']:.1%} to {row['pi_high']:.1%}"
            interval = f"{row['pi_low']:.1%} to {row['pi_high']:.1%}"
        row |= {
            "x": row["proportion"],
            "row": label,
            "counts": counts,
            "estimate_text": _percent_text(*estimate),
            "column_text": _column_text(counts, *estimate),
            "spoken": spoken,
            "interval_text": interval,
            "highlighted": highlight is not None and row["study_id"] == highlight,
            "order": order,
        }
        rows.append(row)
    return {"forest": rows}


def _narrow(style: ChartStyle) -> alt.Parameter:
    """True while the chart is too narrow for a column of numbers beside the plot (a phone).
    It reads the container's width, not the plot's (which the layout it switches changes), and
    is False where there is no container (an exported file)."""
    return alt.param(
        name="narrow",
        expr=(
            "width > -1 && isFinite(containerSize()[0]) && containerSize()[0] > 0 "
            f"&& containerSize()[0] < {style.narrow_below}"
        ),
    )


# A study label "Author year - cohort" on two lines, split at its first " - ".
_TWO_LINES = (
    "indexof(datum.label, ' - ') > 0 ? [substring(datum.label, 0, indexof(datum.label, ' - ')), "
    "substring(datum.label, indexof(datum.label, ' - ') + 3)] : datum.label"
)


def _row_axis(sizes: ChartStyle, bold: str | None = None) -> alt.Axis:
    """The y axis of a chart with one row per study or group: labels on up to two lines, cut
    with an ellipsis (shorter on a narrow chart) instead of squeezing the plot; `bold` is the
    label of a row set in bold (the pooled row)."""
    weight = (
        {"condition": {"test": f"datum.label == '{bold}'", "value": "bold"}, "value": "normal"}
        if bold
        else "normal"
    )
    return alt.Axis(
        labelExpr=_TWO_LINES,
        labelLimit=alt.ExprRef(f"narrow ? {sizes.narrow_label_limit} : {sizes.label_limit}"),
        labelFontWeight=weight,
        labelPadding=6 * sizes.scale,
    )


def _numbers(base: alt.Chart, field: str, sizes: ChartStyle, bold: str = "false") -> alt.Chart:
    """Each row's numbers as text: a column right of the plot, or, on a narrow chart, a line
    above the row's interval. `bold` is a Vega expression on the row (`datum`)."""
    return base.mark_text(
        align="left",
        baseline="middle",
        color=OKABE_ITO["black"],
        dx=alt.ExprRef(f"narrow ? 0 : {8 * sizes.scale}"),
        dy=alt.ExprRef(f"narrow ? {-0.4 * sizes.row} : 0"),
        fontWeight=alt.ExprRef(f"{bold} ? 'bold' : 'normal'"),
        aria=False,  # the marks it stands beside say the same numbers
    ).encode(x=alt.value(alt.ExprRef("narrow ? 0 : width")), text=f"{field}:N")


def _rows_chart(
    layers: Sequence[alt.Chart], title: str, description: str, sizes: ChartStyle
) -> alt.LayerChart:
    """A chart of one row per study or group. Its width fits the container with everything
    drawn, so the plot leaves room on its right for the column of numbers (none on a narrow
    chart, where they stand above each row)."""
    return (
        alt.layer(*layers)
        .add_params(_narrow(sizes))
        .properties(
            title=title, description=description, height=alt.Step(sizes.row), width="container"
        )
    )


def forest_layout(
    title: str, x_title: str = "Proportion", style: str = "screen"
) -> alt.TopLevelMixin:
    """Everything of the forest plot but its rows (the same for every slice of one outcome)."""
    sizes = STYLES[style]
    y = alt.Y("row:N", sort=ORDER, title=None, axis=_row_axis(sizes, bold="Pooled estimate"))
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
    # The highlight is told by weight and outline too, never by colour alone.
    line = 2 * sizes.scale
    ci = (
        studies.mark_rule(aria=False)  # the square beside it says the interval
        .encode(
            x=_percent_axis(x_title, ticks=alt.ExprRef("narrow ? 3 : 6")),
            x2="ci_high:Q",
            color=colour,
            strokeWidth=alt.condition(alt.datum.highlighted, alt.value(2 * line), alt.value(line)),
            tooltip=tooltip,
        )
        .transform_calculate(x="datum.ci_low")
    )
    area = sizes.scale**2
    is_pooled = "datum.row_type == 'pooled'"
    # Studies (squares sized by weight) and the pooled estimate (a diamond) in one layer, which
    # is never empty: a screen reader finds every row's numbers in it, and one study (no pooled
    # row) leaves no empty group that says nothing.
    markers = (
        base.mark_point(filled=True, opacity=0.9, stroke=OKABE_ITO["black"])
        .encode(
            x="proportion:Q",
            shape={"condition": {"test": is_pooled, "value": "diamond"}, "value": "square"},
            size={
                "condition": {"test": is_pooled, "value": 260 * area},
                "field": "weight",
                "type": "quantitative",
                "scale": {"range": [40 * area, 300 * area]},
                "legend": None,
            },
            color={
                "condition": [
                    {"test": is_pooled, "value": OKABE_ITO["black"]},
                    {"test": "datum.highlighted", "value": OKABE_ITO["vermillion"]},
                ],
                "value": OKABE_ITO["blue"],
            },
            strokeWidth=alt.condition(alt.datum.highlighted, alt.value(line), alt.value(0)),
            description=alt.Description("spoken:N"),
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    pi = pooled.mark_rule(
        strokeDash=[4 * sizes.scale, 3 * sizes.scale],
        strokeWidth=0.75 * line,
        color=OKABE_ITO["black"],
        aria=False,  # the diamond says the intervals
    ).encode(x="pi_low:Q", x2="pi_high:Q", tooltip=tooltip)
    pooled_ci = pooled.mark_rule(strokeWidth=3 * line, color=OKABE_ITO["green"], aria=False).encode(
        x="ci_low:Q", x2="ci_high:Q", tooltip=tooltip
    )
    numbers = _numbers(
        base, "column_text", sizes, "datum.highlighted || datum.row_type == 'pooled'"
    )
    description = (
        f"Forest plot of {title}: for each study the proportion of patients (a square, larger "
        "for more weight) with its 95% confidence interval (a line), and the pooled estimate (a "
        "diamond) with its confidence interval (a thick line) and prediction interval (a dashed "
        "line). The numbers are written beside each row and listed in the table under the chart."
    )
    chart = _rows_chart([ci, pi, pooled_ci, markers, numbers], title, description, sizes)
    return _style(chart, style)


def subgroup_data(records: Sequence[Mapping[str, object]]) -> dict[str, list[dict]]:
    """The subgroup chart's rows (from analysis.subgroup_records), in plain Python like
    `forest_data`."""
    rows = []
    for order, source in enumerate(records):
        row = {column: _clean(value) for column, value in source.items()}
        label = f"{row['subgroup']}  (k = {row['k']})"
        estimate = (row["estimate"], row["ci_low"], row["ci_high"])
        row |= {
            "order": order,
            "x": row["ci_low"],
            "row": label,
            "estimate_text": _percent_text(*estimate),
            "spoken": f"{row['subgroup']}, {row['k']} studies: pooled {_spoken(*estimate)}",
        }
        rows.append(row)
    return {"subgroups": rows}


def subgroup_layout(title: str, style: str = "screen") -> alt.TopLevelMixin:
    sizes = STYLES[style]
    tooltip = [
        alt.Tooltip("row:N", title="Subgroup"),
        alt.Tooltip("estimate_text:N", title="Pooled [95% CI]"),
    ]
    base = alt.Chart(_named("subgroups")).encode(
        y=alt.Y("row:N", sort=ORDER, title=None, axis=_row_axis(sizes))
    )
    ci = base.mark_rule(strokeWidth=4 * sizes.scale, color=OKABE_ITO["blue"], aria=False).encode(
        x=_percent_axis("Pooled proportion", ticks=alt.ExprRef("narrow ? 3 : 6")),
        x2="ci_high:Q",
        tooltip=tooltip,
    )
    point = base.mark_point(
        shape="diamond",
        size=220 * sizes.scale**2,
        filled=True,
        color=OKABE_ITO["black"],
    ).encode(x="estimate:Q", description=alt.Description("spoken:N"), tooltip=tooltip)
    description = (
        f"Subgroups of {title}: for each subgroup the pooled proportion (a diamond) with its 95% "
        "confidence interval (a line). The numbers are written beside each row and listed in "
        "the table under the chart."
    )
    chart = _rows_chart(
        [ci, point, _numbers(base, "estimate_text", sizes)], title, description, sizes
    )
    return _style(chart, style)


# The dose axis always shows both sides of the review's split: from 0 to twice the split at least.
DOSE_SPAN = (0, 2 * REVIEW_DOSE_SPLIT)
# Bubble area is proportional to patients; the legend shows fixed sizes to read a bubble against.
PATIENT_SIZES = (5, 25, 50, 100)


def dose_data(
    points: pd.DataFrame, line: pd.DataFrame | None, highlight: str | None = None
) -> dict[str, list[dict]]:
    data = points.copy()
    data["highlighted"] = data["study_id"].eq(highlight) if highlight else False
    data["estimate_text"] = [
        f"{e}/{t} ({e / t:.1%})" for e, t in zip(data["events"], data["total"], strict=True)
    ]
    data["dose_text"] = [
        f"{low:g}" if low == high else f"{low:g}-{high:g}"
        for low, high in zip(data["dose_mg_day_min"], data["dose_mg_day_max"], strict=True)
    ]
    data["spoken"] = [
        f"{label}: {e} of {t} patients ({e / t:.1%}) at {low:g}-{high:g} mg/day"
        for label, e, t, low, high in zip(
            data["label"], data["events"], data["total"], data["dose_mg_day_min"],
            data["dose_mg_day_max"], strict=True,
        )
    ]  # fmt: skip
    datasets = {
        "points": _records(data),
        "threshold": [{"dose": REVIEW_DOSE_SPLIT}],
        "span": [{"dose": end} for end in DOSE_SPAN],
    }
    if line is not None and not line.empty:
        datasets["line"] = _records(line)
    return datasets


def dose_layout(title: str, with_line: bool, style: str = "screen") -> alt.TopLevelMixin:
    sizes = STYLES[style]
    tooltip = [
        alt.Tooltip("label:N", title="Study"),
        alt.Tooltip("total:Q", title="n"),
        alt.Tooltip("estimate_text:N", title="Events"),
        alt.Tooltip("dose_mg_day_min:Q", title="Dose from (mg/day)"),
        alt.Tooltip("dose_mg_day_max:Q", title="Dose to (mg/day)"),
    ]
    x = alt.X(
        "dose_mid:Q",
        title="Anakinra dose (mg/day, midpoint of reported range)",
        axis=alt.Axis(tickCount=alt.ExprRef(f"width < {60 * sizes.label} ? 5 : 10")),
    )
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
    line = 2 * sizes.scale
    ranges = (
        alt.Chart(_named("points"))
        .mark_rule(aria=False)  # the bubble says the range
        .encode(
            x="dose_mg_day_min:Q",
            x2="dose_mg_day_max:Q",
            y=y,
            color=colour,
            strokeWidth=alt.condition(alt.datum.highlighted, alt.value(2 * line), alt.value(line)),
            tooltip=tooltip,
        )
    )
    area = sizes.scale**2
    bubbles = (
        alt.Chart(_named("points"))
        .mark_circle(opacity=0.75, stroke=OKABE_ITO["black"])
        .encode(
            x=x,
            y=y,
            size=alt.Size(
                "total:Q",
                title="Patients",
                scale=alt.Scale(domain=[0, PATIENT_SIZES[-1]], range=[0, 1000 * area]),
                legend=alt.Legend(values=list(PATIENT_SIZES), symbolStrokeWidth=0.5),
            ),
            color=colour,
            # The highlight is told by a heavy outline too, never by colour alone.
            strokeWidth=alt.condition(alt.datum.highlighted, alt.value(line), alt.value(0.5)),
            description=alt.Description("spoken:N"),
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    threshold = (
        alt.Chart(_named("threshold"))
        .mark_rule(strokeDash=[6, 4], color=OKABE_ITO["grey"], strokeWidth=line / 2)
        .encode(x="dose:Q", description=alt.value("the review's 200 mg/day split"))
    )
    # Not drawn: it keeps both sides of the split on the axis whatever the doses in the slice.
    span = alt.Chart(_named("span")).mark_point(opacity=0, aria=False).encode(x="dose:Q")
    layers = [span, threshold, ranges, bubbles]
    if with_line:
        band = (
            alt.Chart(_named("line"))
            .mark_area(opacity=0.15, color=OKABE_ITO["green"], aria=False)
            .encode(x="x:Q", y="ci_low:Q", y2="ci_high:Q")
        )
        fit = (
            alt.Chart(_named("line"))
            .mark_line(color=OKABE_ITO["green"], strokeWidth=1.5 * line, aria=False)
            .encode(x="x:Q", y="estimate:Q")
        )
        layers = [band, fit, *layers]
    description = (
        f"{title} against the anakinra dose in mg/day: one bubble per cohort (its area the number "
        "of patients) with a line across the cohort's reported dose range, and a dashed line at "
        "the review's 200 mg/day split"
        + (", with the meta-regression line and its 95% confidence band" if with_line else "")
        + ". The numbers are listed in the table under the chart."
    )
    chart = alt.layer(*layers).properties(
        title=title, description=description, height=380 * (1 + (sizes.scale - 1) / 2),
        width="container",
    )  # fmt: skip
    return _style(chart, style)


def ratio_data(frame: pd.DataFrame) -> dict[str, list[dict]]:
    data = _in_order(frame.dropna(subset=["ratio"]))
    data["text"] = [
        f"{r:.2f} [{lo:.2f}, {hi:.2f}]"
        for r, lo, hi in zip(data["ratio"], data["ci_low"], data["ci_high"], strict=True)
    ]
    data["spoken"] = [
        f"{label}: risk ratio {r:.2f} (95% CI {lo:.2f} to {hi:.2f})"
        for label, r, lo, hi in zip(
            data["label"], data["ratio"], data["ci_low"], data["ci_high"], strict=True
        )
    ]
    return {"ratios": _records(data), "no_effect": [{"one": 1.0}]}


def ratio_layout(title: str, measure: str = "RR", style: str = "screen") -> alt.TopLevelMixin:
    sizes = STYLES[style]
    y = alt.Y("label:N", sort=ORDER, title=None, axis=_row_axis(sizes))
    x = alt.X(
        "ci_low:Q",
        title=f"{measure} (log scale)",
        scale=alt.Scale(type="log"),
        axis=alt.Axis(tickCount=alt.ExprRef("narrow ? 3 : 6")),
    )
    tooltip = [alt.Tooltip("label:N"), alt.Tooltip("text:N", title=f"{measure} [95% CI]")]
    base = alt.Chart(_named("ratios")).encode(y=y)
    rules = base.mark_rule(strokeWidth=2 * sizes.scale, color=OKABE_ITO["blue"], aria=False).encode(
        x=x, x2="ci_high:Q", tooltip=tooltip
    )
    marks = base.mark_point(
        filled=True, size=120 * sizes.scale**2, color=OKABE_ITO["black"]
    ).encode(
        x="ratio:Q",
        shape=alt.Shape("row_type:N", legend=None),
        description=alt.Description("spoken:N"),
        tooltip=tooltip,
    )
    one = (
        alt.Chart(_named("no_effect"))
        .mark_rule(color=OKABE_ITO["grey"], strokeWidth=sizes.scale)
        .encode(x="one:Q", description=alt.value("no difference (a ratio of 1)"))
    )
    description = (
        f"{title}: for each study the {measure} (a point) with its 95% confidence interval (a "
        "line) on a log scale, a vertical line at 1 (no difference). The numbers are written "
        "beside each row and listed in the table under the chart."
    )
    chart = _rows_chart(
        [one, rules, marks, _numbers(base, "text", sizes)], title, description, sizes
    )
    return _style(chart, style)


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


def summary_forest_layout(title: str, style: str = "screen") -> alt.TopLevelMixin:
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
            alt.value(OKABE_ITO["vermillion"]),
            alt.value(OKABE_ITO["blue"]),
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
        title=title,
        description=f"{title}: the pooled proportion of all studies (a diamond, its 95% CI and a "
        "dashed prediction interval), then each subgroup's pooled proportion with its 95% CI.",
        height=alt.Step(STYLES[style].row),
        width="container",
    )
    return _style(chart, style)


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


def distribution_layout(title: str, style: str = "screen") -> alt.TopLevelMixin:
    """Histogram of the studies' own proportions; the pooled estimate (line) and its 95%
    prediction interval (band), where a new study's true proportion is expected to lie."""
    band = (
        alt.Chart(_named("pooled"))
        .mark_rect(opacity=0.15, color=OKABE_ITO["vermillion"])
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
    chart = alt.layer(band, bars, line).properties(
        title=title,
        description=f"{title}: a histogram of the studies' own proportions, with the pooled "
        "estimate (a line) and its 95% prediction interval (a band).",
        height=240,
        width="container",
    )
    return _style(chart, style)


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


def funnel_layout(title: str, x_title: str, style: str = "screen") -> alt.TopLevelMixin:
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
    centre = base.mark_line(color=OKABE_ITO["vermillion"], strokeWidth=2).encode(x="estimate:Q")
    chart = alt.layer(cells, low, high, centre).properties(
        title=title,
        description=f"{title}: the number of studies in each cell of estimate against standard "
        "error, the pooled estimate (a line) and its pseudo 95% limits (dashed).",
        height=300,
        width="container",
    )
    return _style(chart, style)
