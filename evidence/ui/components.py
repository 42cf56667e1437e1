"""Pieces every page shows the same way: the pooled-estimate block, a forest plot with its
caption and linked selection, and the banner saying which data is in use."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import pandas as pd
import streamlit as st

from evidence import figures
from evidence.analysis import OutcomeAnalysis
from evidence.filters import METHOD_LABELS, Filters
from evidence.meta.results import PoolResult, SubgroupResult
from evidence.ui import data, state
from evidence.ui.format import number, pct, pct_interval

HIGHLIGHT_KEY = "highlighted_study"
HIGHLIGHT_SHADE = "#FBE3D3"  # a pale tint of the charts' highlight colour (Okabe-Ito vermillion)


def data_banner() -> None:
    active = data.active()
    if active.is_upload:
        left, right = st.columns([4, 1])
        left.warning(f"You are looking at {active.label}, in this browser session only.")
        right.button("Back to shipped data", key="back_to_shipped", on_click=_back_to_shipped)


def _back_to_shipped() -> None:
    """The whole app reruns: the sidebar's study list and slider bounds come from the data."""
    data.use_shipped()
    st.rerun()


def notices(messages: list[str]) -> None:
    for message in messages:
        st.info(message, icon=":material/info:")


def highlighted() -> str | None:
    return st.session_state.get(HIGHLIGHT_KEY)


def highlight(study_id: str | None) -> None:
    """Make `study_id` the study highlighted on every page (None leaves the highlight as is)."""
    if study_id:
        st.session_state[HIGHLIGHT_KEY] = study_id


def picked_row(frame: pd.DataFrame, table_key: str) -> str | None:
    """The study of the row selected in a selectable table, read before the table is drawn so
    that this run already shades it (the widget's state holds the selection of the last click)."""
    selection = st.session_state.get(table_key, {}).get("selection", {})
    rows = selection.get("rows", []) if isinstance(selection, dict) else []
    if not rows or rows[0] >= len(frame):
        return None
    return str(frame.iloc[rows[0]]["study_id"])


def slice_caption(filters: Filters) -> str:
    """The slice in plain words (studies, patients), the caption under every chart of a page."""
    active = data.active()
    counts = data.summary(active, active.key, filters)
    return filters.describe(counts["studies"], counts["patients"])


def headline(result: PoolResult) -> tuple[str, str]:
    """The number to read aloud and its interval. With one study that is the study's own
    proportion and exact CI (the model-scale estimate would carry the 0.5 correction)."""
    if result.k == 1:
        only = result.studies[0]
        return pct(only.proportion), f"exact 95% CI {pct_interval(only.ci_low, only.ci_high)}"
    return pct(result.estimate), f"95% CI {pct_interval(result.ci_low, result.ci_high)}"


def pooled_sentence(result: PoolResult) -> str:
    """The pooled estimate in one line, with everything GRADE's inconsistency judgement needs."""
    parts = [
        f"**{pct(result.estimate)}** (95% CI {pct_interval(result.ci_low, result.ci_high)})",
        f"prediction interval {pct_interval(result.pi_low, result.pi_high)}"
        if result.k >= 3
        else "no prediction interval (fewer than 3 studies)",
        f"k = {result.k}, {result.events_total}/{result.n_total} patients",
        f"τ² = {number(result.tau2, 3)}, I² = {number(result.i2, 1)}%",
    ]
    return " · ".join(parts)


def method_line(result: PoolResult, filters: Filters) -> str:
    text = f"Method: {METHOD_LABELS[filters.method]}"
    if result.fallback_reason:
        text += f" — shown instead: {result.method} ({result.fallback_reason})"
    if filters.method == "freeman_tukey":
        text += (
            ". Sensitivity analysis only: the Freeman-Tukey back-transform can mislead "
            "(Schwarzer 2019)."
        )
    return text


def result_sentence(result: PoolResult) -> str:
    """The pooled estimate in one line, or with one study that study's own proportion."""
    if result.k != 1:
        return pooled_sentence(result)
    only = result.studies[0]
    return (
        f"One study only — **{only.label}**: {only.events}/{only.total} = "
        f"**{pct(only.proportion)}** (exact 95% CI {pct_interval(only.ci_low, only.ci_high)}). "
        "Nothing is pooled."
    )


def pooled_block(analysis: OutcomeAnalysis, filters: Filters) -> None:
    """The pooled number, or a plain message in its place when there is nothing to pool."""
    if analysis.result is None:
        st.info(analysis.message or "Nothing to pool in this slice.")
        return
    result = analysis.result
    st.markdown(result_sentence(result))
    if analysis.message and result.k != 1:
        st.warning(analysis.message)
    # One caption rather than one per note: every element costs a message on each rerun.
    st.caption("  \n".join([*result.notes, method_line(result, filters)]))


