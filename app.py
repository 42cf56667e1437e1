"""Anakinra for ICANS after CAR-T: the evidence dashboard's entry point.

Page config, navigation and the shared sidebar; every page below reads the same filters.
"""

import streamlit as st

from evidence.ui import components, state

st.set_page_config(
    page_title="Anakinra for ICANS after CAR-T — evidence dashboard",
    page_icon=":material/neurology:",
    layout="wide",
)

navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
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
)
current, link_notices = state.current()
state.sidebar(current)
components.data_banner()
components.notices(link_notices)
navigation.run()
