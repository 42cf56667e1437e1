"""Prophylaxis: ICANS and CRS under prophylactic anakinra, beside reported comparison cohorts."""

import streamlit as st

from evidence import analysis
from evidence.sheets import OUTCOME_LABELS
from evidence.ui import components, data, state

st.title("Anakinra to prevent ICANS")
st.caption(
    "Patients given anakinra before or at CAR-T infusion in prospective studies. Rates are "
    "single-arm unless a study reports its own comparison cohort (shown beside it)."
)
filters = state.filters().within("prophylaxis")
if filters is None:
    st.info("The indication filter in the sidebar leaves out every prophylaxis cohort.")
    st.stop()
active = data.active()
cohorts = data.cohorts(active, active.key, filters)
caption = components.slice_caption(filters)

for result in data.outcomes(active, active.key, filters, analysis.PROPHYLAXIS_OUTCOMES):
    code = result.outcome
    with st.container(border=True):
        st.subheader(result.label)
        components.pooled_block(result, filters)
        components.forest(result, filters, caption, key=f"forest_{code}")
        table, comparison = data.comparators(active, active.key, filters, code)
        if table.empty:
            st.caption("No study in this slice reports a comparison cohort for this outcome.")
            continue
        st.markdown("**Beside the study's own comparison cohort**")
        components.study_table(
            table,
            [
                "label",
                "events",
                "total",
                "value",
                "comparator_label",
                "events_comparator",
                "total_comparator",
                "value_comparator",
                "quote",
                "quote_comparator",
            ],
            hide_index=True,
            column_config={
                "label": "Anakinra cohort",
                "events": "Events",
                "total": "n",
                "value": "Printed %",
                "comparator_label": "Comparison cohort",
                "events_comparator": "Events",
                "total_comparator": "n",
                "value_comparator": "Printed %",
                "quote": st.column_config.TextColumn("Quote (anakinra)", width="medium"),
                "quote_comparator": st.column_config.TextColumn(
                    "Quote (comparison)", width="medium"
                ),
            },
        )
        if comparison is not None:
            ratio_line = (
                f"Mantel-Haenszel risk ratio {comparison.estimate:.2f} "
                f"(95% CI {comparison.ci_low:.2f}–{comparison.ci_high:.2f}), k = {comparison.k}. "
                "Historical or matched comparison cohorts, not randomised."
            )
            components.chart(
                data.comparator_spec(active, active.key, filters, code),
                f"ratio_{code}",
                [caption, ratio_line],
            )
            st.markdown(ratio_line)

st.header("Hospital stay and other reported figures")
rows = data.query(active, active.key, "outcome_rows", cohort_ids=tuple(cohorts["cohort_id"]))
other = rows[~rows["outcome"].isin(analysis.PROPHYLAXIS_OUTCOMES)]
if other.empty:
    st.info(
        "No other figure is reported for prophylaxis cohorts in this slice (hospital stay: "
        "not reported by any study the public record gives)."
    )
else:
    other = other.assign(outcome=other["outcome"].map(OUTCOME_LABELS))
    components.study_table(
        other,
        [
            "label",
            "outcome",
            "events",
            "total",
            "value",
            "unit",
            "statistic",
            "status",
            "quote",
            "source",
        ],
        hide_index=True,
        column_config={"quote": st.column_config.TextColumn("Quote", width="large")},
    )
st.caption(caption)
