"""The layout's rules, checked: imports run pages -> evidence.ui -> library, Streamlit stays in
the UI layer, and SQL lives in queries.sql."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = [p for p in (ROOT / "evidence").rglob("*.py") if "ui" not in p.relative_to(ROOT).parts]
UI_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_library_never_imports_streamlit_or_the_ui(path: Path) -> None:
    imported = _imports(path)
    assert not any(name.split(".")[0] == "streamlit" for name in imported)
    assert not any(name.startswith("evidence.ui") for name in imported)


@pytest.mark.parametrize(
    "path", sorted((ROOT / "evidence" / "meta").glob("*.py")), ids=lambda p: p.name
)
def test_engine_needs_neither_the_database_nor_the_app(path: Path) -> None:
    imported = _imports(path)
    forbidden = {"duckdb", "streamlit", "altair", "evidence.db", "evidence.analysis"}
    assert not imported & forbidden


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_pages_hold_no_sql_and_no_maths(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\s", text), "SQL belongs in queries.sql"
    imported = _imports(path)
    assert not imported & {"duckdb", "numpy", "scipy", "evidence.meta", "evidence.db"}
