"""The one door pages use to ask for evidence: which database this session reads, and, for a
slice, its cohorts, pooled outcomes, subgroups, comparisons and chart specs.

    evidence = data.slice(rows, view.method)
    evidence.outcome("icans_response")          # an OutcomeAnalysis
    evidence.forest_spec("icans_response", view.study)

Everything is cached by what determines it and nothing else: the data version and the slice for
the slice's cohorts and counts, plus the pooling method for pools, plus the outcome, split or
highlighted study for what is drawn from a pool. So choosing another outcome, split or method
never re-runs the slice's query, and pages never handle a cache key.

The shipped file is opened read-only once per process. A panel's upload, once checked, is kept
in the dataset store (evidence.datasets) by the SHA-256 of its sheets, and the session's link
carries that id (`data=<id>`): whoever opens the link, on any server process reading the same
store, reads the same data, built in memory once per process and shared by the sessions reading
it. With sharing off (ANAKINRA_DATASETS=off), or when the store cannot take it, an upload lives
only in that browser session's state (an in-memory DuckDB) and the link carries `data=upload`.
Analyses are cached as shared resources (one object for every session, never copied): they are
frozen records and read-only frames, and no caller changes them. Frames a page may reshape are
cached as data (each caller gets its own copy).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from evidence import agreement as engine_agreement
from evidence import analysis, datasets, db, sof, vocab
from evidence.extraction import build, export, template
from evidence.extraction.contract import SYNTHETIC_MARK
from evidence.extraction.validate import Problem
from evidence.filters import FILTERS, Slice, View
from evidence.format import build_info_items
from evidence.grade import PanelSettings
from evidence.meta.results import ComparisonResult, MetaRegressionResult, SubgroupResult
from evidence.ui import sessions
from evidence.ui.vega import vega_spec

DATABASE_ENV = "ANAKINRA_DB"  # point the app at another built file (tests, hosting)
UPLOAD_KEY = "uploaded_data"
# While a session reads a panel's upload its link carries data=<dataset id> (shared by link: any
# server reading the same dataset store opens it), or data=upload when it lives in the session
# only (sharing off, or the store could not take it), so that a link that outlives such an upload
# (server restarted, link shared) says so instead of silently showing other data. state.py
# writes and reads the key.
LINK_KEY, LINK_UPLOAD = "data", "upload"
# The style this session's charts are drawn in (evidence.charts.STYLES): its view's display
# mode, which state.py sets from the link on every run.
CHART_STYLE_KEY = "chart_style"
SHARED_LABEL = "the panel's extraction “{name}”, shared by link"
# Datasets opened from the store kept built in memory per process (each at most 128 MB, most a
# few MB); a session reading one that was let go keeps it until the session ends.
OPEN_DATASETS = 8


@dataclass(frozen=True)
class ActiveData:
    """The database this session reads, its version (what caches key on) and its name for
    people."""

    con: duckdb.DuckDBPyConnection
    key: str
    label: str
    is_upload: bool
    is_shipped: bool = True
    file: Path | None = None  # the served file, offered as a download (None: in memory)
    notice: str | None = None  # what had to be done to serve it (a damaged file rebuilt, …)
    dataset: str | None = None  # its id in the dataset store, when shared by link


@dataclass(frozen=True)
class Unavailable:
    """Nothing can be served (the file is damaged and cannot be rebuilt): why, for the host."""

    reason: str


class DataUnavailable(RuntimeError):
    """A page asked for data while none can be served (app.py shows the plain page instead)."""


# Cached functions identify the data by its version and a slice by its repr (which names every
# value), instead of hashing a connection or walking an object.
_HASH: dict[Any, Any] = {
    ActiveData: lambda source: source.key,
    Slice: repr,
    PanelSettings: repr,
}


def database_path() -> Path:
    return Path(os.environ.get(DATABASE_ENV, build.DATABASE))


@st.cache_resource(show_spinner="Preparing the evidence database…")
def _served(path: str) -> ActiveData | Unavailable:
    """The served database, verified (build.open_served), or why there is none.

    Without ANAKINRA_DB the file follows the shipped sheets: built first if it is missing or
    behind them, rebuilt if it is damaged (in memory when its folder cannot be written). A file
    named by ANAKINRA_DB is served as it is, never replaced: damaged, it is unavailable. Never
    raises, so the outcome, whatever it is, is kept for the process: a read-only data folder
    costs one attempt, not one per run. A file built from a panel's own sheets is named as such.
    """
    target = Path(path)
    follows_sheets = DATABASE_ENV not in os.environ
    # A damaged file is left to open_served, which keeps it aside and says so; ensure_built would
    # replace an unreadable one without a word, and keep a truncated one whose build_info reads.
    damaged = target.exists() and build.verify(target) is not None
    notes = []
    try:
        if follows_sheets and not damaged:
            found = build.ensure_built(target)
            if found.state == "other source":
                print(found.message, file=sys.stderr)
    except Exception as err:  # sheets with problems, a read-only folder: the file is judged below
        notes.append(
            f"{target.name} could not be brought up to date with the shipped sheets "
            f"({_in_words(err)})."
        )
    try:
        served = build.open_served(target, rebuild=follows_sheets)
        info = dict(db.run(served.con, "build_info").itertuples(index=False))
    except Exception as err:  # build.Unservable, or anything unforeseen: never a traceback
        reason = str(err) if isinstance(err, build.Unservable) else _in_words(err)
        print(f"data unavailable: {reason}", file=sys.stderr)
        return Unavailable(reason)
    if served.notice:
        notes.append(served.notice)
    notice = " ".join(notes) or None
    if notice:
        print(notice, file=sys.stderr)
    version = info["sheets_sha256"]
    if info.get("origin_kind", build.SHIPPED_SHEETS) == build.SHIPPED_SHEETS:
        return ActiveData(
            served.con, f"shipped:{version}", "the shipped extraction", False, True,
            served.file, notice,
        )  # fmt: skip
    label = f"the extraction built from {Path(info.get('origin', path)).name}"
    return ActiveData(served.con, f"panel:{version}", label, False, False, served.file, notice)


def _in_words(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(err).splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def served() -> ActiveData | Unavailable:
    """The database this server serves (verified once per process), or why there is none."""
    return _served(str(database_path()))


def active() -> ActiveData:
    """The data this browser session reads: its upload, else the served extraction."""
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is not None:
        return upload
    found = served()
    if isinstance(found, Unavailable):
        raise DataUnavailable(found.reason)
    return found


def is_shipped() -> bool:
    """Whether this session reads the shipped extraction (texts about the public record apply
    to it only)."""
    return active().is_shipped


def use_upload(con: duckdb.DuckDBPyConnection, filename: str, notice: str | None = None) -> None:
    """Make an upload's database this session's data, in this session only: bounded (one thread,
    a small memory limit, set again here whatever built it), and the only one the session holds
    (the one it held before is closed; see evidence/ui/sessions.py for when this one is).
    `notice` says why it is not shared by link, when it could have been."""
    sessions.bound(con)
    info = dict(db.run(con, "build_info").itertuples(index=False))
    st.session_state[UPLOAD_KEY] = ActiveData(
        con, f"upload:{info['sheets_sha256']}", f"your upload “{filename}”", True, False,
        notice=notice,
    )  # fmt: skip
    session_id = sessions.current_id()
    if session_id is not None:
        sessions.hold(session_id, con)


def use_shipped() -> None:
    """Back to the served data; this session's upload is closed and its link loses the upload
    marker (this may run in a callback, before the run that reads the link)."""
    st.session_state.pop(UPLOAD_KEY, None)
    sessions.release(sessions.current_id())
    if LINK_KEY in st.query_params:
        del st.query_params[LINK_KEY]


def has_upload() -> bool:
    """Whether this session reads a panel's upload (its own, or one shared by link)."""
    return st.session_state.get(UPLOAD_KEY) is not None


