"""Prophylaxis: ICANS and CRS under prophylactic anakinra, beside reported comparison cohorts."""

import streamlit as st

from evidence.ui import components, data, state

st.title("Anakinra to prevent ICANS")
st.caption(
    "Patients given anakinra before or at CAR-T infusion in prospective studies. Rates are "
    "single-arm unless a study reports its own comparison cohort (shown beside it)."
)
view = state.current_view()
evidence = data.slice(state.page_slice("prophylaxis"), view.method)
caption = evidence.caption()

st.header("Outcomes")  # each outcome a section below it (h3): heading levels in order
for pooled in evidence.outcomes("prophylaxis"):
    code = pooled.outcome
    with st.container(border=True, key=f"outcome_{code}"):  # a stop of meeting mode's keys
        st.subheader(pooled.label)
        components.pooled_block(evidence, pooled)
        components.forest(evidence, pooled, key=f"forest_{code}")
        table, comparison = evidence.comparators(code)
        if table.empty:
            st.caption("No study in this slice reports a comparison cohort for this outcome.")
            continue
        st.markdown("**Beside the study's own comparison cohort**")
        components.table(
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
                components.risk_ratio_line(comparison, "anakinra vs comparison cohort")
                + " Historical or matched comparison cohorts, not randomised."
            )
            components.chart(evidence.comparator_spec(code), f"ratio_{code}", [caption, ratio_line])
            st.markdown(ratio_line)

st.header("Hospital stay and other reported figures")
other = evidence.numbers(besides="prophylaxis", with_comparators=True)
if other.empty:
    st.info("No other figure is reported for prophylaxis cohorts in this slice.")
else:
    components.table(
        other,
        [
            "arm",
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
components.caption(caption)
