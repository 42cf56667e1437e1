"""Overview: the slice in numbers, the key pooled outcomes, and the review's figures checked."""

import streamlit as st

from evidence.ui import components, data, state

rows, view = state.current_slice(), state.current_view()
evidence = data.slice(rows, view.method)
summary = evidence.summary

st.title("Anakinra for ICANS after CAR-T cell therapy")
st.markdown(
    "Evidence on anakinra, an IL-1 receptor antagonist, given to adults with relapsed or "
    "refractory aggressive B-cell lymphoma after CAR-T cell therapy, to **treat** severe or "
    "steroid-refractory neurotoxicity (ICANS) or to **prevent** it. Every number links to the "
    "sentence it was read in (Studies page). Use the sidebar to slice by product, dose, "
    "indication and grading system; every page follows."
)
columns = st.columns(4)
columns[0].metric("Studies in slice", summary.studies)
columns[1].metric("Cohorts", summary.cohorts)
columns[2].metric("Patients (where reported)", summary.patients)
columns[3].metric("Cohorts with n not reported", summary.cohorts_without_n)
components.caption(evidence.caption())

st.header("Key pooled outcomes")
components.glossary()
key_outcomes = data.key_outcomes(rows, view.method)
for card, (population, code, scoped) in zip(
    st.columns(len(key_outcomes)), key_outcomes, strict=True
):
    with card.container(border=True, key=f"card_{code}"):
        components.outcome_card(population, code, scoped)

st.header("The review's headline figures, checked")
if data.is_shipped():
    st.markdown(
        "The review (SIE/GITMO/SIDEM CAR-T guideline programme; search to 1 April 2022) does not "
        "list its 15 studies, and the public record gives only part of their numbers. Each "
        "figure is shown with the review's words and the build's recomputation; a figure the "
        "database cannot reproduce is explained, not adjusted. (The review calls anakinra a "
        "monoclonal antibody; it is a recombinant IL-1 receptor antagonist.)"
    )
else:
    st.markdown(
        "The review's headline figures as this data set records them, each with the build's "
        "recomputation from the data in use."
    )
figures = data.review_figures()
components.table(
    figures[["description", "quote", "check_message", "percent_check", "sum_check", "note"]],
    hide_index=True,
    column_config={
        "description": "Figure",
        "quote": st.column_config.TextColumn("The review's words", width="large"),
        "check_message": "Recomputed",
        "percent_check": "Percent check",
        "sum_check": "Sum check",
        "note": st.column_config.TextColumn("Explanation", width="large"),
    },
)
st.markdown("**What this database holds** (anakinra cohorts, each patient group counted once)")
components.table(
    data.holdings(),
    hide_index=True,
    column_config={
        "indication": "Indication",
        "in_review_window": st.column_config.CheckboxColumn("In review window"),
        "studies": "Studies",
        "cohorts": "Cohorts",
        "patients": "Patients (reported)",
        "cohorts_without_n": "Cohorts, n not reported",
        "studies_without_numbers": "Studies identified, no numbers",
    },
)
