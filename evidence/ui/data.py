"""Which database a session is reading, and cached, pure data access keyed on the filters.

The shipped file is opened read-only once per process. A panel's upload lives only in that
browser session's state (an in-memory DuckDB), so two people never see each other's data. Every
cached function is a pure function of (data version, filters, outcome), which is what makes
caching safe; the connection itself is excluded from the cache key (leading underscore).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import duckdb
import pandas as pd
import streamlit as st

from evidence import analysis, build, db
from evidence.filters import Filters
from evidence.sheets import OUTCOME_LABELS
from evidence.ui.vega import vega_spec

DATABASE_ENV = "ANAKINRA_DB"  # point the app at another built file (tests, hosting)
UPLOAD_KEY = "uploaded_data"


@dataclass(frozen=True)
class ActiveData:
    """The database this session reads, with a version key for caches and a label for people."""

    con: duckdb.DuckDBPyConnection
    key: str
    label: str
    is_upload: bool


def _analysis_key(result: analysis.OutcomeAnalysis) -> str:
    """An analysis made by `outcomes` is identified by its origin (data version and slice) and
    outcome, so what is computed from it is cached on that, not on a hash of its rows."""
    if not result.origin:
        raise ValueError("only analyses from data.outcomes can key a cache (origin is empty)")
    return f"{result.origin}|{result.outcome}"


# Every cached call hashes its arguments on every rerun. Streamlit's generic hashing walks a
# Filters value field by field (~0.4 ms a call); its repr names every field and value, so it
# identifies the slice as exactly, in ~0.01 ms.
FAST_HASH = {Filters: repr, analysis.OutcomeAnalysis: _analysis_key}


def database_path() -> Path:
    return Path(os.environ.get(DATABASE_ENV, build.DATABASE))


@st.cache_resource(show_spinner="Preparing the evidence database…")
def _shipped(path: str) -> tuple[duckdb.DuckDBPyConnection, str]:
    """Open the shipped file read-only, building it first if missing or older than the sheets."""
    target = Path(path)
    if DATABASE_ENV not in os.environ:
        build.ensure_built(target)
    con = db.connect_read_only(target)
    info = dict(db.run(con, "build_info").itertuples(index=False))
    return con, info["sheets_sha256"]


def active() -> ActiveData:
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is not None:
        return upload
    con, checksum = _shipped(str(database_path()))
    return ActiveData(con, f"shipped:{checksum}", "the shipped extraction", is_upload=False)


def use_upload(con: duckdb.DuckDBPyConnection, filename: str) -> None:
    info = dict(db.run(con, "build_info").itertuples(index=False))
    st.session_state[UPLOAD_KEY] = ActiveData(
        con, f"upload:{info['sheets_sha256']}", f"your upload “{filename}”", is_upload=True
    )


def use_shipped() -> None:
    st.session_state.pop(UPLOAD_KEY, None)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def cohorts(_data: ActiveData, data_key: str, filters: Filters) -> pd.DataFrame:
    return analysis.cohort_slice(_data.con, filters)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def summary(_data: ActiveData, data_key: str, filters: Filters) -> dict[str, int]:
    """The slice's counts for captions, cached as plain numbers: every page's caption reads them
    on every rerun, and unpickling the cohort frame to count it again cost more than the counts."""
    return analysis.slice_summary(cohorts(_data, data_key, filters))


@st.cache_resource(show_spinner=False, max_entries=16)
def _every_poolable(_data: ActiveData, data_key: str) -> pd.DataFrame:
    """Every cohort's counts, read once per data version and shared read-only (a resource, not
    data: no copy per read); callers only select rows from it, which makes a new frame."""
    return analysis.every_poolable_row(_data.con)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def outcomes(
    _data: ActiveData, data_key: str, filters: Filters, codes: tuple[str, ...]
) -> tuple[analysis.OutcomeAnalysis, ...]:
    """Every outcome a page shows, pooled from the slice's counts in one cached call: a cached
    value is pickled when stored and unpickled by every cached caller, so a page that asked per
    outcome paid for the slice's counts once per outcome."""
    counts = analysis.in_slice(_every_poolable(_data, data_key), cohorts(_data, data_key, filters))
    return analysis.pool_outcomes(counts, codes, filters, origin=f"{data_key}|{filters!r}")


def outcome(
    _data: ActiveData, data_key: str, filters: Filters, outcome_code: str
) -> analysis.OutcomeAnalysis:
    return outcomes(_data, data_key, filters, (outcome_code,))[0]