def link_marker() -> str | None:
    """What this session's link carries about its data: the dataset id of a shared upload,
    LINK_UPLOAD for one in this session only, None for the served data."""
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        return None
    return upload.dataset or LINK_UPLOAD


def use_upload_if_valid(filename: str, content: bytes) -> list[Problem]:
    """Check a panel's extraction file and, if it passes, make it this session's data; every
    problem found otherwise (nothing is loaded then).

    With sharing on, the checked sheets go to the dataset store and the session reads them as
    anyone opening its link will. If the store cannot take them (full, unwritable, over its
    cap), the upload is used in this session only and the banner says why."""
    con, sheets, problems = build.upload_with_sheets(filename, content)
    if con is None or problems:
        return problems
    shared = store()
    if shared is None or sheets is None:
        use_upload(con, filename)
        return []
    dataset_id = dict(db.run(con, "build_info").itertuples(index=False))["sheets_sha256"]
    try:
        shared.put(dataset_id, filename, sheets)
    except (datasets.StoreError, ValueError) as err:
        print(f"dataset store: {dataset_id[:12]} not stored: {err}", file=sys.stderr)
        use_upload(con, filename, notice=_not_stored(err))
        return []
    with _seed_lock:  # built already: the process's copy is this one, not a second build
        _seeded[dataset_id] = (con, filename)
    found = open_dataset(dataset_id)
    with _seed_lock:
        unused = _seeded.pop(dataset_id, None)
    if isinstance(found, str):  # with the seed in place this does not happen; never lose it
        if unused is None:
            return [Problem(filename, None, "", found, blocking=True)]
        use_upload(con, filename, notice=found)
        return []
    if unused is not None and unused[0] is not found.con:  # this process had it open already
        with contextlib.suppress(duckdb.Error):
            unused[0].close()
    _read_dataset(found)
    return []


