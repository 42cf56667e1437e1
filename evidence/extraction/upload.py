"""Read a panel's uploaded extraction (an .xlsx workbook or a .zip of CSVs) into raw sheets.

A guideline panel keeps its own extraction and loads it into the dashboard for its browser session.
The upload is untrusted input on a shared server, so this module treats the *container* with
suspicion before any cell is looked at: size, file type (by content, not only by name), zip
structure, declared and actual unpacked sizes, paths. Each refusal is a `Problem` with a fix a
person can act on, and all of them are raised together as `UploadError`.

What comes out is the same `{sheet: CSV bytes}` mapping the build reads from `data/extraction/`,
so an upload is validated by exactly the rules of the shipped build and built by the same code:
`build.from_upload` does both, in memory. Nothing here writes a file or opens a database.

The work a sheet may cost follows the contract, not the file: a CSV member is unpacked to at
most one byte past `MAX_SHEET_BYTES`, and a worksheet is read as a stream no wider than its
table (plus `MAX_EXTRA_COLUMNS`) and no longer than `MAX_ROWS_PER_SHEET` + 1 rows, stopping at
the first value past either (the problem names the row), so a sheet 16,384 columns wide or a
million rows long costs what one row does. Cells arrive as written; the validator unescapes each
once. Every name from inside the upload (members, sheets, headers) is shown shortened.

Workbooks are read with openpyxl in read-only mode with `data_only=False`: a formula cell arrives as
its formula text and is never evaluated (the cached result is not even read), and the reader notes
each such cell, because a formula's text is not the value a panel meant to enter.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import posixpath
import re
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from evidence.extraction.cells import shown
from evidence.extraction.contract import HELPER_SHEETS, SHEETS, SHEETS_BY_NAME
from evidence.extraction.validate import (
    MAX_ROWS_PER_SHEET,
    MAX_SHEET_BYTES,
    Problem,
    ProblemLog,
)

# Matches .streamlit/config.toml `maxUploadSize = 5` (MB): a real extraction workbook is a few
# hundred KB, and checking here too protects callers that do not go through Streamlit.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Unpacked size of everything in the archive. An .xlsx unpacks to about 5-10x its size; 50 MB
# leaves room for the largest upload while keeping one session's memory bounded.
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
# Apache POI's default for Office files (ZipSecureFile minimum inflate ratio 0.01): real XML and
# CSV compress 5-30x; a bomb is made of highly repetitive data and compresses 1000x or more.
MAX_COMPRESSION_RATIO = 100
# Below this unpacked size a member's ratio does not matter (tiny files can compress oddly well).
RATIO_GRACE_BYTES = 1024 * 1024
# An .xlsx holds about 10 parts plus one per sheet; a CSV zip holds 6 sheets and a README.
MAX_ZIP_ENTRIES = 100
READ_CHUNK = 64 * 1024
# A workbook sheet is read no wider than its table's columns plus these (room for columns the
# validator then names as unknown) and no longer than MAX_ROWS_PER_SHEET + 1 rows: Excel allows
# 16,384 x 1,048,576 cells, and a sheet's cost must follow the contract, not the file.
MAX_EXTRA_COLUMNS = 20
# XML elements a worksheet may hold per cell of that area (a cell and its value, with room for
# formatting rows): past it, whatever the shape, reading stops.
MAX_SHEET_ELEMENTS_PER_CELL = 3

ACCEPTED = "an Excel workbook (.xlsx) or a .zip of CSV sheets"
# Files an operating system or an editor adds to a zip; skipped, never read.
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_FORMULA_HINT = "formulas are read as text and never calculated: type or paste the value itself"


class UploadError(ValueError):
    """The uploaded file itself cannot be read (before any sheet is checked); lists every reason.

    A ValueError, so `python -m evidence.extraction.build --from file.xlsx` reports it like other
    bad input.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _problem(filename: str, message: str, column: str = "") -> Problem:
    """A problem with the upload as a whole, under its (shortened) name: the name is the
    uploader's choice too."""
    return Problem(shown(filename), None, column, message)


