"""Nothing on screen is a raw code: every page, on the shipped data and on a panel's uploaded
extraction, shows labels for vocabulary codes and "not reported" for gaps, never `not_reported`,
`full_paper`, `None` or `nan`, in its text or its tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from evidence import vocab
from evidence.ui.data import ActiveData

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "overview": None,
    "sof": "pages/sof.py",
    "treatment": "pages/treatment.py",
    "prophylaxis": "pages/prophylaxis.py",
    "dose": "pages/dose.py",
    "safety": "pages/safety.py",
    "studies": "pages/studies.py",
    "methods": "pages/methods.py",
}
# Codes that are not words: every vocabulary code that differs from its label and has an
# underscore (the ones a reader could take for text are words already), plus what a missing
# value prints as.
RAW_CODES = sorted(
    {
        code
        for value in vars(vocab).values()
        if isinstance(value, vocab.Vocabulary)
        for code, label in value.terms
        if "_" in code and code != label
    }
    | {"None", "nan", "NaN", "NaT", "<NA>"}
)
RAW = re.compile(r"(?<![\w`.])(" + "|".join(map(re.escape, RAW_CODES)) + r")(?![\w`])")
LINK_COLUMNS = {"pubmed", "doi_link", "source_url"}
DOCUMENTS = {
    " ".join((ROOT / name).read_text(encoding="utf-8").split())
    for name in ("docs/methods.md", "data/README.md")
}


def _texts(at: AppTest) -> Iterator[str]:
    """Every text a reader sees: Markdown elements (escapes resolved), widget labels, and every
    cell of every table."""
    for kind in ("markdown", "caption", "info", "warning", "title", "header", "subheader"):
        for element in getattr(at, kind):
            text = re.sub(r"\\(.)", r"\1", str(element.value))
            if " ".join(text.split()) not in DOCUMENTS:
                yield text
    for frame in at.dataframe:
        data: pd.DataFrame = frame.value
        for column in data.columns:
            if column in LINK_COLUMNS:
                continue  # a link column: an empty cell shows no link, not "None"
            for cell in data[column]:
                if (
                    isinstance(cell, str)
                    or cell is None
                    or (isinstance(cell, float) and cell != cell)
                ):
                    yield str(cell)


def _open(page: str, study: str | None = None, upload: Path | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if study:
        at.query_params["study"] = study
    if upload is not None:
        con = duckdb.connect(str(upload), read_only=True)
        at.session_state["uploaded_data"] = ActiveData(
            con, "upload:test", "your upload “panel.xlsx”", True, False
        )
    at.run()
    if PAGES[page]:
        at.switch_page(PAGES[page])
        at.run()
    return at


def test_the_search_finds_a_raw_code_when_there_is_one() -> None:
    assert RAW.search("publication type: full_paper")
    assert RAW.search("None")
    assert not RAW.search("full paper, not reported, `not_reported` in a code span")


@pytest.mark.parametrize("page", list(PAGES))
def test_no_raw_code_on_the_shipped_data(
    page: str, shipped_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    at = _open(page, study="Park2023")
    assert not at.exception, [e.value for e in at.exception]
    found = [t for t in _texts(at) if RAW.search(t)]
    assert not found, found[:5]


@pytest.mark.parametrize("page", list(PAGES))
def test_no_raw_code_on_an_uploaded_extraction(
    page: str, shipped_db: Path, fixture_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    at = _open(page, study="Gamma2023", upload=fixture_db_path)
    assert not at.exception, [e.value for e in at.exception]
    found = [t for t in _texts(at) if RAW.search(t)]
    assert not found, found[:5]
