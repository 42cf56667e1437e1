"""The layout's rules, checked on the code's own imports: pages talk to `evidence.ui` only,
Streamlit stays in the UI layer, the engine needs nothing of the app, no module imports
another that imports it back, the benchmarks need nothing of the tests, and SQL lives in
queries.sql."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = sorted(
    p for p in (ROOT / "evidence").rglob("*.py") if "ui" not in p.relative_to(ROOT).parts
)
PAGES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in (ROOT / "evidence").rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (a deferred import counts): for
    `from package import name` the submodule when `name` is one."""
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                names.add(full if full in MODULES else base)
    return names


def _graph() -> dict[str, set[str]]:
    return {name: _imports(path) & MODULES.keys() - {name} for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_search_sees_the_real_graph() -> None:
    graph = _graph()
    assert "evidence.filters" in graph["evidence.analysis"]
    assert "evidence.meta.proportions" in graph["evidence.analysis"]
    assert "evidence.ui.data" in graph["evidence.ui.components"]


def test_no_import_cycle_anywhere_in_the_library() -> None:
    assert _cycle(_graph()) is None, f"import cycle: {' -> '.join(_cycle(_graph()) or [])}"


def test_the_cycle_check_finds_a_cycle_when_there_is_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


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
    assert not any(name.split(".")[0] in {"duckdb", "streamlit", "altair"} for name in imported)
    app_modules = {n for n in imported if n.startswith("evidence.") and "meta" not in n}
    assert not app_modules, f"the engine imports the app: {app_modules}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_import_only_the_ui_layer(path: Path) -> None:
    imported = _imports(path)
    allowed = {name for name in imported if name == "streamlit" or name.startswith("evidence.ui")}
    assert imported - allowed == set(), f"{path.name} imports {imported - allowed}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_hold_no_sql(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = re.search(r"\b(select|insert|update|delete)\s+[\w*]+\s+(from|into|set)\b", text, re.I)
    assert not found, f"SQL belongs in queries.sql: {found.group(0) if found else ''}"


@pytest.mark.parametrize("path", sorted((ROOT / "bench").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_need_nothing_of_the_tests(path: Path) -> None:
    assert not any(name.split(".")[0] == "tests" for name in _imports(path))


def test_sql_lives_in_queries_sql() -> None:
    """No SQL statement text in the library outside the build's schema and inserts."""
    allowed = {"build.py", "schema.sql"}
    for path in LIBRARY:
        if path.name in allowed:
            continue
        text = path.read_text(encoding="utf-8")
        found = re.search(r"\bSELECT\s+[\w*.]+(\s*,\s*[\w.]+)*\s+FROM\b", text)
        assert not found, f"{path.name}: {found.group(0) if found else ''}"