def _error_text(err: BaseException) -> str:
    """An exception's message, shortened: zipfile and XML errors repeat names from the file."""
    return shown(str(err), 120)


def _sniff(data: bytes) -> str:
    """What the bytes are, judged by their first bytes, for messages about renamed files."""
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if data.startswith(b"%PDF"):
        return "a PDF document"
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return "an image"
    if data.lstrip()[:1] in (b"<",):
        return "an HTML or XML page"
    if data.startswith((b"{\\rtf",)):
        return "an RTF document"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "some other kind of file"
    return "a plain text file"


def _extension(filename: str) -> str:
    return posixpath.splitext(filename.replace("\\", "/").lower())[1]


def is_workbook(filename: str) -> bool:
    """True if the reader takes `filename` for an .xlsx workbook (else a zip of CSVs or refused)."""
    return _extension(filename) == ".xlsx"


def check_container(filename: str, data: bytes) -> str:
    """'xlsx' or 'zip' if the bytes may be opened as that; otherwise UploadError with the fix."""
    size_mb = MAX_UPLOAD_BYTES // (1024 * 1024)
    if not data:
        raise UploadError(
            [_problem(filename, "the file is empty (0 bytes): upload the saved file again")]
        )
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            [
                _problem(
                    filename,
                    f"the file is {len(data) / 1024 / 1024:.1f} MB, over the {size_mb} MB limit: "
                    "remove images, pivot tables and unused sheets, or upload a .zip of CSVs",
                )
            ]
        )
    extension = _extension(filename)
    kind = _sniff(data)
    if extension == ".xlsx":
        if kind == "zip":
            return "xlsx"
        if kind == "ole":
            message = (
                "is not an .xlsx workbook: it is an old-format .xls file or a password-protected "
                "workbook; remove the password and use File > Save As > Excel Workbook (.xlsx)"
            )
        else:
            message = (
                f"is named .xlsx but is {kind}, not an Excel workbook: "
                "open it in Excel and use File > Save As > Excel Workbook (.xlsx)"
            )
        raise UploadError([_problem(filename, message)])
    if extension == ".zip":
        if kind == "zip":
            return "zip"
        raise UploadError(
            [
                _problem(
                    filename,
                    f"is named .zip but is {kind}, not a zip archive: "
                    "compress the CSV files into a .zip again",
                )
            ]
        )
    hints = {
        ".xls": "the old .xls format cannot be read: use File > Save As > Excel Workbook (.xlsx)",
        ".xlsm": "macro-enabled workbooks are not accepted: save as Excel Workbook (.xlsx)",
        ".xlsb": "binary workbooks are not accepted: save as Excel Workbook (.xlsx)",
        ".ods": "save the spreadsheet as Excel Workbook (.xlsx)",
        ".csv": "a single CSV holds one sheet only: put all the <sheet>.csv files in one .zip",
    }
    hint = hints.get(extension, f"upload {ACCEPTED}")
    kind_shown = shown(extension, 20) if extension else "no extension"
    raise UploadError([_problem(filename, f"unsupported file type ({kind_shown}): {hint}")])


