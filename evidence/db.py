"""Database access: the read-only connection and the named queries of `queries.sql`.

Pages never write SQL; they ask for a query by name and pass parameters, which DuckDB binds.
A query name that does not exist is an error at the call (and a test runs every named query
against the fixture database), so a typo cannot silently return nothing.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

QUERIES_FILE = Path(__file__).resolve().parent.parent / "queries.sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


class UnknownQuery(KeyError):
    """A caller asked for a query name that queries.sql does not define."""


def parse_queries(text: str) -> dict[str, str]:
    """Split an aiosql-style file into {name: statement}; comment lines stay with the statement."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in {QUERIES_FILE.name}")
        queries[name] = body.strip().rstrip(";")
    return queries


@cache
def queries() -> dict[str, str]:
    return parse_queries(QUERIES_FILE.read_text(encoding="utf-8"))


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the evidence file read-only: the app can never change the shipped data."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run `python -m evidence.extraction.build`")
    return duckdb.connect(str(path), read_only=True)


def run(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pd.DataFrame:
    """Run a named query with bound parameters and return its rows as a DataFrame."""
    try:
        sql = queries()[name]
    except KeyError:
        raise UnknownQuery(f"no query named {name!r} in {QUERIES_FILE.name}") from None
    used = set(re.findall(r"\$(\w+)", sql))
    missing = used - params.keys()
    if missing:
        raise TypeError(f"query {name!r} needs parameters: {', '.join(sorted(missing))}")
    bound = {key: value for key, value in params.items() if key in used}
    # A cursor per call: DuckDB connections are not safe to share across Streamlit's threads.
    return con.cursor().execute(sql, bound).df()