def _not_stored(err: Exception) -> str:
    why = str(err) if isinstance(err, datasets.StoreError) else "it could not be checked"
    return (
        f"It could not be stored for sharing by link ({why}); nothing was kept on the server. "
        "Download the extraction on Methods & data to keep it."
    )


# ---- datasets shared by link -------------------------------------------------------------
@functools.cache
def _store_for(url: str, cap: str) -> datasets.DatasetStore | None:
    return datasets.DatasetStore.from_environment(
        {datasets.STORE_ENV: url, datasets.CAP_ENV: cap} if cap else {datasets.STORE_ENV: url}
    )


def store() -> datasets.DatasetStore | None:
    """The dataset store ANAKINRA_DATASETS names (one object per process and setting), or None
    when the host turned sharing off."""
    return _store_for(os.environ.get(datasets.STORE_ENV, ""), os.environ.get(datasets.CAP_ENV, ""))


def sharing() -> bool:
    """Whether a checked upload is shared by link (else it stays in its browser session)."""
    return store() is not None


def is_dataset_id(text: str) -> bool:
    return datasets.is_id(text)


_seed_lock = threading.Lock()
_seeded: dict[str, tuple[duckdb.DuckDBPyConnection, str]] = {}


class _NotOpened(Exception):
    """A dataset could not be opened (not cached, so the next run tries again)."""


@st.cache_resource(show_spinner="Opening the panel's extraction…", max_entries=OPEN_DATASETS)
def _shared(dataset_id: str, store_url: str) -> ActiveData:
    """A stored dataset built in memory (once per process: sessions opening the same link wait
    for the first build and share it), or _NotOpened with why in words."""
    with _seed_lock:
        seeded = _seeded.pop(dataset_id, None)
    if seeded is not None:
        con, name = seeded
    else:
        shared = store()
        found = shared.get(dataset_id) if shared is not None else None
        if found is None:
            raise _NotOpened("unknown")
        con, problems = build.from_sheets_zip(found.name, found.sheets_zip, dataset_id)
        if con is None:
            reason = problems[0].message if problems else "it could not be built"
            print(f"dataset store: {dataset_id[:12]} not opened: {reason}", file=sys.stderr)
            raise _NotOpened(reason)
        name = found.name
    sessions.bound(con)
    label = SHARED_LABEL.format(name=name)
    return ActiveData(con, f"upload:{dataset_id}", label, True, False, dataset=dataset_id)


def open_dataset(dataset_id: str) -> ActiveData | str:
    """The dataset `dataset_id` from the store, built in memory once per process, or why it
    cannot be shown, in words (sharing off, unknown or removed, not buildable)."""
    shared = store()
    if shared is None:
        return (
            "This link names a panel's extraction shared by link, but this server does not "
            "share uploaded extractions (its host turned sharing off)"
        )
    try:
        return _shared(dataset_id, shared.url)
    except _NotOpened as err:
        if str(err) == "unknown":
            return (
                "The panel's extraction this link names is not in this server's dataset store "
                "(it was never stored there, or was removed to make room for newer ones)"
            )
        return f"The panel's extraction this link names could not be opened ({err})"


