"""Dose: outcome against anakinra mg/day across studies; higher vs lower dose within studies."""

import streamlit as st

from evidence.ui import components, data, state

st.title("Anakinra dose")
if data.is_shipped():
    st.caption(
        "The review reports higher response with more than 200 mg/day and, in one study, early "
        "mortality of 84% vs 7% between dose groups; no public source read so far reproduces "
        "those two figures (see Overview)."
    )
st.caption(
    "Between-study dose comparisons are observational: centres that give higher doses differ in "
    "other ways too."
)
view = state.current_view()
evidence = data.slice(state.current_slice(), view.method)
code = view.outcome_or("icans_response")
pooled = evidence.outcome(code)
st.header(f"{pooled.label} against dose (pick the outcome in the sidebar)")

spec = evidence.dose_spec(code, components.highlighted())
if spec is None:
    st.info("No cohort in this slice reports both this outcome as a count and a mg/day dose.")
else:
    chart_caption = (
        f"{evidence.caption()}. Bubble area = patients; horizontal lines = reported dose range; "
        "dashed line = the review's 200 mg/day split."
    )
    regression_line = components.regression_line(evidence, code)
    components.selectable_chart(spec, f"dose_{code}", [chart_caption, regression_line])
    components.caption(chart_caption)
    components.exclusion_control("dose")
    components.provenance_of_number(evidence, code)
    if evidence.dose_regression(code) is None:
        st.info(regression_line)
    else:
        st.markdown(regression_line)
undosed = evidence.cohorts_without_dose(code)
if undosed:
    components.caption(
        "Not in the chart (no mg/day dose reported, e.g. weight-based dosing): "
        + "; ".join(undosed)
    )

st.header("Higher vs lower dose within the same study")
table, comparison = evidence.dose_comparisons(code)
if table.empty:
    st.info("No study in this slice reports this outcome separately for two dose levels.")
else:
    components.table(table, list(table.columns), hide_index=True)
    if comparison is not None:
        st.markdown(components.risk_ratio_line(comparison, "higher vs lower dose"))
