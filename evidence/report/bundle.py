"""The report bundle of one slice, made in memory: {file name: bytes}.

    files = bundle.build(con, rows, view)
    files["bundle.zip"]  # every other file, zipped

The command line (`python -m evidence.report`) and the app's "Download report bundle" both call
`build`, so for the same query and data they give the same files; the time the report was made
(in report.html only) is the one thing that differs. Everything else is deterministic: sorted
zip entries with a fixed date, a workbook with a fixed creation date, no time anywhere else.

The panel's judgements are applied as the Summary of findings page applies them: judgements a
link made on other data (`graded_on` another data version) are not applied, and the report says
so.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import tomllib
import zipfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pandas as pd

from evidence import db
from evidence.extraction import build as extraction_build
from evidence.filters import Slice, View, link_params
from evidence.grade import PanelSettings
from evidence.report import html, numbers, references, results, rscript, tables

ROOT = extraction_build.ROOT
APP = "Anakinra-for-ICANS evidence dashboard"
FILES = (
    "report.html",
    "reproduce.R",
    "references.ris",
    "references.bib",
    "tables.xlsx",
    "results.json",
    "results.schema.json",
)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # every zip entry's date: the same bundle, the same bytes


def query_string(rows: Slice, view: View) -> str:
    """The dashboard link's query string for this slice and view, in its canonical form."""
    return urlencode(link_params(rows, view), doseq=True)


def panel_in_force(panel: PanelSettings, data_version: str) -> tuple[PanelSettings, list[str]]:
    """The panel's settings that apply to this data (as evidence.ui.grading.panel_in_force): a
    link's judgements made on another data version are not applied, with a notice saying so."""
    if panel.data_version and panel.data_version != data_version[:12]:
        return PanelSettings(), [
            f"The panel's judgements in this link were made on data version {panel.data_version}; "
            f"the data is {data_version[:12]}. They are not applied in this report (the Summary "
            "of findings page offers to apply them after checking)."
        ]
    return panel, []


@cache
def app_version() -> str:
    try:
        with (ROOT / "pyproject.toml").open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


