"""Meeting mode: the pages as a panel reads them from a projector (`mode=meeting` in the link, or
the sidebar's "Meeting mode" toggle; the view carries it, so a copied link opens in it).

Streamlit 1.67's theme belongs to the server (there is no per-session theme), so meeting mode is
what this session's page carries:

- CSS (`STYLE`): body text 28 px and more on a 1920x1080 screen, every text at 7:1 contrast or
  more against its background (WCAG AAA 1.4.6: a projector loses contrast), the sidebar and
  Streamlit's toolbar hidden, download buttons (of no use on a projector) hidden;
- charts in the "meeting" style (evidence.charts.STYLES: chart text 22 px and more), which the
  facade draws for this session (`data.chart_style`, set from the view by state.py);
- a header with the slice in words and the way back to the desk view, and the pages in a bar
  along the top (the sidebar is hidden);
- one outcome per screen: every outcome section (a container keyed `outcome_…`, or a Summary of
  findings row keyed `sof_…`) is at least a screen tall, and PageDown / PageUp, the keys a
  presentation clicker sends, step between them (`static/meeting.js`, served from the app's own
  static folder so the proxy's Content-Security-Policy, scripts from the app only, allows it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import streamlit as st

from evidence.filters import Slice, View
from evidence.format import plain
from evidence.ui import data, state

MEETING = "meeting"
SCREEN = "screen"
TOGGLE_KEY = state.VIEW_WIDGET.format("mode")
HEADER_KEY = "meeting_header"  # static/meeting.js finds the header by this key
# A page's outcome sections are containers keyed with this prefix (static/meeting.js steps
# through them, and the Summary of findings' rows, keyed "sof_…").
SECTION_PREFIX = "outcome_"
SCRIPT = "app/static/meeting.js"  # relative to the page: works under a base URL path too
TEXT = "#1A1A1A"  # the theme's text colour: 17.4:1 on white
LINK = "#004A80"  # a darker Okabe-Ito blue for links: 9.1:1 on white (the theme's is 5.2:1)
BODY_PX = 28

STYLE = f"""
<style>
html {{ font-size: {BODY_PX}px !important; }}
header[data-testid="stHeader"], [data-testid="stSidebar"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stDecoration"],
[data-testid="stDownloadButton"] {{ display: none !important; }}
[data-testid="stMainBlockContainer"] {{
  max-width: 100% !important; padding: 0 1.2rem 2rem 1.2rem !important;
}}
[data-testid="stMain"] h1 {{ font-size: 1.6rem !important; padding: 0.3rem 0 !important; }}
[data-testid="stMain"] h2 {{ font-size: 1.4rem !important; padding: 0.3rem 0 !important; }}
[data-testid="stMain"] h3 {{ font-size: 1.2rem !important; padding: 0.2rem 0 !important; }}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] *,
[data-testid="stWidgetLabel"], [data-testid="stWidgetLabel"] *,
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *,
[data-testid="stMarkdownContainer"] :is(table, small, code),
[data-testid="stMain"] button *, [data-testid="stFileUploaderDropzoneInstructions"] *,
[data-testid="stExpander"] summary * {{ font-size: 1rem !important; }}
[data-testid="stMain"] :is(p, li, td, th, label, span, strong, em, summary, small, div),
[data-testid="stMain"] :is(h1, h2, h3, h4) {{ color: {TEXT} !important; }}
[data-testid="stMain"] * {{ opacity: 1 !important; }}
[data-testid="stMain"] a, [data-testid="stMain"] a * {{ color: {LINK} !important; }}
[data-testid="stLayoutWrapper"]:has(> .st-key-{HEADER_KEY}) {{
  position: sticky; top: 0; z-index: 100; background: #FFFFFF;
  border-bottom: 0.1rem solid {TEXT}; padding: 0.3rem 0;
}}
[class*="st-key-{SECTION_PREFIX}"], [class*="st-key-sof_"] {{ min-height: 100vh; }}
</style>
"""


def is_on(view: View) -> bool:
    return view.mode == MEETING


def navigation_position(view: View) -> str:
    """Where the pages are listed: in the sidebar, or, in meeting mode (the sidebar hidden), in
    the header's "Pages" menu."""
    return "hidden" if is_on(view) else "sidebar"


def sidebar(view: View) -> None:
    """The sidebar's switch into meeting mode (the header has the way back), and in meeting mode
    the page's CSS. The CSS is drawn first thing in the sidebar, which comes before the page,
    so the page never shows without it (Streamlit sends a style-only st.html to a container it
    draws after the page: the sidebar would show for a moment); it acts wherever it is drawn."""
    if is_on(view):
        st.sidebar.html(STYLE + '<span hidden=""></span>')
    st.session_state[TOGGLE_KEY] = is_on(view)
    st.sidebar.toggle(
        "Meeting mode (projector)",
        key=TOGGLE_KEY,
        on_change=_on_toggle,
        help="Large type, no sidebar, one outcome per screen: PageDown and PageUp (or a "
        "presentation clicker) step between outcomes. The link carries it (mode=meeting).",
    )


def _on_toggle() -> None:
    _use(MEETING if st.session_state[TOGGLE_KEY] else SCREEN)


def _use(mode: str) -> None:
    """Switch the display mode; the whole app reruns (the sidebar and the charts change)."""
    state.apply_everywhere(view=replace(state.stored_view(), mode=mode))


def frame(rows: Slice, view: View, pages: Sequence[st.Page]) -> None:
    """In meeting mode, the page's header, sticky at the top: the slice in words, the pages and
    the way back to the desk view; and the script of its keys. Nothing in screen mode."""
    if not is_on(view):
        return
    with st.container(key=HEADER_KEY, horizontal=True, vertical_alignment="center"):
        words = data.slice(rows, view.method).caption()
        st.markdown(f"**Slice:** {plain(words)}", width="stretch")
        with st.popover("Pages"):
            for page in pages:
                st.page_link(page)
        st.button(
            "Leave meeting mode",
            key="meeting_leave",
            on_click=_use,
            args=(SCREEN,),
            help="Back to the desk view, with the sidebar.",
        )
        st.html(f'<script src="{SCRIPT}"></script>', unsafe_allow_javascript=True, width=1)
