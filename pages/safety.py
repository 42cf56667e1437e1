"""Safety: infections, deaths and their causes, grade 5 events, anakinra stopped for harm."""

import streamlit as st

from evidence import analysis
from evidence.sheets import OUTCOME_LABELS
from evidence.ui import components, data, state

st.title("Safety")
st.caption(
    "The review notes a high rate of infection-related deaths, including viral encephalitis, in "
    "this population. Few studies report safety as counts; every figure found is listed below "
    "with its quote, and counts are pooled where at least one study gives them."
)
filters = state.filters()
active = data.active()
cohorts = data.cohorts(active, active.key, filters)
caption = components.slice_caption(filters)

components.outcome_sections(
    data.outcomes(active, active.key, filters, analysis.SAFETY_OUTCOMES),
    filters,
    caption,
    key_prefix="safety",
)

st.header("Every safety figure reported")
rows = data.query(active, active.key, "outcome_rows", cohort_ids=tuple(cohorts["cohort_id"]))
safety = rows[rows["outcome"].isin(analysis.SAFETY_OUTCOMES)]
if safety.empty:
    st.info("No safety figure is reported in this slice.")
else:
    st.dataframe(
        safety.assign(outcome=safety["outcome"].map(OUTCOME_LABELS))[
            [
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
            ]
        ],
        hide_index=True,
        column_config={
            "label": "Cohort",
            "outcome": "Outcome",
            "value": "Printed value",
            "value_low": "Low",
            "value_high": "High",
            "use_in_analysis": st.column_config.CheckboxColumn("Used"),
            "quote": st.column_config.TextColumn("Quote", width="large"),
        },
    )
st.caption(caption)
