"""The extraction: the sheets' contract, their validation, uploads, templates, exports and the
build that turns checked sheets into the DuckDB file the app reads.

Imports inside run one way: `contract`, `cells` -> `validate` -> `upload`, `template` ->
`build`, `export`; `worker` (a bounded process for an upload's check) imports none of them.
Nothing here imports the app (`evidence.ui`, `evidence.analysis`).
"""