def subgroup_test_line(result: SubgroupResult) -> str:
    """The test for subgroup differences in words, or why there is none."""
    if result.qm is None:
        return "Test for subgroup differences: not estimable in this slice (notes below)."
    if result.qm_test == "F":
        line = (
            f"Test for subgroup differences (common τ², Hartung-Knapp): F = {number(result.qm)}, "
            f"df = {result.qm_df}, {result.qm_df2}, p = {number(result.qm_p, 3)}"
        )
    else:
        line = (
            f"Test for subgroup differences (common τ²): Q = {number(result.qm)}, "
            f"df = {result.qm_df}, p = {number(result.qm_p, 3)}"
        )
    if result.q_between_separate is not None:
        line += (
            f" · with a τ² per subgroup: Q = {number(result.q_between_separate)}, "
            f"df = {result.q_between_separate_df}, p = {number(result.q_between_separate_p, 3)}"
        )
    return line


def outcome_sections(
    analyses: Sequence[OutcomeAnalysis], filters: Filters, caption: str, key_prefix: str
) -> None:
    """A bordered section per outcome that has counts in the slice; the rest in one line."""
    for result in analyses:
        if result.result is None:
            continue
        with st.container(border=True):
            st.subheader(result.label)
            pooled_block(result, filters)
            forest(result, filters, caption, key=f"{key_prefix}_{result.outcome}")
    missing = [a.label for a in analyses if a.result is None]
    if missing:
        st.info(f"Not reported as counts in this slice: {', '.join(missing)}.")


def forest(analysis: OutcomeAnalysis, filters: Filters, caption: str, key: str) -> None:
    """Forest plot with linked selection: a click highlights the study and offers to exclude it."""
    if analysis.result is None:
        return
    notes = [caption, result_sentence(analysis.result), method_line(analysis.result, filters)]
    selectable_chart(data.forest_spec(analysis, highlighted()), key, notes)
    st.caption(caption)
    exclusion_control(key)


def chart(spec: dict, key: str, notes: Sequence[str]) -> None:
    """Render a cached Vega-Lite spec with the charts' own theme (Streamlit's collapses rows),
    with its download; `notes` go under the title of the downloaded file."""
    st.vega_lite_chart(spec, width="stretch", theme=None)
    chart_download(spec, key, notes)


def selectable_chart(spec: dict, key: str, notes: Sequence[str]) -> None:
    """Render a chart whose study markers can be clicked; a click highlights that study on
    every chart of the page (the rerun redraws them with the highlight)."""
    event = st.vega_lite_chart(spec, on_select="rerun", key=key, width="stretch", theme=None)
    chart_download(spec, key, notes)
    picked = _picked_study(event)
    if picked and picked != highlighted():
        st.session_state[HIGHLIGHT_KEY] = picked
        st.rerun()


def chart_download(spec: dict, key: str, notes: Sequence[str]) -> None:
    """The chart as shown, as a PNG for an evidence profile or a slide (twice the screen size, the
    notes and data version under its title). The file is made only when the button is clicked (a
    deferred download, ~0.1 s) and the click does not rerun the page. One button per chart: each
    element costs every filter change a few ms of redraw (SVG and PNG side by side cost ~20 ms
    on the Treatment page; `evidence.figures` makes either from Python)."""
    active = data.active()
    lines = figures.export_notes(notes, active.label, active.key)
    st.download_button(
        "Download chart (PNG)",
        data=partial(figures.chart_file, spec, lines, "png"),
        file_name=f"anakinra-{key}.png",
        mime=figures.MIME["png"],
        on_click="ignore",
        key=f"{key}_png",
        type="tertiary",
        icon=":material/download:",
    )


def _picked_study(event: object) -> str | None:
    selection = getattr(event, "selection", None) or (
        event.get("selection") if isinstance(event, dict) else None
    )
    if not selection:
        return None
    from evidence.charts import PICK  # already imported: a chart was drawn (see data._charts)

    points = selection.get(PICK) or []
    for point in points:
        if isinstance(point, dict) and point.get("study_id"):
            return str(point["study_id"])
    return None


def study_table(frame: pd.DataFrame, columns: list[str], **dataframe_args: object) -> None:
    """A table of study rows; the study clicked in a chart is shaded as it is in the charts.
    (A selectable table's pick is read with `picked_row`, before the table is drawn.)"""
    shown = frame[columns].reset_index(drop=True)
    study = highlighted()
    marked = frame["study_id"].eq(study).tolist() if study else []
    if not any(marked):
        st.dataframe(shown, **dataframe_args)
        return
    shade = f"background-color: {HIGHLIGHT_SHADE}"
    styled = shown.style.apply(lambda row: [shade if marked[row.name] else ""] * len(row), axis=1)
    st.dataframe(styled, **dataframe_args)
    st.caption(f"Shaded: **{study}**, highlighted in the charts.")


def exclusion_control(key: str) -> None:
    """Exclude (or include again) the highlighted study; re-pools every chart on every page."""
    study = highlighted()
    if not study:
        return
    filters = st.session_state[state.SESSION_KEY]
    excluded = study in filters.exclude
    label = f"Include {study} again" if excluded else f"Exclude {study} and re-pool"
    left, right = st.columns([3, 1])
    left.caption(f"Highlighted: **{study}** (click a study in any chart to highlight it).")
    right.button(
        label,
        key=f"{key}_toggle",
        on_click=state.apply_everywhere,
        args=(filters.toggle_exclusion(study),),
    )
