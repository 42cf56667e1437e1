"""The slice and view of this session, bound both ways to the URL and to the shared sidebar.

The URL is the source of truth: a copied link restores the exact view on any page. Widgets are
set from the URL at the top of every run, and a widget change writes the URL (in its callback),
so the rerun that follows reads what the user chose. When page navigation drops the query string
the last slice and view of this session are restored, so switching pages never loses them.

The sidebar is made from the filter declarations (evidence.filters.FILTERS): one widget per
filter, chosen by its kind.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from evidence import vocab
from evidence.filters import (
    FILTERS,
    Filter,
    Range,
    Slice,
    View,
    keep_known_studies,
    link_params,
    quoted,
    read_link,
)
from evidence.grade import PanelSettings
from evidence.ui import data

SLICE_KEY = "slice"
VIEW_KEY = "view"
NOTICES_KEY = "link_notices"
ENTRY_KEY = "entrypoint_run"  # the run app.py last went through (mark_entrypoint)
# app.py draws the page (everything a filter changes) as a fragment with this key, so a sidebar
# change reruns the page alone: the sidebar already shows what was chosen.
PAGE_FRAGMENT = "page"
FILTER_WIDGET = "filter_{}"  # a filter's widget key
VIEW_WIDGET = "view_{}"  # a view setting's widget key


def _url_params() -> dict[str, list[str]]:
    return {key: st.query_params.get_all(key) for key in st.query_params}


def current() -> tuple[Slice, View]:
    """The slice and view of this run (from the URL, else this session's last); what the link
    had that was ignored is kept for `link_notices`."""
    params = _url_params()
    marker = params.pop(data.LINK_KEY, None)
    # First the data (a dataset shared by link becomes this session's), then the slice, whose
    # studies are checked against that data.
    data_notices = _data_notices(marker)
    if params:
        rows, view, notices = read_link(params)
        rows, view, unknown = keep_known_studies(rows, view, data.study_ids())
        notices += unknown
    else:
        rows = st.session_state.get(SLICE_KEY, Slice())
        view = st.session_state.get(VIEW_KEY, View())
        notices = []
    notices += data_notices
    # A link's notices stay on screen until the user changes something, even on other pages.
    if notices:
        st.session_state[NOTICES_KEY] = notices
    st.session_state[SLICE_KEY] = rows
    st.session_state[VIEW_KEY] = view
    data.use_chart_style(view.mode)
    _write_url(rows, view)
    return rows, view


def link_notices() -> list[str]:
    """What was ignored in the link this view was opened with (until something changes)."""
    return st.session_state.get(NOTICES_KEY, [])


def _data_notices(marker: list[str] | None) -> list[str]:
    """The link's data marker against the data this session reads. `data=<dataset id>` makes
    that dataset this session's data (opened from the dataset store), or says why it cannot;
    `data=upload`, a link made while a session-only upload was in use, opened where that upload
    is not, says so."""
    if marker is None:
        return []
    if len(marker) == 1 and data.is_dataset_id(marker[0]):
        notice = data.use_link_data(marker[0])
        return [] if notice is None else [notice]
    if marker == [data.LINK_UPLOAD]:
        if data.has_upload():
            return []
        served = data.served()
        shown = (
            "the shipped data"
            if isinstance(served, data.Unavailable) or served.is_shipped
            else served.label
        )
        return [
            "The uploaded extraction of this link is not on this server (it lives only in the "
            f"browser session that uploaded it); showing {shown}."
        ]
    return [
        f"Ignored {data.LINK_KEY}={quoted(item)}: not a data set this server knows."
        for item in marker
    ]


def _link(rows: Slice, view: View) -> dict[str, list[str]]:
    """The query string of this session's link: the slice and view, and which data it reads
    when it is a panel's upload (its dataset id, or the session-only marker)."""
    params = link_params(rows, view)
    marker = data.link_marker()
    if marker is not None:
        params[data.LINK_KEY] = [marker]
    return params


def _write_url(rows: Slice, view: View) -> None:
    wanted = _link(rows, view)
    if _url_params() != wanted:
        st.query_params.from_dict(wanted)


def apply(rows: Slice | None = None, view: View | None = None) -> None:
    """Make `rows` and/or `view` this session's and its URL's (for buttons and callbacks)."""
    st.session_state.pop(NOTICES_KEY, None)
    rows = rows if rows is not None else _stored_slice()
    view = view if view is not None else stored_view()
    st.session_state[SLICE_KEY] = rows
    st.session_state[VIEW_KEY] = view
    data.use_chart_style(view.mode)
    _write_url(rows, view)


def apply_everywhere(rows: Slice | None = None, view: View | None = None) -> None:
    """Callback for a control on the page: the whole app reruns, so the sidebar shows the change
    too (a callback's st.rerun() halts it and reruns the app)."""
    apply(rows, view)
    st.rerun()


def reset() -> None:
    """What the sidebar shows back to its defaults: every filter, the pooling method and the
    outcome. The panel's judgements and the page's own settings (split, highlight) stay."""
    view = stored_view()
    apply(Slice(), replace(view, method=View().method, outcome=View().outcome))


def highlight(study_id: str | None) -> None:
    """Make `study_id` the study highlighted on every page (None leaves the highlight as is)."""
    if study_id and study_id != stored_view().study:
        apply(view=replace(stored_view(), study=study_id))


def set_panel(panel: PanelSettings) -> None:
    """Make `panel` the view's GRADE settings (decisions, thresholds, data version)."""
    apply(view=replace(stored_view(), panel=panel))


def confirm_panel(data_version: str) -> None:
    """Apply the link's GRADE settings to the data in use (a page control's callback)."""
    view = stored_view()
    apply(view=replace(view, panel=replace(view.panel, data_version=data_version)))


def choose_split(split: str) -> None:
    """Make `split` the subgroup split of the view (a page control's callback)."""
    apply(view=replace(stored_view(), split=split))


def share_link(rows: Slice, view: View) -> str:
    base = (st.context.url or "").split("?")[0]
    query = urlencode(_link(rows, view), doseq=True)
    return f"{base}?{query}" if query else base


# ---- the sidebar ---------------------------------------------------------------------------
def _widget_value(f: Filter, value: Any, bounds: dict, study_ids: tuple[str, ...]) -> Any:
    """What a filter's widget shows for `value`."""
    if f.kind == "choices":
        return list(value)
    if f.kind == "studies":
        return [s for s in value if s in study_ids]
    if f.kind == "range":
        floor, ceiling = bounds[f.key]
        low, high = value
        return (
            floor if low is None else min(max(low, floor), ceiling),
            ceiling if high is None else max(min(high, ceiling), floor),
        )
    if f.kind == "minimum":
        return value or 0
    return value


def _filter_value(f: Filter, shown: Any, bounds: dict) -> Any:
    """A filter's value from what its widget shows (a range at the data's end is open)."""
    if f.kind in ("choices", "studies"):
        return tuple(shown)
    if f.kind == "range":
        floor, ceiling = bounds[f.key]
        cast = int if f.whole_numbers else float
        low, high = shown
        return Range(None if low <= floor else cast(low), None if high >= ceiling else cast(high))
    if f.kind == "minimum":
        return int(shown) or None
    return shown


def _shown(f: Filter, bounds: dict) -> bool:
    """A range filter is drawn only where the data has a range to narrow."""
    return f.kind != "range" or (f.key in bounds and bounds[f.key][0] < bounds[f.key][1])


def _from_widgets() -> tuple[Slice, View]:
    """Read every sidebar widget back into a slice and a view."""
    bounds = data.slider_bounds()
    state = st.session_state
    chosen = {
        f.key: _filter_value(f, state[FILTER_WIDGET.format(f.key)], bounds)
        for f in FILTERS
        if _shown(f, bounds)
    }
    rows = _stored_slice().replace(**chosen)
    view = replace(
        stored_view(),
        method=state[VIEW_WIDGET.format("method")],
        outcome=state[VIEW_WIDGET.format("outcome")],
    )
    # Widget values come from the browser: they pass the link's checks like any other value.
    rows, view, _ = read_link(link_params(rows, view))
    return rows, view


def _on_change() -> None:
    apply(*_from_widgets())
    st.rerun(PAGE_FRAGMENT)


def _set_widgets(rows: Slice, view: View, bounds: dict, study_ids: tuple[str, ...]) -> None:
    """Put the URL's slice and view into the widgets before they are drawn."""
    state = st.session_state
    for f in FILTERS:
        if _shown(f, bounds):
            state[FILTER_WIDGET.format(f.key)] = _widget_value(
                f, getattr(rows, f.key), bounds, study_ids
            )
    state[VIEW_WIDGET.format("method")] = view.method
    state[VIEW_WIDGET.format("outcome")] = view.outcome


def _filter_widget(f: Filter, bounds: dict, study_ids: tuple[str, ...]) -> None:
    bar, key = st.sidebar, FILTER_WIDGET.format(f.key)
    common: dict[str, Any] = {"key": key, "on_change": _on_change, "help": f.help}
    if f.kind == "option":
        assert f.vocabulary is not None
        bar.radio(f.label, f.vocabulary.codes, format_func=f.vocabulary.label, **common)
    elif f.kind == "choices":
        assert f.vocabulary is not None
        bar.multiselect(
            f.label, f.vocabulary.codes, format_func=f.vocabulary.label, placeholder="any",
            **common,
        )  # fmt: skip
    elif f.kind == "range":
        floor, ceiling = bounds[f.key]
        bar.slider(f.label, floor, ceiling, step=f.step, **common)
    elif f.kind == "minimum":
        bar.number_input(f.label, min_value=0, step=1, **common)
    else:
        bar.multiselect(f.label, study_ids, placeholder="none", **common)


def sidebar(rows: Slice, view: View) -> None:
    """The one sidebar every page shares: how to pool and which outcome, then the filters."""
    bounds, study_ids = data.slider_bounds(), data.study_ids()
    _set_widgets(rows, view, bounds, study_ids)
    bar = st.sidebar
    bar.header("Filters")
    # First under the header: its place never moves as the multiselects below grow, so a click
    # cannot land where the button was a moment ago.
    bar.button("Reset filters", width="stretch", on_click=reset)
    bar.selectbox(
        "Pooling method",
        vocab.POOLING_METHODS.codes,
        format_func=vocab.POOLING_METHODS.label,
        key=VIEW_WIDGET.format("method"),
        on_change=_on_change,
    )
    bar.selectbox(
        "Outcome (single-outcome views)",
        vocab.OUTCOMES.codes,
        format_func=vocab.OUTCOMES.label,
        key=VIEW_WIDGET.format("outcome"),
        on_change=_on_change,
        placeholder="page default",
        help="Used by the subgroup view (Treatment) and the Dose page.",
    )
    for f in FILTERS:
        if _shown(f, bounds):
            _filter_widget(f, bounds, study_ids)


def share_link_control(rows: Slice, view: View) -> None:
    """ "Copy link" in the sidebar, drawn with the page because the link changes with the slice
    (st.code has the copy button)."""
    with st.sidebar.popover("Copy link to this view", width="stretch"):
        st.caption("This link restores exactly this view:")
        st.code(share_link(rows, view), language=None, wrap_lines=True)


# ---- what a page reads ---------------------------------------------------------------------
def mark_entrypoint() -> None:
    """Mark this run as one that went through app.py (serving.start calls it first in every
    run): the run context's cursors are a new object every run, so holding them tells this run
    from any other."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is not None:
        st.session_state[ENTRY_KEY] = ctx.cursors


def require_entrypoint() -> None:
    """Make sure this run went through app.py (shared sidebar, the link's slice and view).

    A page opened by a deep link as the first request to a fresh server runs without app.py:
    Streamlit starts in its legacy `pages/`-folder mode until `st.navigation` has been called
    once (streamlit/runtime/pages_manager.py). The run is then restarted through app.py, which
    resolves the same URL. The mode is one flag for the process, so when several deep links
    reach a fresh server at once (a link shared in a meeting; sessions moving to a restarted
    replica) only the first run turns it off; the others started in the legacy mode too, and
    each is restarted because app.py did not mark it (`mark_entrypoint`). Every page calls this
    first (through `current_slice()`/`current_view()` or directly); a fragment's rerun (the
    page alone, after a sidebar change) is not checked.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or ctx.fragment_ids_this_run:
        return
    if st.session_state.get(ENTRY_KEY) is not ctx.cursors:
        st.rerun()


def current_slice() -> Slice:
    """The slice of this run, as app.py read it before the page started."""
    require_entrypoint()
    return _stored_slice()


def current_view() -> View:
    """The view of this run, as app.py read it before the page started."""
    require_entrypoint()
    return stored_view()


# Callbacks run before the script, so they read the stored state without the entrypoint check
# (which would restart a run that has not begun).
def _stored_slice() -> Slice:
    return st.session_state.get(SLICE_KEY, Slice())


def stored_view() -> View:
    """The view as the last run left it, for a callback (which runs before the script)."""
    return st.session_state.get(VIEW_KEY, View())


def page_slice(indication: str) -> Slice:
    """The slice within one indication, the scope of a page that shows only it; if the user's
    indication filter leaves nothing of it, the page says so and stops."""
    scoped = current_slice().within(indication)
    if scoped is None:
        label = vocab.INDICATIONS.label(indication)
        st.info(f"The indication filter in the sidebar leaves out every {label} cohort.")
        st.stop()
    return scoped
