"""Studies: every report, what was extracted from it, and where each number was read."""

import streamlit as st

from evidence.ui import accessible, components, data, state

TABLE_KEY = "studies_table"
COLUMNS = [
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

st.title("Studies and the provenance of every number")
rows = state.current_slice()
evidence = data.slice(rows)
studies = data.studies()
only_slice = st.toggle(
    "Only studies in the current slice",
    value=True,
    help="Off: every report, including registry records, duplicates of a counted report and "
    "reports without numbers.",
)
shown = studies[studies["study_id"].isin(evidence.study_ids())] if only_slice else studies
# Gaps in the record read as gaps; a report that is not a duplicate has nothing to say there.
shown = components.with_gaps(shown, not_reported=["first_author", "venue", "nct_id"])
shown = components.with_gaps(shown, blank=["same_patients_as"])
# A row picked here is the highlighted study everywhere; one picked in a chart is shaded here.
state.highlight(accessible.table_pick(shown, TABLE_KEY))
components.table(
    shown,
    COLUMNS,
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
components.caption(f"{len(shown)} of {len(studies)} reports shown. {rows.describe()}.")
# The keyboard's way to a row: the table's row selection takes a pointer.
accessible.study_picker(shown)
components.csv_download(shown[COLUMNS], "Download this table (CSV)", "anakinra_studies.csv")

study_id = components.highlighted()
picked = shown[shown["study_id"] == study_id]
if picked.empty:
    st.caption("Select a row to see where each of its numbers was read.")
else:
    record = picked.iloc[0]
    st.header(f"{components.study_heading(record)}: where every number was read")
    components.caption(f"{record['title']} — venue: {record['venue']}")
    if isinstance(record["notes"], str):
        components.caption(record["notes"])
    facts = data.study_facts(study_id)
    components.provenance(facts)
    numbers = data.numbers(tuple(facts["cohort_id"]))
    if numbers.empty:
        st.info(
            "No outcome number could be read for this study in the public record."
            if data.is_shipped()
            else "This data set holds no outcome number for this study."
        )
    else:
        components.table(
            numbers[
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
                    "caveat",
                    "source_url",
                ]
            ],
            hide_index=True,
            column_config={
                "quote": st.column_config.TextColumn("Quote", width="large"),
                "use_in_analysis": st.column_config.CheckboxColumn("Used"),
                "caveat": st.column_config.TextColumn("Caveat", width="large"),
                "source_url": st.column_config.LinkColumn("Source address"),
            },
        )
    quality = data.study_quality(study_id)
    if not quality.empty:
        st.markdown("**Study quality** (as far as the readable text allows)")
        components.table(quality, hide_index=True)
    components.exclusion_control("studies")
