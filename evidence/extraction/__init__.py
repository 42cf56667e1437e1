"""The extraction: the sheets' contract, their validation, uploads, templates, exports and the
build that turns checked sheets into the DuckDB file the app reads.

Imports inside run one way: `contract`, `cells` -> `validate` -> `upload`, `template` ->
`build`, `export`. Nothing here imports the app (`evidence.ui`, `evidence.analysis`).
"""
