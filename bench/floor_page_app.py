"""Streamlit's floor for the Treatment page: the same elements, from precomputed data.

Every element the dashboard's Treatment page draws on a filter change, in the same structure:
the sidebar's widgets (made from the same filter declarations, and the meeting-mode toggle)
outside a keyed fragment whose callback reruns only the page, the Copy-link popover drawn by the
page into the sidebar, the "Outcomes" heading, the titled outcome section with its pooled line,
notes, selectable forest plot, download button, closed "Chart data as a table" and slice
caption, the not-reported line, and the subgroup section with its control, chart, download
button, closed "Chart data as a table" and test line. Its contents are the dashboard's own
(engine, chart layouts, captions), computed once per exclusion state on first use and then held
in memory, so a rerun costs only Streamlit: the script run, the messages and the browser's
redraw.

Run alone with: .venv/bin/streamlit run bench/floor_page_app.py
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run bench/...` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from evidence import analysis, charts, db, vocab  # noqa: E402  (after the path fix above)
from evidence.extraction import build  # noqa: E402
from evidence.filters import FILTERS, Slice  # noqa: E402
from evidence.ui.vega import vega_spec  # noqa: E402


@dataclass(frozen=True)
class Shown:
    """Everything the page shows for one exclusion state, as text and chart specs."""

    caption: str
    pooled: str
    notes: str
    forest: dict
    missing: str
    subgroup_title: str
    subgroup: dict | None
    test_line: str
    subgroup_notes: str


@st.cache_resource
def connection() -> duckdb.DuckDBPyConnection:
    """The shipped database, opened once per process (read-only, as the dashboard opens it)."""
    return db.connect_read_only(build.DATABASE)


@st.cache_resource
def study_ids() -> tuple[str, ...]:
    return tuple(db.run(connection(), "studies_table")["study_id"])


@st.cache_resource
def response_studies() -> frozenset[str]:
    """The studies whose exclusion changes what the page shows (those with response counts)."""
    every = analysis.every_poolable_row(connection())
    return frozenset(every.loc[every["outcome"] == "icans_response", "study_id"])


@st.cache_resource
def shown(excluded: tuple[str, ...]) -> Shown:
    """One state's page, computed once per process with the dashboard's engine and charts and
    keyed on the excluded studies that change it, so a new slice that shows the same numbers
    is answered from memory: the floor has no work of its own."""
    con = connection()
    rows = Slice(exclude=excluded).within("treatment")
    assert rows is not None
    cohorts = analysis.cohort_slice(con, rows)
    summary = analysis.slice_summary(cohorts)
    caption = rows.describe(summary.studies, summary.patients)
    counts = analysis.counts_by_outcome(
        analysis.in_slice(analysis.every_poolable_row(con), cohorts)
    )
    results = [
        analysis.pool(code, counts.get(code, cohorts.iloc[0:0]), "glmm")
        for code in vocab.OUTCOME_GROUPS["treatment"]
    ]
    response = results[0]
    assert response.result is not None
    pooled = response.result
    subgroups = analysis.analyse_subgroups(response, "product")
    forest = charts.forest_layout(response.label).to_dict(validate=False)
    subgroup = charts.subgroup_layout(response.label).to_dict(validate=False)
    return Shown(
        caption=caption,
        pooled=f"**{pooled.proportion.estimate:.1%}** (95% CI {pooled.proportion.ci.low:.1%}–"
        f"{pooled.proportion.ci.high:.1%}) · "
        f"k = {pooled.k}, {pooled.events_total}/{pooled.n_total} patients",
        notes="  \n".join([*pooled.notes, "Method: GLMM"]),
        forest=vega_spec(forest, charts.forest_data(response.forest_records())),
        missing="Not reported as counts in this slice: "
        + ", ".join(r.label for r in results if r.result is None),
        subgroup_title=f"**{response.label}** by CAR-T product (pick another outcome)",
        subgroup=None
        if subgroups is None
        else vega_spec(subgroup, charts.subgroup_data(analysis.subgroup_records(subgroups))),
        test_line="Test for subgroup differences: "
        + ("none" if subgroups is None else f"QM = {subgroups.moderator_test.statistic}"),
        subgroup_notes="  \n".join([*(subgroups.notes if subgroups else ()), caption]),
    )


def _changed() -> None:
    """As the dashboard's sidebar callback: write the URL, rerun the page fragment only."""
    st.query_params.from_dict({"exclude": sorted(st.session_state.get("exclude", []))})
    st.rerun("page")


