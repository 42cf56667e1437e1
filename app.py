"""Anakinra for ICANS after CAR-T: the evidence dashboard's entry point.

Page config, navigation and the shared sidebar; every page below reads the same filters.
"""

import streamlit as st

from evidence.ui import components, data, meeting, serving, state

st.set_page_config(
    page_title="Anakinra for ICANS after CAR-T — evidence dashboard",
    page_icon=":material/neurology:",
    layout="wide",
)


def pages() -> list[st.Page]:
    """The app's pages, in the sidebar's order."""
    return [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page(
            "pages/sof.py",
            title="Summary of findings",
            icon=":material/fact_check:",
            url_path="sof",
        ),
        st.Page(
            "pages/treatment.py",
            title="Treatment",
            icon=":material/medication:",
            url_path="treatment",
        ),
        st.Page(
            "pages/prophylaxis.py",
            title="Prophylaxis",
            icon=":material/shield:",
            url_path="prophylaxis",
        ),
        st.Page("pages/dose.py", title="Dose", icon=":material/trending_up:", url_path="dose"),
        st.Page("pages/safety.py", title="Safety", icon=":material/warning:", url_path="safety"),
        st.Page(
            "pages/studies.py", title="Studies", icon=":material/menu_book:", url_path="studies"
        ),
        st.Page(
            "pages/methods.py",
            title="Methods & data",
            icon=":material/science:",
            url_path="methods",
        ),
    ]


serving.start(pages())  # the served data checked: a plain "data unavailable" page otherwise
rows, view = state.current()
meeting.sidebar(view)
state.sidebar(rows, view)


@st.fragment(key=state.PAGE_FRAGMENT)
def page() -> None:
    """Navigation and the page: everything a filter changes. A sidebar change reruns this alone
    (state._on_change); st.navigation is called here because a page runs once per call of it."""
    view = state.current_view()
    navigation = st.navigation(pages(), position=meeting.navigation_position(view))
    meeting.frame(state.current_slice(), view, pages())
    state.share_link_control(state.current_slice(), view)
    components.data_banner()
    components.notices(state.link_notices())
    components.empty_slice_notice(data.slice(state.current_slice()))
    navigation.run()


page()
