"""Methods & data: how estimates are computed and checked, the data dictionary and version,
downloads, and loading a panel's own extraction for this browser session."""

from pathlib import Path

import streamlit as st

from evidence import exports, reference, template, workbook
from evidence.ui import data, state

ROOT = Path(__file__).resolve().parent.parent
state.require_entrypoint()
active = data.active()

st.title("Methods & data")
st.markdown(
    """
**Pooled proportions.** The primary analysis is the binomial-normal generalised linear mixed
model (random-intercept logistic regression, maximum likelihood, 7-point adaptive
Gauss-Hermite quadrature), as `metafor::rma.glmm(measure="PLO")`: it uses each study's exact
binomial likelihood, so studies with 0 events need no continuity correction (Stijnen et al.
2010; Lin & Chu 2020). The pooled value is the median (conditional) proportion. If the GLMM
does not converge the page says so and shows logit inverse-variance REML instead. Secondary:
inverse-variance on logits with REML τ² and Hartung-Knapp-Sidik-Jonkman confidence intervals
(Cochrane's 2025 defaults), with metafor's 0.5 correction for studies with 0 or all events.
Freeman-Tukey is offered only as a labelled sensitivity analysis (Schwarzer et al. 2019).
DerSimonian-Laird is kept to reproduce published analyses.

**Intervals.** Per-study 95% CIs are exact (Clopper-Pearson). Prediction intervals are
computed as metafor's `predict()`: μ ± z·√(SE² + τ²) for z-based tests, t with k−1 df for
Hartung-Knapp. With fewer than 3 studies no prediction interval is shown.

**Comparisons** (anakinra vs a study's comparison cohort, higher vs lower dose within a study)
use the Mantel-Haenszel risk ratio (`metafor::rma.mh`), which needs no correction for zero
cells. **Subgroups** use a categorical moderator (mixed-effects model, common τ²), with the
Q test for subgroup differences; **dose** uses a REML meta-regression on mg/day.

**Certainty of evidence.** Single-arm rates are rated with GRADE's guidance for overall
prognosis / event rates (Iorio et al., BMJ 2015;350:h870): they describe what happens in treated
patients. Whether anakinra *causes* the response is an intervention question, for which
uncontrolled case series start at very low certainty.
"""
)
st.subheader("Agreement with R metafor")
summary = reference.agreement_summary()
st.markdown(summary.headline)
st.dataframe(summary.table, hide_index=True)
st.caption(summary.versions)

st.subheader("Data version")
info = data.query(active, active.key, "build_info")
st.dataframe(info, hide_index=True)
st.dataframe(data.query(active, active.key, "table_counts"), hide_index=True)

st.subheader("Downloads")
left, middle, right = st.columns(3)
left.download_button(
    "Extraction in use (XLSX)",
    exports.export_workbook(active.con),
    "anakinra_extraction.xlsx",
    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
middle.download_button(
    "Extraction in use (CSV, zipped)",
    exports.export_csv_zip(active.con),
    "anakinra_extraction.zip",
    mime="application/zip",
)
if not active.is_upload:
    right.download_button(
        "Database file (DuckDB)",
        data.database_path().read_bytes(),
        "anakinra.duckdb",
        mime="application/octet-stream",
    )
left.download_button(
    "Empty template (XLSX)",
    template.template_workbook(),
    "anakinra_template.xlsx",
    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
middle.download_button(
    "Empty template (CSV, zipped)",
    template.template_csv_zip(),
    "anakinra_template.zip",
    mime="application/zip",
)

st.subheader("Use your own extraction")
st.markdown(
    "Upload a workbook made from the template (or the export above, edited), or a zip of the "
    "CSV sheets. It is checked with the same rules as the shipped data; if it passes, every "
    "page uses it **for your browser session only**. The shipped data is never changed."
)
upload = st.file_uploader("Extraction workbook (.xlsx) or zipped CSVs (.zip)", type=["xlsx", "zip"])
if upload is not None and st.button("Check and use this extraction", type="primary"):
    con, problems = workbook.load_upload(upload.name, upload.getvalue())
    if problems:
        st.error(
            f"{len(problems)} problem(s) found; nothing was loaded. Fix them and upload again."
        )
        st.dataframe(
            [
                {"sheet": p.file, "row": p.row, "column": p.column, "problem": p.message}
                for p in problems
            ],
            hide_index=True,
        )
    else:
        data.use_upload(con, upload.name)
        st.rerun()

st.subheader("Data dictionary")
st.markdown((ROOT / "data" / "README.md").read_text(encoding="utf-8"))
