"""Methods & data: how estimates are computed and checked, the data dictionary and version,
downloads, and loading a panel's own extraction for this browser session."""

import streamlit as st

from evidence.ui import components, data, state

state.require_entrypoint()

st.title("Methods & data")
st.markdown(data.document("methods"))

st.header("Agreement with R metafor")
agreement = data.agreement()
st.markdown(agreement.headline)
components.table(agreement.table, hide_index=True)
st.caption(agreement.versions)

st.header("Data version")
components.table(data.build_info())
components.table(data.table_counts(), hide_index=True)

st.header("Downloads")
components.downloads(
    [*data.downloads(), data.report_download(state.current_slice(), state.current_view())]
)

st.header("Use your own extraction")
st.markdown(
    "Upload a workbook made from the template (or the export above, edited), or a zip of the "
    "CSV sheets. It is checked with the same rules as the shipped data; if it passes, every "
    + (
        "page uses it, and **this page's link opens it for anyone who has the link** (send it "
        "to the panel): the server keeps the checked sheets under an identifier nobody can "
        "guess. The shipped data is never changed."
        if data.sharing()
        else "page uses it **for your browser session only**. The shipped data is never changed."
    )
)
upload = st.file_uploader("Extraction workbook (.xlsx) or zipped CSVs (.zip)", type=["xlsx", "zip"])
if upload is not None and st.button("Check and use this extraction", type="primary"):
    problems = data.use_upload_if_valid(upload.name, upload.getvalue())
    if problems:
        components.problems(problems)
    else:
        st.rerun()

st.header("Data dictionary")
st.markdown(data.document("data dictionary"))
