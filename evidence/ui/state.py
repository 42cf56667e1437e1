"""The filter state, bound both ways to the URL and to the shared sidebar.

The URL is the source of truth: a copied link restores the exact view on any page. Widgets are
set from the URL at the top of every run, and a widget change writes the URL (in its callback),
so the rerun that follows reads what the user chose. When page navigation drops the query string
the last filters of this session are restored, so switching pages never loses the slice.
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from evidence.filters import (
    DESIGNS,
    DOSE_BANDS,
    GRADING,
    INDICATIONS,
    METHOD_LABELS,
    PRODUCT_CHOICES,
    PUBTYPES,
    ROUTES,
    WINDOWS,
    Filters,
)
from evidence.sheets import OUTCOME_LABELS
from evidence.ui import data

SESSION_KEY = "filters"
NOTICES_KEY = "filter_notices"
# app.py draws the page (everything a filter changes) as a fragment with this key, so a sidebar
# change reruns the page alone: the sidebar already shows what was chosen, and redrawing its ~20
# widgets cost the browser about 100 ms a change (bench/bench_app.py).
PAGE_FRAGMENT = "page"
W = "w_"  # widget key prefix
MULTI = {
    "indication": INDICATIONS,
    "product": PRODUCT_CHOICES,
    "dose_band": DOSE_BANDS,
    "route": ROUTES,
    "grading": GRADING,
    "design": DESIGNS,
    "pubtype": PUBTYPES,
}


def _url_params() -> dict[str, list[str]]:
    return {key: st.query_params.get_all(key) for key in st.query_params}


def current() -> Filters:
    """Filters of this run (from the URL, else this session's last); what the link had that was
    ignored is kept for `link_notices`."""
    params = _url_params()
    if params:
        filters, notices = Filters.from_query_params(params)
    else:
        filters, notices = st.session_state.get(SESSION_KEY, Filters()), []
    # A link's notices stay on screen until the user changes a filter, even on other pages.
    if notices:
        st.session_state[NOTICES_KEY] = notices
    st.session_state[SESSION_KEY] = filters
    _write_url(filters)
    return filters


def link_notices() -> list[str]:
    """What was ignored in the link this view was opened with (until a filter changes)."""
    return st.session_state.get(NOTICES_KEY, [])


def _write_url(filters: Filters) -> None:
    wanted = filters.to_query_params()
    if _url_params() != wanted:
        st.query_params.from_dict(wanted)


def apply(filters: Filters) -> None:
    """Make `filters` the state of this session and of its URL (used by buttons and callbacks)."""
    st.session_state.pop(NOTICES_KEY, None)
    st.session_state[SESSION_KEY] = filters
    _write_url(filters)


def apply_everywhere(filters: Filters) -> None:
    """Callback for a control on the page that changes a filter: the whole app reruns, so the
    sidebar shows the change too (a callback's st.rerun() halts it and reruns the app)."""
    apply(filters)
    st.rerun()


def share_link(filters: Filters) -> str:
    base = (st.context.url or "").split("?")[0]
    query = urlencode(filters.to_query_params(), doseq=True)
    return f"{base}?{query}" if query else base


def _ranges() -> dict[str, float]:
    active = data.active()
    return data.slider_ranges(active, active.key)


def _study_ids() -> tuple[str, ...]:
    active = data.active()
    return data.study_ids(active, active.key)


def _from_widgets() -> Filters:
    """Read every sidebar widget back into a Filters value."""
    ranges = _ranges()
    state = st.session_state
    dose_low, dose_high = state[f"{W}dose"]
    year_low, year_high = state[f"{W}year"]
    return Filters(
        **{name: tuple(state[f"{W}{name}"]) for name in MULTI},
        dose_min=None if dose_low <= ranges["dose_min"] else float(dose_low),
        dose_max=None if dose_high >= ranges["dose_max"] else float(dose_high),
        year_min=None if year_low <= ranges["year_min"] else int(year_low),
        year_max=None if year_high >= ranges["year_max"] else int(year_high),
        min_n=int(state[f"{W}min_n"]) or None,
        window=state[f"{W}window"],
        outcome=state[f"{W}outcome"],
        method=state[f"{W}method"],
        exclude=tuple(state[f"{W}exclude"]),
    )


def _on_change() -> None:
    apply(_from_widgets())
    st.rerun(PAGE_FRAGMENT)


def _slider_value(
    low: float | None, high: float | None, floor: float, ceiling: float
) -> tuple[float, float]:
    """A range slider's value from optional filter bounds, kept inside the data's range
    (an unset bound sits at the slider's end, which _from_widgets reads back as unset)."""
    return (
        floor if low is None else min(max(low, floor), ceiling),
        ceiling if high is None else max(min(high, ceiling), floor),
    )


def _set_widgets(filters: Filters, ranges: dict[str, float], study_ids: tuple[str, ...]) -> None:
    """Put the URL's filters into the widgets before they are drawn."""
    state = st.session_state
    for name in MULTI:
        state[f"{W}{name}"] = list(getattr(filters, name))
    state[f"{W}dose"] = _slider_value(
        filters.dose_min, filters.dose_max, ranges["dose_min"], ranges["dose_max"]
    )
    state[f"{W}year"] = _slider_value(
        filters.year_min, filters.year_max, ranges["year_min"], ranges["year_max"]
    )
    state[f"{W}min_n"] = filters.min_n or 0
    state[f"{W}window"] = filters.window
    state[f"{W}outcome"] = filters.outcome
    state[f"{W}method"] = filters.method
    state[f"{W}exclude"] = [s for s in filters.exclude if s in study_ids]


def sidebar(filters: Filters) -> None:
    """The one sidebar every page shares."""
    ranges, study_ids = _ranges(), _study_ids()
    _set_widgets(filters, ranges, study_ids)
    bar = st.sidebar
    bar.header("Filters")
    bar.radio(
        "Evidence",
        list(WINDOWS),
        format_func=WINDOWS.get,
        key=f"{W}window",
        on_change=_on_change,
        help="The review searched to 1 April 2022; later reports are tagged and can be added.",
    )
    bar.selectbox(
        "Outcome (single-outcome views)",
        list(OUTCOME_LABELS),
        format_func=OUTCOME_LABELS.get,
        key=f"{W}outcome",
        on_change=_on_change,
        placeholder="page default",
        help="Used by the subgroup view (Treatment) and the Dose page.",
    )
    bar.selectbox(
        "Pooling method",
        list(METHOD_LABELS),
        format_func=METHOD_LABELS.get,
        key=f"{W}method",
        on_change=_on_change,
    )
    labels = {
        "indication": "Indication",
        "product": "CAR-T product",
        "dose_band": "Dose band (review's split)",
        "route": "Route",
        "grading": "ICANS grading system",
        "design": "Design",
        "pubtype": "Publication type",
    }
    for name, choices in MULTI.items():
        bar.multiselect(
            labels[name],
            list(choices),
            format_func=choices.get,
            key=f"{W}{name}",
            on_change=_on_change,
            placeholder="any",
        )
    bar.slider(
        "Anakinra dose (mg/day)",
        ranges["dose_min"],
        ranges["dose_max"],
        key=f"{W}dose",
        step=50.0,
        on_change=_on_change,
        help="Keeps cohorts whose reported dose range overlaps this one. Moving it away from the "
        "full range leaves out cohorts with no mg/day dose (e.g. weight-based dosing).",
    )
    if ranges["year_min"] < ranges["year_max"]:
        bar.slider(
            "Publication year",
            ranges["year_min"],
            ranges["year_max"],
            key=f"{W}year",
            on_change=_on_change,
        )
    bar.number_input(
        "Minimum cohort size", min_value=0, step=1, key=f"{W}min_n", on_change=_on_change
    )
    bar.multiselect(
        "Exclude studies (sensitivity)",
        study_ids,
        key=f"{W}exclude",
        on_change=_on_change,
        placeholder="none",
    )
    bar.button("Reset filters", width="stretch", on_click=apply, args=(Filters(),))


def share_link_control(filters: Filters) -> None:
    """ "Copy link" in the sidebar, drawn with the page because the link changes with the filters
    (st.code has the copy button)."""
    with st.sidebar.popover("Copy link to this view", width="stretch"):
        st.caption("This link restores exactly this view:")
        st.code(share_link(filters), language=None, wrap_lines=True)


def require_entrypoint() -> None:
    """Make sure this run went through app.py (shared sidebar, the link's filters).

    A page opened by a deep link as the first request to a fresh server runs without app.py:
    Streamlit starts in its legacy `pages/`-folder mode until `st.navigation` has been called
    once (streamlit/runtime/pages_manager.py). The run is then restarted through app.py, which
    resolves the same URL. Every page calls this first (through `filters()` or directly).
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def filters() -> Filters:
    """The filters of this run, as app.py read them before the page started."""
    require_entrypoint()
    return st.session_state.get(SESSION_KEY, Filters())