def _open_zip(filename: str, data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as err:
        raise UploadError(
            [
                _problem(
                    filename,
                    f"the archive is damaged or incomplete ({_error_text(err)}): save or compress "
                    "it again and upload the new file",
                )
            ]
        ) from err


def check_archive(filename: str, zf: zipfile.ZipFile) -> None:
    """Refuse archives that are too big once unpacked, judged first by their declared sizes.

    Declared sizes can lie, so `read_member_bounded` enforces the same limits while unpacking.
    """
    infos = zf.infolist()
    problems: list[Problem] = []
    if len(infos) > MAX_ZIP_ENTRIES:
        problems.append(
            _problem(
                filename,
                f"too many files in the archive ({len(infos)}; at most {MAX_ZIP_ENTRIES}): "
                "upload only the sheets",
            )
        )
    declared = sum(info.file_size for info in infos)
    if declared > MAX_UNPACKED_BYTES:
        problems.append(
            _problem(
                filename,
                f"the archive would unpack to {declared / 1024 / 1024:.0f} MB, over the "
                f"{MAX_UNPACKED_BYTES // (1024 * 1024)} MB limit: it is not an extraction "
                "(or contains far more than one)",
            )
        )
    for info in infos:
        if info.file_size > RATIO_GRACE_BYTES and (
            info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            problems.append(
                _problem(
                    filename,
                    f"{shown(info.filename)} is compressed {ratio:.0f} to 1, more than the "
                    f"{MAX_COMPRESSION_RATIO} to 1 a real sheet reaches: it looks like a zip bomb "
                    "and was not opened",
                )
            )
        if info.flag_bits & 0x1:
            problems.append(
                _problem(
                    filename,
                    f"{shown(info.filename)} is password-protected: "
                    "upload an archive without a password",
                )
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(
                _problem(
                    filename,
                    f"{shown(info.filename)} uses an unusual compression method: "
                    "compress the files again with your system's standard zip tool",
                )
            )
    if problems:
        raise UploadError(problems)


class _Budget:
    """Unpacked bytes still allowed for the whole archive, shared by all its members."""

    def __init__(self, total: int = MAX_UNPACKED_BYTES):
        self.left = total


def read_member_bounded(
    filename: str,
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    budget: _Budget,
    keep: bool = True,
    limit: int | None = None,
) -> bytes:
    """Unpack one member in chunks, stopping as soon as it exceeds a limit whatever it declared.

    zipfile already stops at the declared size and checks the CRC, so a member that lies about
    its size is reported as damaged; the running totals here bound memory and time regardless.
    With `limit`, unpacking stops once more than `limit` bytes came out and the first `limit + 1`
    are returned, for the caller to refuse as too large without unpacking the rest.
    """
    chunks: list[bytes] = []
    read = 0
    try:
        with zf.open(info) as stream:
            while chunk := stream.read(READ_CHUNK):
                if limit is not None and read + len(chunk) > limit:
                    chunks.append(chunk[: limit + 1 - read])
                    return b"".join(chunks)
                read += len(chunk)
                budget.left -= len(chunk)
                if budget.left < 0:
                    raise UploadError(
                        [
                            _problem(
                                filename,
                                f"the archive unpacks to more than "
                                f"{MAX_UNPACKED_BYTES // (1024 * 1024)} MB: it is not an "
                                "extraction (or contains far more than one)",
                            )
                        ]
                    )
                if read > RATIO_GRACE_BYTES and read > MAX_COMPRESSION_RATIO * max(
                    info.compress_size, 1
                ):
                    raise UploadError(
                        [
                            _problem(
                                filename,
                                f"{shown(info.filename)} unpacks to more than "
                                f"{MAX_COMPRESSION_RATIO} times its packed size: it looks "
                                "like a zip bomb and was not read",
                            )
                        ]
                    )
                if keep:
                    chunks.append(chunk)
    except UploadError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        OSError,
        EOFError,
        ValueError,
    ) as err:
        raise UploadError(
            [
                _problem(
                    filename,
                    f"{shown(info.filename)} inside the archive is damaged ({_error_text(err)}): "
                    "save or compress it again and upload the new file",
                )
            ]
        ) from err
    except (NotImplementedError, RuntimeError) as err:  # unsupported method, encryption
        raise UploadError(
            [_problem(filename, f"{shown(info.filename)} cannot be unpacked ({_error_text(err)})")]
        ) from err
    return b"".join(chunks)


def _unsafe_path(name: str) -> bool:
    parts = name.split("/")
    return (
        name.startswith("/")
        or re.match(r"^[A-Za-z]:", name) is not None
        or any(part in ("..", ".") for part in parts)
        or "\x00" in name
    )


def _is_junk(name: str) -> bool:
    base = posixpath.basename(name).lower()
    return name.startswith("__MACOSX/") or base.startswith("._") or base in _JUNK_NAMES


def _is_readme(name: str) -> bool:
    base = posixpath.basename(name).lower()
    stem, extension = posixpath.splitext(base)
    return stem == "readme" and extension in ("", ".txt", ".md")


def read_csv_zip(filename: str, zf: zipfile.ZipFile) -> dict[str, bytes]:
    """`<sheet>.csv` members (at the top level or in one folder) as raw sheets."""
    names = zf.namelist()
    if "[Content_Types].xml" in names or any(n.startswith("xl/") for n in names):
        raise UploadError(
            [_problem(filename, "this is an Excel workbook renamed to .zip: rename it to .xlsx")]
        )
    problems: list[Problem] = []
    members: list[tuple[str, zipfile.ZipInfo]] = []
    folders: set[str] = set()
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        if _unsafe_path(name):
            problems.append(
                _problem(
                    filename,
                    f"'{shown(info.filename)}' has an unsafe path (absolute or with '..'): "
                    "put the CSV files at the top of the zip or in one folder",
                )
            )
            continue
        if info.is_dir() or name.endswith("/") or _is_junk(name):
            continue
        if name.count("/") > 1:
            problems.append(
                _problem(
                    filename,
                    f"'{shown(info.filename)}' is in a folder inside a folder: "
                    "put the CSV files at the top of the zip or in one folder",
                )
            )
            continue
        if _is_readme(name):
            continue
        if _extension(name) != ".csv":
            problems.append(
                _problem(
                    filename,
                    f"'{shown(info.filename)}' is not a CSV file (unknown file type): "
                    "the zip may only hold <sheet>.csv files (and a README)",
                )
            )
            continue
        folders.add(posixpath.dirname(name))
        members.append((name, info))
    if len(folders) > 1:
        problems.append(
            _problem(
                filename,
                "the CSV files are spread over several folders "
                f"({shown(', '.join(sorted(folders)), 120)}): "
                "put them all in one folder",
            )
        )
    if not members and not problems:
        problems.append(
            _problem(
                filename,
                "the zip contains no CSV sheets: it should hold "
                + ", ".join(f"{s.name}.csv" for s in SHEETS),
            )
        )
    raw: dict[str, bytes] = {}
    seen: dict[str, str] = {}
    for name, info in members:
        sheet = _sheet_key(name)
        if sheet in seen:
            problems.append(
                _problem(
                    filename,
                    f"'{shown(info.filename)}' and '{shown(seen[sheet])}' are the same sheet: "
                    "keep one",
                )
            )
        seen[sheet] = info.filename
    if problems:
        raise UploadError(problems)
    budget = _Budget()
    for name, info in members:
        sheet = _sheet_key(name)
        if sheet not in SHEETS_BY_NAME:
            raw[sheet] = b""  # named as an unknown sheet; its contents are never read
            continue
        # At most one byte past a sheet's limit is unpacked: the validator refuses it by its size
        # before decoding anything. Cells are unescaped by the validator, one at a time.
        raw[sheet] = read_member_bounded(filename, zf, info, budget, limit=MAX_SHEET_BYTES)
    return raw


def _sheet_key(member: str) -> str:
    return posixpath.splitext(posixpath.basename(member))[0].strip().lower()


def cell_text(value: Any) -> str:
    """One workbook cell as the CSV text the validator expects.

    Booleans -> true/false, whole floats -> integers (Excel stores every number as a float),
    dates -> ISO 8601 (a midnight datetime -> the date alone), text -> as typed (the validator
    removes the single quote `cells.safe_cell` adds, as it does for a CSV's cells).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str):
        return value
    text = getattr(value, "text", None)  # ArrayFormula and other formula objects
    return str(text if text is not None else value)


_sizing_lock = threading.Lock()


@contextmanager
def _unsized_sheets() -> Iterator[None]:
    """openpyxl, opening a workbook read-only, sizes every sheet by parsing its XML up to the
    `<dimension>` element, which is optional: without it, the whole part is parsed (20 MB of XML
    took 0.7 s before a single row was read). The reader never uses the size, so sheets are
    opened unsized."""
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    with _sizing_lock:
        real = ReadOnlyWorksheet._get_size
        ReadOnlyWorksheet._get_size = lambda self: None
        try:
            yield
        finally:
            ReadOnlyWorksheet._get_size = real


class _SheetStopped(Exception):
    """Reading a worksheet stopped at a limit; `problem` says where and why."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))


def _has_value(cell: Any, value_tag: str, formula_tag: str, inline_tag: str) -> bool:
    """True if a worksheet `<c>` element holds something (a value, a formula, inline text), not
    merely a format."""
    return bool(cell.findtext(value_tag)) or any(
        cell.find(tag) is not None for tag in (formula_tag, inline_tag)
    )


def _stored_rows(ws: Any, file: str, width: int) -> Iterator[tuple[int, list[Any]]]:
    """(spreadsheet row, cells of its first `width` columns) for each row the worksheet's XML
    stores, read as a stream that stops at the sheet's limits (raising `_SheetStopped`).

    openpyxl's own row reader turns every stored cell of a row into an object before it can be
    looked at: a row 16,384 cells wide costs that much, on every row. Here a cell beyond `width`
    is only counted, the first one that holds a value stops the sheet, and so does the first row
    stored below row MAX_ROWS_PER_SHEET + 1 and any sheet whose XML holds more elements than a
    full sheet of the contract's width could. openpyxl still decodes each cell kept (shared
    strings, dates, formulas as text, styles), so a value means what it means in Excel.
    """
    from openpyxl.cell.read_only import ReadOnlyCell
    from openpyxl.utils.cell import column_index_from_string, get_column_letter
    from openpyxl.worksheet._reader import (
        CELL_TAG,
        FORMULA_TAG,
        INLINE_STRING,
        ROW_TAG,
        VALUE_TAG,
        WorkSheetParser,
    )
    from openpyxl.xml.functions import iterparse

    last_row = MAX_ROWS_PER_SHEET + 1
    budget = MAX_SHEET_ELEMENTS_PER_CELL * last_row * width
    workbook = ws.parent
    # openpyxl's read-only sheet and workbook internals (pinned in requirements.txt): the part's
    # stream, the shared strings and the date formats its own row reader is given.
    with ws._get_source() as source:
        parser = WorkSheetParser(
            source,
            ws._shared_strings,
            data_only=False,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        kept: list[Any] = []
        row_number = column = 0
        for elements, (_, element) in enumerate(iterparse(source), start=1):
            if elements > budget:
                raise _SheetStopped(
                    Problem(
                        file,
                        row_number + 1,
                        "",
                        f"the sheet stores far more cells than {MAX_ROWS_PER_SHEET:,} rows of "
                        f"{width} columns (formatted or filled), so reading stopped near this row: "
                        "delete the rows and columns outside the table",
                        blocking=True,
                    )
                )
            tag = element.tag
            if tag == CELL_TAG:
                coordinate = element.get("r")
                column = (
                    column_index_from_string(coordinate.rstrip("0123456789"))
                    if coordinate
                    else column + 1
                )
                if column <= width:
                    kept.append(element)
                elif _has_value(element, VALUE_TAG, FORMULA_TAG, INLINE_STRING):
                    row = coordinate[len(coordinate.rstrip("0123456789")) :] if coordinate else ""
                    raise _SheetStopped(
                        Problem(
                            file,
                            int(row) if row else row_number + 1,
                            "",
                            f"has a value in column {get_column_letter(min(column, 16384))}, "
                            f"beyond the {width} columns a sheet is read to: reading stopped "
                            "here; delete everything right of the table",
                            blocking=True,
                        )
                    )
            elif tag == ROW_TAG:
                stored = element.get("r")
                row_number = int(float(stored)) if stored else row_number + 1
                if row_number > last_row:
                    filled = any(_has_value(c, VALUE_TAG, FORMULA_TAG, INLINE_STRING) for c in kept)
                    what = "has values" if filled else "has formatted rows"
                    raise _SheetStopped(
                        Problem(
                            file,
                            row_number,
                            "",
                            f"{what} below row {last_row} (a sheet holds at most "
                            f"{MAX_ROWS_PER_SHEET:,} rows): reading stopped at this row; delete "
                            "the rows below the data",
                            blocking=True,
                        )
                    )
                parser.row_counter, parser.col_counter = row_number, 0
                cells = [ReadOnlyCell(ws, **parser.parse_cell(c)) for c in kept]
                kept.clear()
                element.clear()
                column = 0
                yield row_number, cells


def _worksheet_csv(sheet: str, ws: Any) -> tuple[bytes | None, list[Problem]]:
    """A worksheet as CSV bytes (one record per spreadsheet row, so row numbers match) plus notes,
    or None (and the problem why) when it had to stop at a limit.

    Trailing empty cells and rows are dropped (spreadsheets leave formatted but empty ones). At
    most one byte past `MAX_SHEET_BYTES` of CSV is written, for the validator to refuse by size.
    """
    file = f"{sheet} sheet"
    notes = ProblemLog()
    width = len(SHEETS_BY_NAME[sheet].columns) + MAX_EXTRA_COLUMNS
    header: list[str] = []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    written = 0  # records written, blank ones included
    try:
        for index, row in _stored_rows(ws, file, width):
            cells = [""] * max((c.column for c in row), default=0)
            for cell in row:
                value = cell.value
                text = cell_text(value)
                cells[cell.column - 1] = text
                if value is None:
                    continue
                if index == 1:
                    if cell.data_type == "f":
                        notes.add(Problem(file, 1, f"column {cell.column}", "is a formula"))
                    continue
                column = (
                    shown(header[cell.column - 1])
                    if cell.column <= len(header)
                    else f"column {cell.column}"
                )
                if cell.data_type == "f":
                    formula = shown(text, 60)
                    notes.add(
                        Problem(file, index, column, f"is a formula ({formula}); {_FORMULA_HINT}")
                    )
                elif (
                    not isinstance(value, bool)
                    and isinstance(value, int | float)
                    and "%" in str(cell.number_format)
                ):
                    notes.add(
                        Problem(
                            file,
                            index,
                            column,
                            f"is formatted as a percentage (stored as {shown(text, 30)}): type "
                            "the percent as a plain number (7.5, not 7.5%) in a cell formatted as "
                            "General",
                        )
                    )
            while cells and not cells[-1].strip():
                cells.pop()
            if index == 1:
                header = [c.strip() for c in cells]
            if not cells:
                continue
            writer.writerows([[]] * (index - 1 - written))  # the blank rows above, kept
            if index > 1 and len(cells) < len(header):
                cells += [""] * (len(header) - len(cells))
            writer.writerow(cells)
            written = index
            if buffer.tell() > MAX_SHEET_BYTES:
                break
    except _SheetStopped as stop:
        notes.add(stop.problem)
        return None, notes.problems()
    text = buffer.getvalue()
    return text[: MAX_SHEET_BYTES + 1].encode("utf-8"), notes.problems()


def read_workbook(filename: str, data: bytes) -> Inspected:
    """Sheets of an .xlsx (already vetted as an archive) as raw CSV bytes, plus cell notes."""
    from openpyxl import load_workbook  # imported here: only uploads of workbooks need it

    with _open_zip(filename, data) as zf:
        check_archive(filename, zf)
        budget = _Budget()
        for info in zf.infolist():  # proves every part unpacks within the limits
            read_member_bounded(filename, zf, info, budget, keep=False)
        names = set(zf.namelist())
    if "xl/workbook.xml" not in names and not any(n.endswith("workbook.xml") for n in names):
        raise UploadError(
            [
                _problem(
                    filename,
                    "is a zip archive, not an Excel workbook: if it holds CSV sheets, "
                    "rename it to .zip; otherwise save the spreadsheet as .xlsx",
                )
            ]
        )
    try:
        with _unsized_sheets():
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as err:  # openpyxl raises many types for malformed parts
        raise UploadError(
            [
                _problem(
                    filename,
                    f"could not be read as an Excel workbook ({type(err).__name__}): open it in "
                    "Excel and save it again as Excel Workbook (.xlsx)",
                )
            ]
        ) from err
    raw: dict[str, bytes] = {}
    unread: set[str] = set()
    notes: list[Problem] = []
    sheet_problems: list[Problem] = []
    titles: dict[str, str] = {}
    try:
        for title in wb.sheetnames:
            key = title.strip().lower()
            if key in HELPER_SHEETS:
                continue
            if key not in SHEETS_BY_NAME:
                sheet_problems.append(
                    _problem(
                        filename,
                        f"sheet '{shown(title)}' is not one of the tables "
                        f"({', '.join(s.name for s in SHEETS)}): unknown sheet; rename or "
                        "delete it",
                    )
                )
                continue
            if key in titles:
                sheet_problems.append(
                    _problem(
                        filename,
                        f"sheets '{shown(titles[key])}' and '{shown(title)}' are the same table",
                    )
                )
                continue
            titles[key] = title
            ws = wb[title]
            if not hasattr(ws, "iter_rows"):  # a chart sheet
                sheet_problems.append(
                    _problem(filename, f"sheet '{shown(title)}' is a chart, not a table")
                )
                continue
            text, cell_notes = _worksheet_csv(key, ws)
            notes += cell_notes
            if text is None:
                unread.add(key)
            else:
                raw[key] = text
    except Exception as err:  # openpyxl raises many types for malformed sheet XML
        raise UploadError(
            [
                _problem(
                    filename,
                    f"a sheet could not be read ({type(err).__name__}): open the workbook in "
                    "Excel and save it again as Excel Workbook (.xlsx)",
                )
            ]
        ) from err
    finally:
        wb.close()
    if not raw and not unread:
        raise UploadError(
            [
                _problem(
                    filename,
                    "the workbook has no recognised sheets: name one sheet per table ("
                    + ", ".join(s.name for s in SHEETS)
                    + "), or start from the template",
                ),
                *sheet_problems,
            ]
        )
    # Unknown sheets are reported with the cell problems, so the whole list comes at once.
    return Inspected(raw, sheet_problems + notes, frozenset(unread))


class Inspected(NamedTuple):
    """What the reader makes of an upload, for the validator."""

    raw: dict[str, bytes]  # {sheet: CSV bytes}, each at most MAX_SHEET_BYTES + 1
    notes: list[Problem]  # what only a workbook's cells can earn, and where a sheet stopped
    unread: frozenset[str]  # sheets that stopped at a limit: not validated, nor checked against


def inspect_upload(filename: str, data: bytes) -> Inspected:
    """Raw `{sheet: CSV bytes}` from an uploaded .xlsx or .zip, plus the notes only a workbook's
    cells can earn (formulas, percent formats, a sheet stopped at a limit), for the validator to
    list with its own. The cells are as written: the validator unescapes each once.

    Raises UploadError (with every container problem and its fix) when the file cannot be read.
    """
    kind = check_container(filename, data)
    if kind == "xlsx":
        return read_workbook(filename, data)
    with _open_zip(filename, data) as zf:
        check_archive(filename, zf)
        return Inspected(read_csv_zip(filename, zf), [], frozenset())
