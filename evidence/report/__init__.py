"""The report bundle: the evidence of one slice carried out of the app.

`bundle.build(con, rows, view)` makes every file in memory (`report.html`, `reproduce.R`,
`references.ris`, `references.bib`, `tables.xlsx` and the CSVs, `results.json`, `bundle.zip`)
from the same library functions the dashboard's pages use (`evidence.analysis`, `evidence.sof`,
`evidence.charts`); `python -m evidence.report` writes them into a folder, and the app's
"Download report bundle" button serves the zip. No Streamlit here.
"""
