"""What serving the dashboard as one shared URL needs beyond the pages: no client clears what
other sessions share, ended sessions' uploads are let go, and the served data is checked before
anything is drawn (a plain "data unavailable" page that monitoring sees otherwise).

app.py calls `start(pages)` at the top of every run.
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import FragmentHandledException
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.app_session import AppSession

from evidence.ui import data, sessions, state

UNAVAILABLE_TITLE = "Data unavailable"


def start(pages: list[StreamlitPage]) -> None:
    """Before the sidebar and the page: this run marked as one through app.py (pages check it,
    state.require_entrypoint), the clear-cache guard, a sweep of ended sessions' uploads, then
    the plain "data unavailable" page if nothing can be served, else what had to be done to
    serve the data (a damaged file rebuilt)."""
    state.mark_entrypoint()
    guard_clear_cache()
    sessions.sweep_ended()
    found = data.served()
    if isinstance(found, data.Unavailable):
        unavailable_page(pages)
    if found.notice:
        st.warning(found.notice, icon=":material/build:")


def unavailable_page(pages: list[StreamlitPage]) -> None:
    """The page every address shows when no data can be served: a title, one sentence, what the
    host should do; no traceback. The run then ends as failed, without showing an error, so
    Streamlit's script health check (`/_stcore/script-health-check`, enabled in
    .streamlit/config.toml) answers 503 and the host's monitoring sees it.

    Streamlit counts a run as failed when the script raises (streamlit/runtime/scriptrunner/
    exec_code.py); FragmentHandledException is the one it counts without drawing the exception,
    as for a fragment that has shown its own error. The navigation is declared (hidden) so that
    every page's address lands here rather than on Streamlit's list of the pages/ folder.
    """
    st.navigation(pages, position="hidden")
    st.title(UNAVAILABLE_TITLE)
    st.write("This dashboard cannot open its evidence database, so it has no evidence to show.")
    st.caption(
        "If you host it: the server's log says what failed. Rebuild the database "
        "(`python -m evidence.extraction.build`) and restart the server; the script health "
        "check (`/_stcore/script-health-check`) fails until then."
    )
    raise FragmentHandledException(UNAVAILABLE_TITLE)


# ---- "Clear cache" from a client -----------------------------------------------------------
def guard_clear_cache() -> None:
    """Make a client's "clear cache" request (the `clear_cache` BackMsg, which any client can
    send) clear the state of the session that sent it only.

    Streamlit 1.67 handles it in `AppSession._handle_clear_cache_request`, which clears
    `st.cache_data` and `st.cache_resource` for every user of the process, the shared database
    connection with them, and has no option to turn that off. This replaces the handler, once per
    process; it is tied to the pinned Streamlit (docs/architecture.md, "Decisions").
    """
    if AppSession._handle_clear_cache_request is not _clear_own_session:
        AppSession._handle_clear_cache_request = _clear_own_session  # type: ignore[method-assign]


def _clear_own_session(self: AppSession) -> None:
    """The sender's own state: its upload (closed), its session state and its session-scoped
    caches; what every session shares stays."""
    sessions.release(self.id)
    self.session_state.clear()
    self.clear_session_caches()