def _read_dataset(found: ActiveData) -> None:
    """Make a shared dataset this session's data (a session-only upload it held is closed)."""
    st.session_state[UPLOAD_KEY] = found
    sessions.release(sessions.current_id())


def use_link_data(dataset_id: str) -> str | None:
    """Make the dataset a link names this session's data: None when done (or already so),
    else the notice to show; the session then reads what it read (a new one, the served
    data)."""
    current = st.session_state.get(UPLOAD_KEY)
    if current is not None and current.dataset == dataset_id:
        return None
    found = open_dataset(dataset_id)
    if isinstance(found, str):
        if current is not None:
            shown = current.label
        else:
            served_now = served()
            plain_shipped = isinstance(served_now, Unavailable) or served_now.is_shipped
            shown = "the shipped data" if plain_shipped else served_now.label
        return f"{found}; showing {shown}."
    _read_dataset(found)
    return None


# ---- documents and downloads ---------------------------------------------------------------
_DOCUMENTS = {
    "methods": build.ROOT / "docs" / "methods.md",
    "data dictionary": build.ROOT / "data" / "README.md",
}


@st.cache_data(show_spinner=False)
def document(name: str) -> str:
    """A project document shown on a page (one copy of the text, kept in the repository)."""
    return _DOCUMENTS[name].read_text(encoding="utf-8")


@st.cache_resource(show_spinner=False)
def agreement() -> engine_agreement.Agreement:
    """How closely the engine agrees with R metafor and lme4 (measured, shipped with the data)."""
    return engine_agreement.load()


@dataclass(frozen=True)
class Download:
    """A file a page offers; `make` builds its bytes only when the button is clicked."""

    label: str
    file_name: str
    mime: str
    make: Callable[[], bytes]


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def downloads() -> list[Download]:
    """The extraction in use, the database file (shipped data only) and empty templates."""
    source = active()
    files = [
        Download(
            "Extraction in use (XLSX)",
            "anakinra_extraction.xlsx",
            XLSX,
            partial(export.export_workbook, source.con),
        ),
        Download(
            "Extraction in use (CSV, zipped)",
            "anakinra_extraction.zip",
            "application/zip",
            partial(export.export_csv_zip, source.con),
        ),
        Download(
            "Empty template (XLSX)", "anakinra_template.xlsx", XLSX, template.template_workbook
        ),
        Download(
            "Empty template (CSV, zipped)",
            "anakinra_template.zip",
            "application/zip",
            template.template_csv_zip,
        ),
    ]
    if not source.is_upload and source.file is not None:  # not a database rebuilt in memory
        files.append(
            Download(
                "Database file (DuckDB)",
                "anakinra.duckdb",
                "application/octet-stream",
                source.file.read_bytes,
            )
        )
    return files


def report_bundle(source: ActiveData, rows: Slice, view: View) -> bytes:
    """The report bundle (evidence.report) of `rows` and `view` in `source`: the zip the
    "Download report bundle" button serves, equal to what `python -m evidence.report` writes for
    the same query and data but for the time it was made. Imported on the click: the report's
    libraries (Altair, Jinja2, the reference writers) should not slow a cold start."""
    from evidence.report import bundle

    return bundle.bundle_zip(source.con, rows, view)


def report_download(rows: Slice, view: View) -> Download:
    """The report bundle of this session's data (its upload, if any), slice and view (the panel's
    judgements with it), made when the button is clicked."""
    return Download(
        "Download report bundle (ZIP)",
        "anakinra_report.zip",
        "application/zip",
        partial(report_bundle, active(), rows, view),
    )


# ---- the data as a whole -------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=256, hash_funcs=_HASH)
def _query(source: ActiveData, name: str, **params: Any) -> pd.DataFrame:
    """A named query whose parameters are plain values (lists as tuples, for hashing)."""
    bound = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    return db.run(source.con, name, **bound)


def build_info() -> pd.DataFrame:
    """The data version's items, in words."""
    return build_info_items(_query(active(), "build_info"))


