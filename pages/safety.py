"""Safety: infections, deaths and their causes, grade 5 events, anakinra stopped for harm."""

import streamlit as st

from evidence.ui import components, data, state

st.title("Safety")
st.caption(
    "The review notes a high rate of infection-related deaths, including viral encephalitis, in "
    "this population. Few studies report safety as counts; every figure found is listed below "
    "with its quote, and counts are pooled where at least one study gives them."
)
rows, view = state.current_slice(), state.current_view()
evidence = data.slice(rows, view.method)
components.glossary()
for population, title in (
    ("treatment", "In patients given anakinra for ICANS"),
    ("prophylaxis", "In patients given anakinra as prophylaxis"),
):
    scoped = rows.within(population)
    if scoped is None:
        continue
    st.header(title)
    components.outcome_sections(
        data.slice(scoped, view.method), "safety", key_prefix=f"safety_{population}"
    )

st.header("Every safety figure reported")
safety = evidence.numbers(only="safety")
if safety.empty:
    st.info("No safety figure is reported in this slice.")
else:
    components.table(
        safety,
        [
            "indication",
            "label",
            "outcome",
            "events",
            "total",
            "value",
            "value_low",
            "value_high",
            "unit",
            "statistic",
            "timepoint",
            "status",
            "use_in_analysis",
            "quote",
            "source",
        ],
        hide_index=True,
        column_config={
            "indication": "Patients given anakinra for",
            "label": "Cohort",
            "outcome": "Outcome",
            "value": "Printed value",
            "value_low": "Low",
            "value_high": "High",
            "use_in_analysis": st.column_config.CheckboxColumn("Used"),
            "quote": st.column_config.TextColumn("Quote", width="large"),
        },
    )
components.caption(evidence.caption())
