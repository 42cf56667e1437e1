"""Read a panel's uploaded extraction (an .xlsx workbook or a .zip of CSVs) into raw sheets.

A guideline panel keeps its own extraction and loads it into the dashboard for its browser session.
The upload is untrusted input on a shared server, so this module treats the *container* with
suspicion before any cell is looked at: size, file type (by content, not only by name), zip
structure, declared and actual unpacked sizes, paths. Each refusal is a `Problem` with a fix a
person can act on, and all of them are raised together as `UploadError`.

What comes out is the same `{sheet: CSV bytes}` mapping the build reads from `data/extraction/`,
so an upload is validated by exactly the rules of the shipped build and built by the same code:
`build.from_upload` does both, in memory. Nothing here writes a file or opens a database.

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
import zipfile
import zlib
from collections.abc import Iterator
from itertools import compress, repeat
from operator import is_not
from typing import Any

from openpyxl.cell.read_only import EMPTY_CELL

from evidence.extraction.cells import unescape_cell
from evidence.extraction.contract import HELPER_SHEETS, SHEETS, SHEETS_BY_NAME
from evidence.extraction.validate import MAX_ROWS_PER_SHEET, Problem

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
# A workbook sheet is read no wider and no longer than this (the widest table has 36 columns);
# they bound the time one upload can take, since Excel allows 16,384 x 1,048,576 cells.
MAX_SHEET_COLUMNS = 200
MAX_SCANNED_ROWS = 20 * MAX_ROWS_PER_SHEET

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
    return Problem(filename, None, column, message)


def _shown(name: str, limit: int = 80) -> str:
    """A name from inside the upload, safe to show: printable and short (it is attacker-chosen)."""
    printable = "".join(c if c.isprintable() else "?" for c in name[: limit + 1])
    return printable if len(printable) <= limit else printable[:limit] + "…"


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
    shown = extension or "no extension"
    raise UploadError([_problem(filename, f"unsupported file type ({shown}): {hint}")])


def _open_zip(filename: str, data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as err:
        raise UploadError(
            [
                _problem(
                    filename,
                    f"the archive is damaged or incomplete ({err}): save or compress it again "
                    "and upload the new file",
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
                    f"{_shown(info.filename)} is compressed {ratio:.0f} to 1, more than the "
                    f"{MAX_COMPRESSION_RATIO} to 1 a real sheet reaches: it looks like a zip bomb "
                    "and was not opened",
                )
            )
        if info.flag_bits & 0x1:
            problems.append(
                _problem(
                    filename,
                    f"{_shown(info.filename)} is password-protected: "
                    "upload an archive without a password",
                )
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(
                _problem(
                    filename,
                    f"{_shown(info.filename)} uses an unusual compression method: "
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
    filename: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, keep: bool = True
) -> bytes:
    """Unpack one member in chunks, stopping as soon as it exceeds a limit whatever it declared.

    zipfile already stops at the declared size and checks the CRC, so a member that lies about
    its size is reported as damaged; the running totals here bound memory and time regardless.
    """
    chunks: list[bytes] = []
    read = 0
    try:
        with zf.open(info) as stream:
            while chunk := stream.read(READ_CHUNK):
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
                                f"{_shown(info.filename)} unpacks to more than "
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
                    f"{_shown(info.filename)} inside the archive is damaged ({err}): "
                    "save or compress it again and upload the new file",
                )
            ]
        ) from err
    except (NotImplementedError, RuntimeError) as err:  # unsupported method, encryption
        raise UploadError(
            [_problem(filename, f"{_shown(info.filename)} cannot be unpacked ({err})")]
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
                    f"'{_shown(info.filename)}' has an unsafe path (absolute or with '..'): "
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
                    f"'{_shown(info.filename)}' is in a folder inside a folder: "
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
                    f"'{_shown(info.filename)}' is not a CSV file (unknown file type): "
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
                f"the CSV files are spread over several folders ({', '.join(sorted(folders))}): "
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
        sheet = posixpath.splitext(posixpath.basename(name))[0].strip().lower()
        if sheet in seen:
            problems.append(
                _problem(
                    filename,
                    f"'{_shown(info.filename)}' and '{_shown(seen[sheet])}' are the same sheet: "
                    "keep one",
                )
            )
        seen[sheet] = info.filename
    if problems:
        raise UploadError(problems)
    budget = _Budget()
    for name, info in members:
        sheet = posixpath.splitext(posixpath.basename(name))[0].strip().lower()
        raw[sheet] = _unescape_csv(read_member_bounded(filename, zf, info, budget))
    return raw


def _unescape_csv(data: bytes) -> bytes:
    """Undo `cells.safe_cell` in a CSV sheet; any other sheet is returned byte-for-byte.

    Undecodable or malformed bytes are passed on untouched so that the validator reports them.
    """
    if b"'" not in data:
        return data
    try:
        text = data.decode("utf-8-sig")
        records = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error):
        return data
    changed = [[unescape_cell(cell) for cell in record] for record in records]
    if changed == records:
        return data
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(changed)
    return buffer.getvalue().encode("utf-8")


def cell_text(value: Any) -> str:
    """One workbook cell as the CSV text the validator expects.

    Booleans -> true/false, whole floats -> integers (Excel stores every number as a float),
    dates -> ISO 8601 (a midnight datetime -> the date alone), text -> as typed, minus the
    single quote `cells.safe_cell` adds.
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
        return unescape_cell(value)
    text = getattr(value, "text", None)  # ArrayFormula and other formula objects
    return str(text if text is not None else value)


