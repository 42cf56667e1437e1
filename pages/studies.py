"""Studies: every report, what was extracted from it, and where each number was read."""

import pandas as pd
import streamlit as st

from evidence import exports
from evidence.sheets import OUTCOME_LABELS
from evidence.ui import components, data, state
from evidence.ui.format import NOT_REPORTED

TABLE_KEY = "studies_table"

st.title("Studies and the provenance of every number")
filters = state.filters()
active = data.active()
cohorts = data.cohorts(active, active.key, filters)
studies = data.query(active, active.key, "studies_table")
in_slice = set(cohorts["study_id"])
only_slice = st.toggle(
    "Only studies in the current slice",
    value=True,
    help="Off: every report, including registry records, duplicates of a counted report and "
    "reports without numbers.",
)
shown = studies[studies["study_id"].isin(in_slice)] if only_slice else studies
shown = shown.assign(
    pubmed=[
        f"https://pubmed.ncbi.nlm.nih.gov/{int(p)}/" if pd.notna(p) else None for p in shown["pmid"]
    ],
    doi_link=[f"https://doi.org/{d}" if isinstance(d, str) and d else None for d in shown["doi"]],
    in_slice=shown["study_id"].isin(in_slice),
)
# Gaps in the record read as gaps, not as "None".
text_columns = ["first_author", "venue", "nct_id"]
shown = shown.astype({c: object for c in [*text_columns, "same_patients_as"]})
shown[text_columns] = shown[text_columns].where(shown[text_columns].notna(), NOT_REPORTED)
shown["same_patients_as"] = shown["same_patients_as"].where(shown["same_patients_as"].notna(), "")
columns = [
    "study_id",
    "first_author",
    "year",
    "title",
    "venue",
    "publication_type",
    "design",
    "in_review_window",
    "review_inclusion",
    "extraction_status",
    "same_patients_as",
    "n_numbers",
    "pubmed",
    "doi_link",
    "nct_id",
]
# A row picked here is the highlighted study everywhere; one picked in a chart is shaded here.
study_id = components.picked_row(shown, TABLE_KEY)
components.highlight(study_id)
components.study_table(
    shown,
    columns,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key=TABLE_KEY,
    column_config={
        "study_id": "Study",
        "first_author": "First author",
        "year": st.column_config.NumberColumn("Year", format="%d"),
        "title": st.column_config.TextColumn("Title", width="large"),
        "venue": "Venue",
        "publication_type": "Type",
        "design": "Design",
        "in_review_window": st.column_config.CheckboxColumn("In review window"),
        "review_inclusion": "Among the review's 15?",
        "extraction_status": "Extraction",
        "same_patients_as": "Same patients as",
        "n_numbers": "Numbers extracted",
        "pubmed": st.column_config.LinkColumn("PubMed", display_text="PMID"),
        "doi_link": st.column_config.LinkColumn("DOI", display_text="DOI"),
        "nct_id": "Registry",
    },
)
st.caption(f"{len(shown)} of {len(studies)} reports shown. {filters.describe()}.")
st.download_button(
    "Download this table (CSV)",
    exports.frame_to_csv(shown[columns]),
    "anakinra_studies.csv",
    mime="text/csv",
)

if study_id:
    record = shown[shown["study_id"] == study_id].iloc[0]
    author = study_id if record["first_author"] == NOT_REPORTED else record["first_author"]
    year = "" if pd.isna(record["year"]) else int(record["year"])
    st.header(f"{author} {year}: where every number was read")
    st.markdown(f"*{record['title']}* — venue: {record['venue']}")
    if isinstance(record["notes"], str):
        st.caption(record["notes"])
    facts = data.query(active, active.key, "cohort_facts", study_ids=(study_id,))
    for fact in facts.itertuples():
        with st.expander(f"Cohort: {fact.label} ({fact.arm}, {fact.indication})", expanded=True):
            for name, value, source, locator, quote in (
                ("Patients", fact.n_patients, fact.n_source, fact.n_locator, fact.n_quote),
                (
                    "Products",
                    fact.products,
                    fact.product_source,
                    fact.product_locator,
                    fact.product_quote,
                ),
                (
                    "Dose",
                    fact.schedule or fact.dose_band,
                    fact.dose_source,
                    fact.dose_locator,
                    fact.dose_quote,
                ),
                (
                    "Grading",
                    fact.grading_system,
                    fact.grading_source,
                    fact.grading_locator,
                    fact.grading_quote,
                ),
            ):
                shown_value = "not reported" if value is None or value != value else value
                where = f" — {source}, {locator}: “{quote}”" if quote else ""
                st.markdown(f"**{name}:** {shown_value}{where}")
    numbers = data.query(active, active.key, "outcome_rows", cohort_ids=tuple(facts["cohort_id"]))
    if numbers.empty:
        st.info("No outcome number could be read for this study in the public record.")
    else:
        st.dataframe(
            numbers.assign(outcome=numbers["outcome"].map(OUTCOME_LABELS))[
                [
                    "label",
                    "outcome",
                    "events",
                    "total",
                    "value",
                    "unit",
                    "status",
                    "use_in_analysis",
                    "source",
                    "source_kind",
                    "locator",
                    "quote",
                    "derivation",
                    "conflict_note",
                    "source_url",
                ]
            ],
            hide_index=True,
            column_config={
                "quote": st.column_config.TextColumn("Quote", width="large"),
                "use_in_analysis": st.column_config.CheckboxColumn("Used"),
                "source_url": st.column_config.LinkColumn("Source address"),
            },
        )
    quality = data.query(active, active.key, "quality_items", study_ids=(study_id,))
    if not quality.empty:
        st.markdown("**Study quality** (as far as the readable text allows)")
        st.dataframe(quality, hide_index=True)
    components.exclusion_control("studies")
else:
    st.caption("Select a row to see where each of its numbers was read.")
