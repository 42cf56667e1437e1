"""Downloads: text that a spreadsheet could run is neutralised, numbers stay numbers, and the
neutralising quote comes off again on upload."""

from __future__ import annotations

import csv
import io
import itertools
import math

import pandas as pd
import pytest

from evidence.extraction.cells import safe_cell, unescape_cell
from evidence.extraction.export import frame_to_csv, sheet_text


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
