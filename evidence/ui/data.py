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

import duckdb
import pandas as pd
import streamlit as st

from evidence import analysis, build, db
from evidence.filters import Filters

DATABASE_ENV = "ANAKINRA_DB"  # point the app at another built file (tests, hosting)
UPLOAD_KEY = "uploaded_data"


@dataclass(frozen=True)
class ActiveData:
    """The database this session reads, with a version key for caches and a label for people."""

    con: duckdb.DuckDBPyConnection
    key: str
    label: str
    is_upload: bool


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


@st.cache_data(show_spinner=False, max_entries=512)
def cohorts(_data: ActiveData, data_key: str, filters: Filters) -> pd.DataFrame:
    return analysis.cohort_slice(_data.con, filters)


@st.cache_data(show_spinner=False, max_entries=1024)
def outcome(
    _data: ActiveData, data_key: str, filters: Filters, outcome_code: str
) -> analysis.OutcomeAnalysis:
    return analysis.analyse_outcome(
        _data.con, filters, outcome_code, cohorts(_data, data_key, filters)
    )


@st.cache_data(show_spinner=False, max_entries=256)
def query(_data: ActiveData, data_key: str, name: str, **params: object) -> pd.DataFrame:
    """A named query whose parameters are plain values (lists as tuples for hashing)."""
    bound = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    return db.run(_data.con, name, **bound)


@st.cache_data(show_spinner=False, max_entries=512)
def subgroups(
    _data: ActiveData, data_key: str, filters: Filters, outcome_code: str, dimension: str
) -> object:
    return analysis.analyse_subgroups(
        outcome(_data, data_key, filters, outcome_code), dimension, filters
    )


@st.cache_data(show_spinner=False, max_entries=512)
def comparators(
    _data: ActiveData, data_key: str, filters: Filters, outcome_code: str
) -> tuple[pd.DataFrame, object]:
    return analysis.comparator_table(_data.con, cohorts(_data, data_key, filters), outcome_code)


@st.cache_data(show_spinner=False, max_entries=512)
def dose_comparisons(
    _data: ActiveData, data_key: str, filters: Filters, outcome_code: str
) -> tuple[pd.DataFrame, object]:
    return analysis.within_study_dose_comparisons(_data.con, filters, outcome_code)


@st.cache_data(show_spinner=False, max_entries=512)
def dose_regression(
    _data: ActiveData, data_key: str, filters: Filters, outcome_code: str
) -> object:
    return analysis.dose_regression(outcome(_data, data_key, filters, outcome_code).rows, filters)