st.set_page_config(page_title="Streamlit floor, whole page (benchmark)", layout="wide")
bar = st.sidebar
bar.toggle("Meeting mode (projector)", key="view_mode")
bar.header("Filters")
bar.selectbox("Pooling method", vocab.POOLING_METHODS.codes, key="view_method", on_change=_changed)
bar.selectbox("Outcome (single-outcome views)", vocab.OUTCOMES.codes, key="view_outcome")
for f in FILTERS:  # the dashboard's widgets, in its order, with fixed bounds
    if f.kind == "option":
        bar.radio(f.label, f.vocabulary.codes, key=f.key, on_change=_changed)
    elif f.kind == "choices":
        bar.multiselect(
            f.label, f.vocabulary.codes, key=f.key, on_change=_changed, placeholder="any"
        )
    elif f.kind == "range":
        bar.slider(f.label, 0, 1000, (0, 1000), key=f.key, on_change=_changed)
    elif f.kind == "minimum":
        bar.number_input(f.label, min_value=0, step=1, key=f.key, on_change=_changed)
    else:
        bar.multiselect(
            f.label, list(study_ids()), key="exclude", on_change=_changed, placeholder="none"
        )
bar.button("Reset filters", width="stretch")


def _download_button(chart: str) -> None:
    """The element the dashboard draws under a chart (a deferred download that never reruns)."""
    st.download_button(
        "Download chart (PNG)",
        data=lambda: b"",
        file_name=f"floor_{chart}.png",
        on_click="ignore",
        key=f"{chart}_png",
        type="tertiary",
        icon=":material/download:",
    )


def _chart_table(chart: str) -> None:
    """The closed "Chart data as a table" the dashboard draws under a chart (its table is made
    only when it is opened)."""
    box = st.expander("Chart data as a table", key=f"{chart}_data", on_change="rerun")
    if box.open:
        with box:
            st.table({"Study": ["opened"]})


def treatment() -> None:
    excluded = sorted(st.session_state.get("exclude", []))
    page_state = shown(tuple(s for s in excluded if s in response_studies()))
    with st.sidebar.popover("Copy link to this view", width="stretch"):
        st.caption("This link restores exactly this view:")
        link = "&".join(f"exclude={s}" for s in excluded)
        st.code(f"http://localhost/treatment?{link}", language=None, wrap_lines=True)
    st.title("Treatment of ICANS with anakinra")
    st.caption("Single-arm rates among patients given anakinra for severe or refractory ICANS.")
    st.header("Outcomes")
    with st.container(border=True, key="outcome_forest_icans_response"):
        st.subheader("Neurological response / improvement")
        st.markdown(page_state.pooled)
        st.caption(page_state.notes)
        st.vega_lite_chart(
            page_state.forest, on_select="rerun", key="forest", width="stretch", theme=None
        )
        _download_button("forest")
        _chart_table("forest")
        st.caption(page_state.caption)
    st.info(page_state.missing)
    st.header("Subgroups")
    st.segmented_control("Split by", ["product", "dose_band"], default="product", key="split")
    st.markdown(page_state.subgroup_title)
    if page_state.subgroup is None:
        st.info("Subgroups need at least two studies reporting this outcome in the slice.")
    else:
        st.vega_lite_chart(page_state.subgroup, width="stretch", theme=None)
        _download_button("subgroups")
        _chart_table("subgroups")
        st.markdown(page_state.test_line)
    st.caption(page_state.subgroup_notes)


def other_page() -> None:
    st.title("Another page")


@st.fragment(key="page")
def page() -> None:
    """Navigation and the page in one fragment, as app.py draws them (seven pages listed)."""
    pages = [st.Page(treatment, title="Treatment", url_path="treatment", default=True)]
    pages += [
        st.Page(other_page, title=name, url_path=name.lower())
        for name in ("Overview", "Prophylaxis", "Dose", "Safety", "Studies", "Methods")
    ]
    st.navigation(pages).run()


page()