def _sheet_rows(ws: Any) -> Iterator[tuple[Any, ...]]:
    """Rows of a read-only sheet without padding to the (possibly false) declared dimensions."""
    ws.reset_dimensions()
    yield from ws.iter_rows()


def _worksheet_csv(sheet: str, ws: Any) -> tuple[bytes, list[Problem]]:
    """A worksheet as CSV bytes (one record per spreadsheet row, so row numbers match) plus notes.

    Trailing empty cells and rows are dropped (spreadsheets leave formatted but empty ones).
    Reading stops two rows past the row limit so that the validator reports it.
    """
    notes: list[Problem] = []
    file = f"{sheet} sheet"
    header: list[str] = []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    blank_rows = 0
    records = 0
    wide_reported = False
    for index, row in enumerate(_sheet_rows(ws), start=1):
        if index > MAX_SCANNED_ROWS:
            notes.append(
                Problem(
                    file,
                    index,
                    "",
                    f"the sheet goes on past row {MAX_SCANNED_ROWS}: delete the unused rows "
                    "below the data",
                )
            )
            break
        if len(row) > MAX_SHEET_COLUMNS:
            # openpyxl makes a row as wide as its last stored cell, so row[-1] is a real cell;
            # scan the rest only when that one is an empty, merely formatted cell.
            spill = row[MAX_SHEET_COLUMNS:]
            if not wide_reported and (
                getattr(row[-1], "value", None) is not None
                or any(
                    getattr(c, "value", None) is not None
                    for c in compress(spill, map(is_not, spill, repeat(EMPTY_CELL)))
                )
            ):
                wide_reported = True
                notes.append(
                    Problem(
                        file,
                        index,
                        "",
                        f"has values beyond column {MAX_SHEET_COLUMNS} (later rows may too): "
                        "delete them",
                    )
                )
            row = row[:MAX_SHEET_COLUMNS]
        cells = []
        for position, cell in enumerate(row):
            value = getattr(cell, "value", None)
            text = cell_text(value)
            cells.append(text)
            if index == 1 or value is None:
                continue
            column = header[position] if position < len(header) else f"column {position + 1}"
            if getattr(cell, "data_type", None) == "f":
                notes.append(
                    Problem(file, index, column, f"is a formula ({text[:60]}); {_FORMULA_HINT}")
                )
            elif (
                not isinstance(value, bool)
                and isinstance(value, int | float)
                and "%" in str(getattr(cell, "number_format", ""))
            ):
                notes.append(
                    Problem(
                        file,
                        index,
                        column,
                        f"is formatted as a percentage (stored as {text}): type the percent as "
                        "a plain number (7.5, not 7.5%) in a cell formatted as General",
                    )
                )
        while cells and not cells[-1].strip():
            cells.pop()
        if index == 1:
            header = [c.strip() for c in cells]
            for position, cell in enumerate(row):
                if getattr(cell, "data_type", None) == "f":
                    notes.append(Problem(file, 1, f"column {position + 1}", "is a formula"))
        if not cells:
            blank_rows += 1
            continue
        writer.writerows([[]] * blank_rows)
        records += blank_rows + 1
        blank_rows = 0
        if index > 1 and len(cells) < len(header):
            cells += [""] * (len(header) - len(cells))
        writer.writerow(cells)
        if records > MAX_ROWS_PER_SHEET + 1:
            break
    return buffer.getvalue().encode("utf-8"), notes


def read_workbook(filename: str, data: bytes) -> tuple[dict[str, bytes], list[Problem]]:
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
                        f"sheet '{_shown(title)}' is not one of the tables "
                        f"({', '.join(s.name for s in SHEETS)}): unknown sheet; rename or "
                        "delete it",
                    )
                )
                continue
            if key in titles:
                sheet_problems.append(
                    _problem(
                        filename,
                        f"sheets '{_shown(titles[key])}' and '{_shown(title)}' are the same table",
                    )
                )
                continue
            titles[key] = title
            ws = wb[title]
            if not hasattr(ws, "iter_rows"):  # a chart sheet
                sheet_problems.append(
                    _problem(filename, f"sheet '{_shown(title)}' is a chart, not a table")
                )
                continue
            raw[key], cell_notes = _worksheet_csv(key, ws)
            notes += cell_notes
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
    if not raw:
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
    return raw, sheet_problems + notes


def inspect_upload(filename: str, data: bytes) -> tuple[dict[str, bytes], list[Problem]]:
    """Raw `{sheet: CSV bytes}` from an uploaded .xlsx or .zip, plus the notes only a workbook's
    cells can earn (formulas, percent formats), for the validator to list with its own.

    Raises UploadError (with every container problem and its fix) when the file cannot be read.
    """
    kind = check_container(filename, data)
    if kind == "xlsx":
        return read_workbook(filename, data)
    with _open_zip(filename, data) as zf:
        check_archive(filename, zf)
        return read_csv_zip(filename, zf), []
