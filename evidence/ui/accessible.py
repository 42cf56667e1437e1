"""What the mouse reaches, reached without it: each chart's numbers as a table (for a screen
reader, a keyboard, and a reader who cannot hover, as in a meeting room), and a study chosen
from a list to show where its numbers come from (the Studies table's row selection takes a
pointer)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from evidence import figures
from evidence.format import NOT_REPORTED
from evidence.ui import state

STUDY_PICKER = "study_picker"


def chart_data(spec: dict, key: str) -> None:
    """The chart's rows as a table, under the chart in a collapsed "Chart data as a table"; the
    table is made only when it is opened (a closed one costs a filter change one element)."""
    box = st.expander("Chart data as a table", key=f"{key}_data", on_change="rerun")
    if box.open:
        with box:
            st.table(figures.chart_table(spec), hide_index=True)


def study_picker(shown: pd.DataFrame) -> None:
    """A list of the studies `shown` (rows with study_id, first_author, year), bound to the
    study highlighted on every page: choosing one shows where its numbers come from, from the
    keyboard."""
    ids = shown["study_id"].tolist()
    names = {row.study_id: _name(row) for row in shown.itertuples()}
    current = state.current_view().study
    st.session_state[STUDY_PICKER] = current if current in ids else None
    st.selectbox(
        "Show where a study's numbers come from",
        ids,
        key=STUDY_PICKER,
        format_func=lambda study: names[study],  # an option is shown as text, not Markdown
        placeholder="choose a study",
        on_change=_on_pick,
        help="The same as selecting the study's row in the table above.",
    )


def table_pick(frame: pd.DataFrame, table_key: str) -> str | None:
    """The study of a row just selected in a selectable table, once: a selection the table
    still holds from before gives None, so a study chosen since in the list (or a chart) stays
    highlighted (the table sends its selection with every rerun, however old)."""
    selection = st.session_state.get(table_key, {}).get("selection", {})
    rows = list(selection.get("rows", [])) if isinstance(selection, dict) else []
    seen_key = f"{table_key}_seen"
    if rows == st.session_state.get(seen_key):
        return None
    st.session_state[seen_key] = rows
    return _study_of(frame, rows)


def _study_of(frame: pd.DataFrame, rows: list[int]) -> str | None:
    """The study id of the first of `rows` of `frame`, if there is one."""
    if not rows or rows[0] >= len(frame):
        return None
    return str(frame.iloc[rows[0]]["study_id"])


def _name(row: object) -> str:
    """ "Strati P 2020 (Strati2020)": first author and year, then the id the tables show."""
    author, year = getattr(row, "first_author", None), getattr(row, "year", None)
    known = isinstance(author, str) and author and author != NOT_REPORTED
    when = "" if year is None or pd.isna(year) else f" {int(year)}"
    return f"{author}{when} ({row.study_id})" if known else f"{row.study_id}{when}"


def _on_pick() -> None:
    state.highlight(st.session_state.get(STUDY_PICKER))