def synthetic_studies() -> tuple[int, int]:
    """(studies generated by evidence.synthetic, all studies) in this session's data."""
    found = _query(active(), "synthetic_studies", mark=SYNTHETIC_MARK).iloc[0]
    return int(found["synthetic"]), int(found["studies"])


def table_counts() -> pd.DataFrame:
    return _query(active(), "table_counts")


def review_figures() -> pd.DataFrame:
    return _query(active(), "review_figures")


def holdings() -> pd.DataFrame:
    return _query(active(), "holdings")


def studies() -> pd.DataFrame:
    """Every report, with its PubMed and DOI addresses."""
    return _query(active(), "studies_table")


def study_facts(study_id: str) -> pd.DataFrame:
    """The study's cohorts, each fact with where it was read."""
    return _query(active(), "cohort_facts", study_ids=(study_id,))


def study_quality(study_id: str) -> pd.DataFrame:
    return _query(active(), "quality_items", study_ids=(study_id,))


def numbers(
    cohort_ids: tuple[str, ...], only: str | None = None, besides: str | None = None
) -> pd.DataFrame:
    """Every number extracted for these cohorts of the data this session reads (see
    `_numbers`)."""
    return _numbers(active(), cohort_ids, only, besides)


def _numbers(
    source: ActiveData,
    cohort_ids: tuple[str, ...],
    only: str | None = None,
    besides: str | None = None,
) -> pd.DataFrame:
    """Every number extracted for these cohorts, counts or not, with its provenance and the
    outcome in words; `only` keeps the outcomes of one group of vocab.OUTCOME_GROUPS, `besides`
    drops them."""
    rows = _query(source, "outcome_rows", cohort_ids=cohort_ids)
    if only is not None:
        rows = rows[rows["outcome"].isin(vocab.OUTCOME_GROUPS[only])]
    if besides is not None:
        rows = rows[~rows["outcome"].isin(vocab.OUTCOME_GROUPS[besides])]
    return rows.assign(outcome=rows["outcome"].map(vocab.OUTCOMES.label))


@st.cache_data(show_spinner=False, max_entries=16, hash_funcs=_HASH)
def _slider_bounds(source: ActiveData) -> dict[str, tuple[float, float]]:
    row = _query(source, "data_ranges").iloc[0]
    bounds = {}
    for f in FILTERS:
        if f.kind == "range":
            low, high = row[f"{f.key}_min"], row[f"{f.key}_max"]
            if pd.notna(low) and pd.notna(high):
                cast = int if f.whole_numbers else float
                bounds[f.key] = (cast(low), cast(high))
    return bounds


def slider_bounds() -> dict[str, tuple[float, float]]:
    """Each range filter's (lowest, highest) value in the data; a filter the data gives no
    value for is missing (there is nothing to narrow)."""
    return _slider_bounds(active())


@st.cache_data(show_spinner=False, max_entries=16, hash_funcs=_HASH)
def _study_ids(source: ActiveData) -> tuple[str, ...]:
    return tuple(_query(source, "studies_table")["study_id"])


def study_ids() -> tuple[str, ...]:
    """Every study id, for the sidebar's exclusion list."""
    return _study_ids(active())


