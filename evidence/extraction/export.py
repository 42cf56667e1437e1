"""Exports that open safely in a spreadsheet and load back unchanged.

Every text cell goes through `cells.safe_cell` (see `cells` for why and how it is undone on
upload). `frame_to_csv` writes a table exactly as a page shows it. `export_workbook` and
`export_csv_zip` write the database in use in the upload format (one sheet or CSV per table, the
sheet columns only: computed columns such as review_figures' checks and outcomes.study_id are
rebuilt on load), so a panel can edit and load it back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from typing import Any

import duckdb
import pandas as pd
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from evidence.extraction.cells import safe_cell
from evidence.extraction.contract import SHEETS, Sheet
from evidence.extraction.template import sheets_zip, write_workbook


def _plain(value: Any) -> Any:
    """A pandas/numpy value as a plain Python value that openpyxl and csv accept (NaN -> None)."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None  # None, NaN, NaT and pd.NA all mean "no value": an empty cell
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalar
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.isoformat()  # Excel has no time zones; keep the text the page showed
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _xlsx_text(value: Any) -> Any:
    """Text without the control characters XML cannot hold (openpyxl would refuse them)."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def frame_to_csv(df: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV with a byte-order mark, every text cell neutralised.

    The BOM makes Excel read the file as UTF-8 (otherwise "≥" and en dashes come out garbled);
    the extraction validator accepts it too. The index is not written: the download is exactly the
    table shown.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(str(c)) for c in df.columns])
    for record in df.itertuples(index=False, name=None):
        writer.writerow(["" if (v := _plain(x)) is None else safe_cell(v) for x in record])
    return buffer.getvalue().encode("utf-8-sig")


def sheet_text(value: Any) -> str:
    """A stored value as the sheet text the validator reads back as the same value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return safe_cell(value)
    return str(value)


def _sheet_cell(value: Any) -> Any:
    """A stored value as an XLSX cell: numbers stay numbers, booleans become the text true/false."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return _xlsx_text(safe_cell(value))
    return value


def export_rows(con: duckdb.DuckDBPyConnection, sheet: Sheet) -> list[tuple[Any, ...]]:
    """A table's sheet columns in stored (insertion) order, i.e. the order of the loaded sheet.

    Runs on a cursor of `con`, never on `con` itself: the app shares one read-only connection
    between every session's thread, and DuckDB refuses a second concurrent call on a connection
    ("connection is busy") where each cursor is a connection of its own to the same database.
    """
    columns = ", ".join(sheet.column_names)  # names come from the contract, not from users
    with con.cursor() as cursor:
        return cursor.execute(f"SELECT {columns} FROM {sheet.name}").fetchall()


def export_workbook(con: duckdb.DuckDBPyConnection) -> bytes:
    """The database in use as an upload-ready workbook (the template's layout, filled in)."""
    data = {
        sheet.name: [[_sheet_cell(v) for v in row] for row in export_rows(con, sheet)]
        for sheet in SHEETS
    }
    return write_workbook(data)


def export_csv_zip(con: duckdb.DuckDBPyConnection) -> bytes:
    """The database in use as a zip of `<sheet>.csv` files plus the README, ready to edit and load.

    CSVs are written without a BOM, like the sheets kept in git, so an exported set can be
    committed to data/extraction as it is.
    """
    texts = {}
    for sheet in SHEETS:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(sheet.column_names)
        for row in export_rows(con, sheet):
            writer.writerow([sheet_text(v) for v in row])
        texts[sheet.name] = text.getvalue()
    return sheets_zip(texts)
