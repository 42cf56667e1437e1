"""Treatment of ICANS: one forest plot per outcome, then subgroups with the test for differences."""

import streamlit as st

from evidence.ui import components, data, state

st.title("Treatment of ICANS with anakinra")
st.caption(
    "Single-arm rates among patients given anakinra for severe or steroid-refractory ICANS. They "
    "describe what was seen in treated patients (GRADE prognosis framing); without a comparator "
    "they cannot show that anakinra caused the response."
)
view = state.current_view()
evidence = data.slice(state.page_slice("treatment"), view.method)
st.header("Outcomes")  # each outcome a section below it (h3): heading levels in order
components.outcome_sections(evidence, "treatment", key_prefix="forest")

st.header("Subgroups")
pooled = components.chosen_outcome(evidence.outcomes("treatment"), view)
split = components.split_control(view)
st.markdown(
    f"**{pooled.label}** by {components.split_label(split).lower()} "
    "(pick another outcome in the sidebar)"
)
subgroups = evidence.subgroups(pooled.outcome, split)
if subgroups is None:
    st.info("Subgroups need at least two studies reporting this outcome in the slice.")
else:
    caption = evidence.caption()
    test_line = components.subgroup_test_line(subgroups)
    components.chart(
        evidence.subgroup_spec(pooled.outcome, split),
        f"subgroups_{pooled.outcome}_{split}",
        [caption, test_line],
    )
    st.markdown(test_line)
    components.caption(*subgroups.notes, caption)