# ---- one slice -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SliceEvidence:
    """The evidence of one slice of the data in use, pooled with one method."""

    source: ActiveData
    rows: Slice
    method: str

    @property
    def summary(self) -> analysis.SliceSummary:
        return _summary(self.source, self.rows)

    def caption(self) -> str:
        """The slice in plain words with its studies and patients: every chart's caption."""
        counts = self.summary
        return self.rows.describe(counts.studies, counts.patients)

    def cohort_ids(self) -> tuple[str, ...]:
        return tuple(_cohorts(self.source, self.rows)["cohort_id"])

    def study_ids(self) -> set[str]:
        return set(_cohorts(self.source, self.rows)["study_id"])

    def numbers(
        self, only: str | None = None, besides: str | None = None, with_comparators: bool = False
    ) -> pd.DataFrame:
        """Every number extracted for the slice's cohorts (see `numbers`); with comparators,
        their comparison cohorts' numbers for the same outcomes beside them (column `arm`)."""
        rows = _numbers(self.source, self.cohort_ids(), only, besides)
        if not with_comparators:
            return rows
        theirs = _query(self.source, "comparator_outcomes", cohort_ids=self.cohort_ids())
        theirs = theirs[theirs["outcome"].map(vocab.OUTCOMES.label).isin(rows["outcome"])]
        theirs = theirs.assign(
            arm="comparator",
            label=theirs["comparator_label"],
            outcome=theirs["outcome"].map(vocab.OUTCOMES.label),
            study_id=theirs["cohort_id"].map(
                dict(zip(rows["cohort_id"], rows["study_id"], strict=False))
            ),
        )
        joined = pd.concat([rows, theirs[[c for c in theirs.columns if c in rows.columns]]])
        return joined.sort_values(["outcome", "study_id", "arm"], kind="stable")

    def outcome(self, code: str) -> analysis.OutcomeAnalysis:
        return _pooled(self, code)

    def outcomes(self, group: str) -> tuple[analysis.OutcomeAnalysis, ...]:
        """Each outcome of a group of vocab.OUTCOME_GROUPS, in the group's order."""
        return tuple(self.outcome(code) for code in vocab.OUTCOME_GROUPS[group])

    def subgroups(self, code: str, split: str) -> SubgroupResult | None:
        return _subgroups(self, code, split)

    def dose_points(self, code: str) -> pd.DataFrame:
        return analysis.dose_points(self.outcome(code).rows)

    def numbers_of(self, study_id: str, code: str) -> pd.DataFrame:
        """Every number a study gives for an outcome in this slice, with its provenance."""
        rows = _query(self.source, "outcome_rows", cohort_ids=self.cohort_ids())
        return rows[(rows["study_id"] == study_id) & (rows["outcome"] == code)]

    def cohorts_without_dose(self, code: str) -> list[str]:
        """Cohorts reporting the outcome but no mg/day dose (left out of the dose chart)."""
        rows = self.outcome(code).rows
        return rows.loc[rows["dose_mg_day_max"].isna(), "label"].tolist()

    def dose_regression(self, code: str) -> MetaRegressionResult | None:
        return _dose_regression(self, code)

    def dose_comparisons(self, code: str) -> tuple[pd.DataFrame, ComparisonResult | None]:
        return _dose_comparisons(self.source, self.rows, code)

    def comparators(self, code: str) -> tuple[pd.DataFrame, ComparisonResult | None]:
        return _comparators(self.source, self.rows, code)

    # Chart specs, in this session's chart style unless `style` names one.
    def forest_spec(self, code: str, highlight: str | None, style: str | None = None) -> dict:
        return _forest_spec(self, code, highlight, style or chart_style())

    def subgroup_spec(self, code: str, split: str, style: str | None = None) -> dict | None:
        return _subgroup_spec(self, code, split, style or chart_style())

    def dose_spec(self, code: str, highlight: str | None, style: str | None = None) -> dict | None:
        return _dose_spec(self, code, highlight, style or chart_style())

    def comparator_spec(self, code: str, style: str | None = None) -> dict | None:
        return _comparator_spec(self.source, self.rows, code, style or chart_style())

    def large_view(self, code: str, split: str, style: str | None = None) -> LargeView:
        """The summaries shown instead of a forest plot above analysis.LARGE_FOREST_STUDIES."""
        return _large_view(self, code, split, style or chart_style())


@dataclass(frozen=True)
class LargeView:
    """What a reader of a large evidence base needs in place of one forest-plot row per study:
    the pooled row above a forest of subgroups, the distribution of the studies' own
    proportions, a (binned) funnel plot, the studies furthest from the pooled estimate, and every
    study as a table read one page at a time."""

    summary_spec: dict
    distribution_spec: dict
    funnel_spec: dict
    outliers: pd.DataFrame
    studies: pd.DataFrame


# A pool and what is drawn from it are keyed by the evidence (data version, slice, method) as
# one argument: Streamlit's cost of keying a cached call grows with its number of arguments.
_HASH[SliceEvidence] = lambda evidence: (evidence.source.key, repr(evidence.rows), evidence.method)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _cohorts(source: ActiveData, rows: Slice) -> pd.DataFrame:
    return analysis.cohort_slice(source.con, rows)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _summary(source: ActiveData, rows: Slice) -> analysis.SliceSummary:
    return analysis.slice_summary(_cohorts(source, rows))