@st.cache_data(show_spinner=False, max_entries=256, hash_funcs=FAST_HASH)
def query(_data: ActiveData, data_key: str, name: str, **params: object) -> pd.DataFrame:
    """A named query whose parameters are plain values (lists as tuples for hashing)."""
    bound = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    return db.run(_data.con, name, **bound)


@st.cache_data(show_spinner=False, max_entries=16)
def slider_ranges(_data: ActiveData, data_key: str) -> dict[str, float]:
    """Sidebar slider bounds from the data (defaults only for an upload with no doses or years).
    Plain numbers, not the query's frame: the sidebar reads them on every rerun."""
    row = query(_data, data_key, "data_ranges").iloc[0]

    def known(value: object, default: float) -> float:
        return default if pd.isna(value) else float(value)

    return {
        "dose_min": known(row["dose_min"], 0.0),
        "dose_max": known(row["dose_max"], 1000.0),
        "year_min": int(known(row["year_min"], 2019)),
        "year_max": int(known(row["year_max"], 2026)),
    }


@st.cache_data(show_spinner=False, max_entries=16)
def study_ids(_data: ActiveData, data_key: str) -> tuple[str, ...]:
    """Every study id, for the sidebar's exclusion list (read on every rerun)."""
    return tuple(query(_data, data_key, "studies_table")["study_id"])


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def subgroups(result: analysis.OutcomeAnalysis, filters: Filters, dimension: str) -> object:
    return analysis.analyse_subgroups(result, dimension, filters)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def comparators(
    _data: ActiveData, data_key: str, filters: Filters, outcome_code: str
) -> tuple[pd.DataFrame, object]:
    return analysis.comparator_table(_data.con, cohorts(_data, data_key, filters), outcome_code)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def dose_comparisons(result: analysis.OutcomeAnalysis) -> tuple[pd.DataFrame, object]:
    return analysis.within_study_dose_comparisons(result.rows)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def dose_regression(result: analysis.OutcomeAnalysis, filters: Filters) -> object:
    return analysis.dose_regression(result.rows, filters)


# Chart specs. Building and validating an Altair chart cost ~300 ms, nearly all of it the layout,
# which depends only on the outcome's title: layouts are built once per process, and a slice only
# adds its rows. Rows go as Arrow bytes, which st.vega_lite_chart passes through (it converts
# rows given as records on every rerun, ~4 ms a chart).
def _charts() -> ModuleType:
    """evidence.charts, imported on first use: Altair takes ~0.35 s to import, and the page a
    cold start opens (Overview) draws no chart."""
    from evidence import charts

    return charts


@st.cache_resource(show_spinner=False, max_entries=256)
def _layout(kind: str, *args: object) -> dict:
    """A chart layout's Vega-Lite spec, shared read-only (specs below copy it, never change it)."""
    charts = _charts()
    builders = {
        "forest": charts.forest_layout,
        "subgroup": charts.subgroup_layout,
        "dose": charts.dose_layout,
        "ratio": charts.ratio_layout,
    }
    return builders[kind](*args).to_dict(validate=False)


@st.cache_data(show_spinner=False, max_entries=1024, hash_funcs=FAST_HASH)
def forest_spec(result: analysis.OutcomeAnalysis, highlight: str | None) -> dict:
    rows = _charts().forest_data(result.forest_records(), highlight)
    return vega_spec(_layout("forest", result.label), rows)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def subgroup_spec(
    result: analysis.OutcomeAnalysis, filters: Filters, dimension: str
) -> dict | None:
    split = subgroups(result, filters, dimension)
    if split is None:
        return None
    rows = _charts().subgroup_data(analysis.subgroup_records(split))
    return vega_spec(_layout("subgroup", result.label), rows)


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def dose_spec(
    result: analysis.OutcomeAnalysis, filters: Filters, highlight: str | None
) -> dict | None:
    points = analysis.dose_points(result.rows)
    if points.empty:
        return None
    regression = dose_regression(result, filters)
    line = analysis.regression_line(regression, points) if regression is not None else None
    layout = _layout("dose", result.label, line is not None and not line.empty)
    return vega_spec(layout, _charts().dose_data(points, line, highlight))


@st.cache_data(show_spinner=False, max_entries=512, hash_funcs=FAST_HASH)
def comparator_spec(
    _data: ActiveData, data_key: str, filters: Filters, outcome_code: str
) -> dict | None:
    _, comparison = comparators(_data, data_key, filters, outcome_code)
    if comparison is None:
        return None
    title = f"{OUTCOME_LABELS[outcome_code]}: risk ratio, anakinra vs comparison cohort"
    return vega_spec(_layout("ratio", title), _charts().ratio_data(comparison.to_frame()))
