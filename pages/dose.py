"""Dose: outcome against anakinra mg/day across studies; higher vs lower dose within studies."""

import streamlit as st

from evidence import analysis
from evidence.sheets import OUTCOME_LABELS
from evidence.ui import components, data, state
from evidence.ui.format import number

st.title("Anakinra dose")
st.caption(
    "The review reports higher response with more than 200 mg/day and, in one study, early "
    "mortality of 84% vs 7% between dose groups; no public source read so far reproduces those "
    "two figures (see Overview). Between-study dose comparisons are observational: centres that "
    "give higher doses differ in other ways too."
)
filters = state.filters()
active = data.active()
chosen = filters.outcome or "icans_response"
result = data.outcome(active, active.key, filters, chosen)
caption = components.slice_caption(filters)
st.subheader(f"{OUTCOME_LABELS[chosen]} against dose (pick the outcome in the sidebar)")

points = analysis.dose_points(result.rows)
regression = data.dose_regression(result, filters)
if points.empty:
    st.info("No cohort in this slice reports both this outcome as a count and a mg/day dose.")
else:
    chart_caption = (
        f"{caption}. Bubble area = patients; horizontal lines = reported dose range; "
        "dashed line = the review's 200 mg/day split."
    )
    if regression is None:
        regression_line = (
            f"Meta-regression needs at least {analysis.MIN_STUDIES_FOR_REGRESSION} cohorts with "
            "different mg/day doses; this slice has "
            f"{len(points)} cohort(s) with {points['dose_mid'].nunique()} distinct dose(s)."
        )
    else:
        regression_line = (
            f"Meta-regression (logit scale, REML): slope per 100 mg/day "
            f"{number(100 * regression.slope, 3)} "
            f"(95% CI {number(100 * regression.ci_low_slope, 3)} to "
            f"{number(100 * regression.ci_high_slope, 3)}), p = {number(regression.p_slope, 3)}, "
            f"residual τ² = {number(regression.tau2, 3)}, k = {regression.k}."
        )
    spec = data.dose_spec(result, filters, components.highlighted())
    components.selectable_chart(spec, f"dose_{chosen}", [chart_caption, regression_line])
    st.caption(chart_caption)
    components.exclusion_control("dose")
    if regression is None:
        st.info(regression_line)
    else:
        st.markdown(regression_line)
missing = result.rows[result.rows["dose_mg_day_max"].isna()]
if not missing.empty:
    st.caption(
        "Not in the chart (no mg/day dose reported, e.g. weight-based dosing): "
        + "; ".join(missing["label"])
    )

st.subheader("Higher vs lower dose within the same study")
table, comparison = data.dose_comparisons(result)
if table.empty:
    st.info("No study in this slice reports this outcome separately for two dose levels.")
else:
    components.study_table(table, list(table.columns), hide_index=True)
    if comparison is not None:
        st.markdown(
            f"Mantel-Haenszel risk ratio, higher vs lower dose: {number(comparison.estimate)} "
            f"(95% CI {number(comparison.ci_low)}–{number(comparison.ci_high)}), "
            f"k = {comparison.k}."
        )
