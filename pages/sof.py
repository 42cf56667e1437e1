"""Summary of findings: per outcome, how many studies and patients, the estimate, and how certain
the evidence is, domain by domain, suggested from the data and decided by the panel."""

import streamlit as st

from evidence.ui import components, data, grading, state

st.title("Summary of findings")
st.caption(
    "One row per outcome this slice can speak to. Rates among treated patients follow GRADE's "
    "overall-prognosis framing (they start at high certainty and are rated down); comparisons "
    "between non-randomised cohorts start low. Each domain shows the figures behind a suggested "
    "level; the panel decides, and its reasons become footnotes. Decisions and thresholds travel "
    "with the link."
)
rows, view = state.current_slice(), state.current_view()
grading.other_data_notice(view)
summary = data.summary_of_findings(rows, view.method, grading.panel_in_force(view))
components.caption(data.slice(rows, view.method).caption())
components.downloads([data.report_download(rows, view)])
grading.table(summary)
grading.sections(summary)
grading.footnotes(summary.footnotes)