@cache
def commit() -> str:
    """The checkout's commit ("unknown" without git), marked when files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10,
            check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def data_label(info: dict[str, str]) -> str:
    """The data in words, the same whichever way it was loaded (upload, --data, served file)."""
    if info.get("origin_kind", extraction_build.SHIPPED_SHEETS) == extraction_build.SHIPPED_SHEETS:
        return "the shipped extraction (data/extraction)"
    return f"the extraction “{Path(info.get('origin', 'unknown')).name}”"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def build(
    con: duckdb.DuckDBPyConnection, rows: Slice, view: View, generated: str | None = None
) -> dict[str, bytes]:
    """Every file of the bundle for `rows` and `view` of the database behind `con`."""
    info = dict(db.run(con, "build_info").itertuples(index=False))
    version = info["sheets_sha256"]
    panel, notices = panel_in_force(view.panel, version)
    query = query_string(rows, view)
    found = numbers.gather(con, rows, view, panel)
    document = results.document(found, query, version, notices)

    cohorts = db.run(con, "cohort_slice", **rows.sql_params())
    study_ids = list(dict.fromkeys(cohorts["study_id"]))
    every_study = db.run(con, "studies_table")
    studies = every_study[every_study["study_id"].isin(study_ids)].reset_index(drop=True)
    comparators = db.run(con, "comparator_outcomes", cohort_ids=list(cohorts["cohort_id"]))
    cohort_ids = list(cohorts["cohort_id"]) + list(dict.fromkeys(comparators["comparator_id"]))
    extracted = db.run(con, "outcome_rows", cohort_ids=cohort_ids)
    frames = tables.frames(studies, extracted, document)

    header = [
        f"Dashboard link query: ?{query}",
        f"Slice: {rows.describe()}",
        f"Data: {data_label(info)}, version {version}",
        f"App: {APP} {app_version()}, commit {commit()}",
    ]
    r_text = rscript.script(found, header)
    ris_text = references.ris(studies, version)
    bib_text = references.bibtex(studies, version)
    summary = pd.DataFrame(cohorts)
    caption = rows.describe(
        int(summary["study_id"].nunique()), int(summary["n_patients"].fillna(0).sum())
    )
    provenance = {
        "query": query,
        "data_label": data_label(info),
        "data_version": version,
        "sheets": sorted(
            (key.removeprefix("sheet_sha256:"), value)
            for key, value in info.items()
            if key.startswith("sheet_sha256:")
        ),
        "app": APP,
        "app_version": app_version(),
        "commit": commit(),
    }
    page = html.render(
        found,
        provenance=provenance,
        generated=generated or now(),
        caption=caption,
        tables=frames,
        references=_reference_lines(studies),
        methods=(ROOT / "docs" / "methods.md").read_text(encoding="utf-8"),
        r_script=r_text,
        notices=notices,
    )
    readme = [
        f"{APP}: report tables of one slice",
        f"Slice: {rows.describe()}",
        f"Dashboard link query: ?{query}",
        f"Data: {data_label(info)}, version {version}",
        f"App version {app_version()}, commit {commit()}",
        "Sheets: studies (in the slice), outcomes (every extracted number with its source, "
        "locator, quote and status), pooled, tests, sof (summary of findings), footnotes.",
        "Proportions on the 0-1 scale; text cells that could run as formulas begin with '.",
    ]
    files = {
        "report.html": page.encode("utf-8"),
        "reproduce.R": r_text.encode("utf-8"),
        "references.ris": ris_text.encode("utf-8"),
        "references.bib": bib_text.encode("utf-8"),
        "tables.xlsx": tables.workbook(frames, readme),
        "results.json": results.dumps(document),
        "results.schema.json": results.SCHEMA_FILE.read_bytes(),
        **tables.csv_files(frames),
    }
    files["bundle.zip"] = zipped(files)
    return files


def _reference_lines(studies: pd.DataFrame) -> list[str]:
    lines = []
    for study in studies.to_dict("records"):
        parts = [
            str(study[c])
            for c in ("first_author", "title", "venue")
            if study.get(c) is not None and not pd.isna(study[c])
        ]
        ids = [
            f"{label} {study[c]}"
            for c, label in (("pmid", "PMID"), ("doi", "doi:"))
            if study.get(c) is not None and not pd.isna(study[c])
        ]
        lines.append(f"[{study['study_id']}] " + ". ".join(parts + ids))
    return lines


def notices_of(files: dict[str, bytes]) -> list[str]:
    """What the bundle says it could not do as asked (the panel's judgements not applied)."""
    import json

    return list(json.loads(files["results.json"])["notices"])


def zipped(files: dict[str, bytes]) -> bytes:
    """The files as one zip, entries sorted by name, each with the same fixed date."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, files[name])
    return buffer.getvalue()


def bundle_zip(con: duckdb.DuckDBPyConnection, rows: Slice, view: View) -> bytes:
    """The zip the app's "Download report bundle" serves."""
    return build(con, rows, view)["bundle.zip"]


def without_time(page: bytes) -> bytes:
    """report.html with its time stamp blanked: what must be equal for the same query and data."""
    return re.sub(rb"<time>[^<]*</time>", b"<time></time>", page)


def same_bundle(a: dict[str, bytes], b: dict[str, bytes], skip: Sequence[str] = ()) -> list[str]:
    """The files of two bundles that differ other than by the time stamp (test helper)."""
    differing = []
    for name in sorted(set(a) | set(b)):
        if name in skip:
            continue
        left, right = a.get(name), b.get(name)
        if name == "report.html" and left is not None and right is not None:
            left, right = without_time(left), without_time(right)
        if left != right:
            differing.append(name)
    return differing
