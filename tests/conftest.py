"""Shared fixtures: databases built by the production build code, and the dashboard's own data
facade over them, so tests read numbers the way the pages do."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from evidence import db
from evidence.extraction import build
from evidence.filters import Slice

FIXTURE_SHEETS = Path(__file__).parent / "fixtures" / "good"


@pytest.fixture(scope="session", autouse=True)
def dataset_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The dataset store (evidence.datasets) every test and every server a test starts uses: a
    temporary folder, never the repository's data/datasets. Sharing by link is on, as by
    default."""
    folder = tmp_path_factory.mktemp("datasets")
    previous = os.environ.get("ANAKINRA_DATASETS")
    os.environ["ANAKINRA_DATASETS"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("ANAKINRA_DATASETS", None)
    else:
        os.environ["ANAKINRA_DATASETS"] = previous


@pytest.fixture(scope="session")
def fixture_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small made-up extraction in tests/fixtures/good: for logic, not for the data."""
    target = tmp_path_factory.mktemp("db") / "fixture.duckdb"
    return build.build_from(FIXTURE_SHEETS, target)


@pytest.fixture
def fixture_con(fixture_db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(fixture_db_path), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="session")
def shipped_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real extraction (data/extraction) built once per run into a private file."""
    target = tmp_path_factory.mktemp("shipped") / "anakinra.duckdb"
    return build.build_from(build.SHEETS_DIR, target)


@pytest.fixture(scope="session")
def shipped_con(shipped_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(shipped_db), read_only=True)
    yield con
    con.close()


EvidenceOf = Callable[..., object]


@pytest.fixture(scope="session")
def evidence_of() -> EvidenceOf:
    """`evidence_of(con, rows, method)`: the dashboard's facade (evidence.ui.data) for a slice of
    the database behind `con`, outside a Streamlit run: the same cached path the pages use."""
    from evidence.ui.data import ActiveData, SliceEvidence

    def make(
        con: duckdb.DuckDBPyConnection, rows: Slice | None = None, method: str = "glmm"
    ) -> SliceEvidence:
        info = dict(db.run(con, "build_info").itertuples(index=False))
        source = ActiveData(con, f"test:{info['sheets_sha256']}", "test data", is_upload=False)
        return SliceEvidence(source, rows if rows is not None else Slice(), method)

    return make