@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs=_HASH)
def _every_poolable(source: ActiveData) -> pd.DataFrame:
    """Every cohort's counts, read once per data version."""
    return analysis.every_poolable_row(source.con)


@st.cache_resource(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _counts(source: ActiveData, rows: Slice) -> dict[str, pd.DataFrame]:
    """The slice's counts by outcome, picked from every cohort's by the slice's cohort ids."""
    picked = analysis.in_slice(_every_poolable(source), _cohorts(source, rows))
    return analysis.counts_by_outcome(picked)


@st.cache_resource(show_spinner=False, max_entries=2048, hash_funcs=_HASH)
def _pooled(evidence: SliceEvidence, outcome: str) -> analysis.OutcomeAnalysis:
    counts = _counts(evidence.source, evidence.rows)
    empty = _every_poolable(evidence.source).iloc[0:0]
    return analysis.pool(outcome, counts.get(outcome, empty), evidence.method)


@st.cache_resource(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _subgroups(evidence: SliceEvidence, outcome: str, split: str) -> SubgroupResult | None:
    return analysis.analyse_subgroups(_pooled(evidence, outcome), split)


@st.cache_resource(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _dose_regression(evidence: SliceEvidence, outcome: str) -> MetaRegressionResult | None:
    return analysis.dose_regression(_pooled(evidence, outcome))


@st.cache_resource(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _dose_comparisons(
    source: ActiveData, rows: Slice, outcome: str
) -> tuple[pd.DataFrame, ComparisonResult | None]:
    # Mantel-Haenszel whatever the pooling method: only the slice's counts matter.
    counts = _counts(source, rows).get(outcome, _every_poolable(source).iloc[0:0])
    return analysis.within_study_dose_comparisons(counts)


@st.cache_resource(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _comparators(
    source: ActiveData, rows: Slice, outcome: str
) -> tuple[pd.DataFrame, ComparisonResult | None]:
    ids = _cohorts(source, rows)["cohort_id"].tolist()
    return analysis.comparator_table(source.con, ids, outcome)


# Chart specs: a layout (marks, scales, title) depends only on the outcome and the style, so it
# is built once per process; a slice only adds its rows, sent as Arrow bytes (evidence.ui.vega).
def _charts() -> ModuleType:
    """evidence.charts, imported on first use: Altair is slow to import, and the page a cold
    start opens (Overview) draws no chart."""
    from evidence import charts

    return charts


def chart_style() -> str:
    """The style this session's charts are drawn in: "screen", or "meeting" for a projector."""
    return st.session_state.get(CHART_STYLE_KEY, "screen")


def use_chart_style(style: str) -> None:
    """Draw this session's charts in `style` from now on (state.py: the view's display mode)."""
    st.session_state[CHART_STYLE_KEY] = style


@st.cache_resource(show_spinner=False, max_entries=256)
def _layout(kind: str, style: str, *args: object) -> dict:
    """A chart layout's Vega-Lite spec in a style, shared read-only (specs below copy it, never
    change it)."""
    charts = _charts()
    builders = {
        "forest": charts.forest_layout,
        "subgroup": charts.subgroup_layout,
        "dose": charts.dose_layout,
        "ratio": charts.ratio_layout,
        "summary": charts.summary_forest_layout,
        "distribution": charts.distribution_layout,
        "funnel": charts.funnel_layout,
    }
    return builders[kind](*args, style=style).to_dict(validate=False)


@st.cache_data(show_spinner=False, max_entries=1024, hash_funcs=_HASH)
def _forest_spec(evidence: SliceEvidence, outcome: str, highlight: str | None, style: str) -> dict:
    pooled = _pooled(evidence, outcome)
    rows = pooled.forest_records()
    if evidence.rows.product:  # a product slice: say which cohorts mix products
        rows = analysis.mark_several_products(rows, pooled.rows)
    records = _charts().forest_data(rows, highlight)
    return vega_spec(_layout("forest", style, pooled.label), records)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _subgroup_spec(evidence: SliceEvidence, outcome: str, split: str, style: str) -> dict | None:
    result = _subgroups(evidence, outcome, split)
    if result is None:
        return None
    records = _charts().subgroup_data(analysis.subgroup_records(result))
    return vega_spec(_layout("subgroup", style, vocab.OUTCOMES.label(outcome)), records)


@st.cache_resource(show_spinner=False, max_entries=256, hash_funcs=_HASH)
def _large_view(evidence: SliceEvidence, outcome: str, split: str, style: str) -> LargeView:
    """Held once per slice, method and split, not copied on each rerun (a resource: the study
    table has a row per study)."""
    pooled = _pooled(evidence, outcome)
    assert pooled.result is not None
    charts = _charts()
    record = analysis.pooled_record(pooled.result)
    subgroups = _subgroups(evidence, outcome, split)
    groups = analysis.subgroup_records(subgroups) if subgroups is not None else []
    title = f"{pooled.label} by {analysis.in_sentence(vocab.SUBGROUP_DIMENSIONS.label(split))}"
    table = analysis.study_table(pooled)
    scale = "Logit proportion" if pooled.result.transform == "logit" else "Freeman-Tukey"
    estimate = pooled.result.model.estimate
    centre = float(estimate) if estimate is not None else float(np.nanmedian(table["yi"]))
    return LargeView(
        vega_spec(_layout("summary", style, title), charts.summary_forest_data(record, groups)),
        vega_spec(
            _layout("distribution", style, "The studies' own proportions"),
            charts.distribution_data(table["proportion"].to_numpy(), record),
        ),
        vega_spec(
            _layout("funnel", style, "Funnel plot", scale),
            charts.funnel_data(table["yi"].to_numpy(), table["se"].to_numpy(), centre),
        ),
        analysis.outliers(table),
        table,
    )


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _dose_spec(
    evidence: SliceEvidence, outcome: str, highlight: str | None, style: str
) -> dict | None:
    pooled = _pooled(evidence, outcome)
    points = analysis.dose_points(pooled.rows)
    if points.empty:
        return None
    regression = _dose_regression(evidence, outcome)
    line = analysis.regression_line(regression, points) if regression is not None else None
    layout = _layout("dose", style, pooled.label, line is not None and not line.empty)
    return vega_spec(layout, _charts().dose_data(points, line, highlight))


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=_HASH)
def _comparator_spec(source: ActiveData, rows: Slice, outcome: str, style: str) -> dict | None:
    _, comparison = _comparators(source, rows, outcome)
    if comparison is None:
        return None
    title = f"{vocab.OUTCOMES.label(outcome)}: risk ratio, anakinra vs comparison cohort"
    frame = comparison.to_frame()
    if comparison.k < 2:  # one study: its own ratio, nothing pooled to draw
        frame = frame[frame["row_type"] != "pooled"]
    return vega_spec(_layout("ratio", style, title), _charts().ratio_data(frame))


@st.cache_resource(show_spinner=False, max_entries=256, hash_funcs=_HASH)
def _summary_of_findings(
    source: ActiveData, rows: Slice, method: str, panel: PanelSettings
) -> sof.SummaryOfFindings:
    return sof.summary_of_findings(source.con, rows, method, panel)


def summary_of_findings(rows: Slice, method: str, panel: PanelSettings) -> sof.SummaryOfFindings:
    """The slice's summary of findings with the panel's settings applied (see evidence.sof)."""
    return _summary_of_findings(active(), rows, method, panel)


def data_version() -> str:
    """The data in use as a short version a link can carry (the first 12 hex digits of its
    sheets' SHA-256): a panel's judgements are bound to it."""
    return active().key.rsplit(":", 1)[-1][:12]


def key_outcomes(rows: Slice, method: str) -> tuple[tuple[str, str, SliceEvidence | None], ...]:
    """The Overview's key results as (population, outcome, the evidence it is pooled from),
    each in the population it is about, never treatment and prophylaxis cohorts together; None
    where the indication filter leaves that population out."""
    found = []
    for population, code in vocab.KEY_OUTCOMES:
        scoped = rows.within(population)
        found.append((population, code, None if scoped is None else slice(scoped, method)))
    return tuple(found)


def slice(rows: Slice, method: str = "glmm") -> SliceEvidence:
    """The evidence of `rows` in the data this session reads, pooled with `method`."""
    return SliceEvidence(active(), rows, method)
