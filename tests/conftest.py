"""Shared fixtures: a database built from tests/fixtures/good by the production build code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from evidence import build

FIXTURE_SHEETS = Path(__file__).parent / "fixtures" / "good"


@pytest.fixture(scope="session")
def fixture_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("db") / "fixture.duckdb"
    return build.build_file(
        build.read_sheet_dir(FIXTURE_SHEETS), target, origin="tests/fixtures/good"
    )


@pytest.fixture
def fixture_con(fixture_db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(fixture_db_path), read_only=True)
    yield con
    con.close()
