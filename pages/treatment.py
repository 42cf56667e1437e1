"""Treatment of ICANS: one forest plot per outcome, then subgroups with the test for differences."""

import streamlit as st

from evidence import analysis
from evidence.sheets import OUTCOME_LABELS
from evidence.ui import components, data, state

st.title("Treatment of ICANS with anakinra")
st.caption(
    "Single-arm rates among patients given anakinra for severe or steroid-refractory ICANS. They "
    "describe what was seen in treated patients (GRADE prognosis framing); without a comparator "
    "they cannot show that anakinra caused the response."
)
filters = state.filters().within("treatment")
if filters is None:
    st.info("The indication filter in the sidebar leaves out every treatment cohort.")
    st.stop()
active = data.active()
caption = components.slice_caption(filters)

results = data.outcomes(active, active.key, filters, analysis.TREATMENT_OUTCOMES)
components.outcome_sections(results, filters, caption, key_prefix="forest")

st.header("Subgroups")
chosen = filters.outcome if filters.outcome in analysis.TREATMENT_OUTCOMES else "icans_response"
dimension = (
    st.segmented_control(
        "Split by",
        list(analysis.SUBGROUP_DIMENSIONS),
        format_func=analysis.SUBGROUP_DIMENSIONS.get,
        default="product",
        key="treatment_subgroups",
    )
    or "product"
)
st.markdown(
    f"**{OUTCOME_LABELS[chosen]}** by {analysis.SUBGROUP_DIMENSIONS[dimension].lower()} "
    "(pick another outcome in the sidebar)"
)
result = results[analysis.TREATMENT_OUTCOMES.index(chosen)]
subgroups = data.subgroups(result, filters, dimension)
if subgroups is None:
    st.info("Subgroups need at least two studies reporting this outcome in the slice.")
else:
    test_line = components.subgroup_test_line(subgroups)
    components.chart(
        data.subgroup_spec(result, filters, dimension),
        f"subgroups_{chosen}_{dimension}",
        [caption, test_line],
    )
    st.markdown(test_line)
    st.caption("  \n".join([*subgroups.notes, caption]))
