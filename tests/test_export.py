"""Downloads: text that a spreadsheet could run is neutralised, numbers stay numbers, and the
neutralising quote comes off again on upload."""

from __future__ import annotations

import csv
import io
import itertools
import math
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from evidence.extraction.cells import safe_cell, unescape_cell
from evidence.extraction.export import export_csv_zip, export_workbook, frame_to_csv, sheet_text

THREADS, ROUNDS = 8, 5  # eight sessions downloading at once, five times each


def _members(archive: bytes) -> dict[str, bytes]:
    """An XLSX or zip's files, without the workbook's creation time (it changes each second)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return {n: zipped.read(n) for n in zipped.namelist() if n != "docProps/core.xml"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        (
            '=HYPERLINK("http://evil.example","click")',
            '\'=HYPERLINK("http://evil.example","click")',
        ),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-3 days", "'-3 days"),
        ("-", "'-"),
        ("'=already", "''=already"),
        ("-5", "-5"),  # a plain negative number stays a number
        ("+2.5", "+2.5"),
        ("-1e-3", "-1e-3"),
        ("plain text", "plain text"),
        ("it's fine", "it's fine"),
        ("'quoted", "'quoted"),
        ("", ""),
        (-5, -5),
        (-2.5, -2.5),
        (None, None),
        (True, True),
    ],
)
def test_safe_cell(value: object, expected: object) -> None:
    assert safe_cell(value) == expected


def test_unescape_is_the_exact_inverse_of_safe_cell() -> None:
    alphabet = "'=+-@\t\ra1.e "
    for length in range(5):
        for chars in itertools.product(alphabet, repeat=length):
            text = "".join(chars)
            assert unescape_cell(safe_cell(text)) == text, repr(text)


def test_a_typed_apostrophe_counts_as_the_escape() -> None:
    # Spreadsheets read a leading apostrophe as "this is text"; so does the upload.
    assert unescape_cell("'=1+1") == "=1+1"
    assert unescape_cell("'plain") == "'plain"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": ["=cmd|' /C calc'!A0", "Strati 2020", "@evil", None],
            "events": [-5, 3, 0, 2],
            "percent": [12.5, math.nan, -0.5, 1.0],
            "=header": ["≥ 3", "–", "+44 20", "-"],
        }
    )


def test_frame_to_csv_neutralises_text_and_keeps_numbers() -> None:
    data = frame_to_csv(_frame())
    assert data.startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["study", "events", "percent", "'=header"]
    assert rows[1] == ["'=cmd|' /C calc'!A0", "-5", "12.5", "≥ 3"]
    assert rows[2] == ["Strati 2020", "3", "", "–"]
    assert rows[3] == ["'@evil", "0", "-0.5", "'+44 20"]
    assert rows[4] == ["", "2", "1.0", "'-"]
    assert len(rows) == 5


def test_frame_downloads_handle_dates_and_numpy_types() -> None:
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2021-03-04", None]),
            "n": pd.array([1, None], dtype="Int64"),
            "flag": [True, False],
        }
    )
    rows = list(csv.reader(io.StringIO(frame_to_csv(frame).decode("utf-8-sig"))))
    assert rows[1] == ["2021-03-04 00:00:00", "1", "True"] and rows[2][:2] == ["", ""]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "true"), (False, "false"), (200.0, "200"), (0.1, "0.1"), (7, "7")],
)
def test_sheet_text_reads_back_as_the_same_value(value: object, text: str) -> None:
    assert sheet_text(value) == text


def test_exports_run_at_once_from_many_threads_on_one_read_only_connection(
    fixture_db_path: Path,
) -> None:
    """The app opens the served file once per process and every session's download runs on its
    own thread: the exports must take a cursor of the shared connection (DuckDB refuses a second
    concurrent call on one connection: "connection is busy")."""
    con = duckdb.connect(str(fixture_db_path), read_only=True)
    makers = (export_workbook, export_csv_zip)
    expected = {make: _members(make(con)) for make in makers}
    start = threading.Barrier(THREADS)

    def download(index: int) -> bool:
        make = makers[index % 2]
        start.wait()
        results = [make(con) for _ in range(ROUNDS)]
        return all(_members(result) == expected[make] for result in results)

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            outcomes = [pool.submit(download, i) for i in range(THREADS)]
            failures = [f.exception() for f in outcomes if f.exception() is not None]
            assert not failures, f"{len(failures)} of {THREADS} threads failed: {failures[:3]}"
            assert all(f.result() for f in outcomes)
    finally:
        con.close()
