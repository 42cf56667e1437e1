"""Validate raw extraction sheets and turn them into typed rows.

Every problem is collected (not raised at the first one) so that a person fixing a sheet sees the
whole list at once, each as `file:row:column: message` with spreadsheet-style row numbers (the
header is row 1). Nothing here writes anything: the build only writes when this finds no problem.

A sheet may come from a stranger's upload, so the work on it is bounded before it is done: its
size is checked before it is decoded, its rows are read one at a time and reading stops at the
first row past the limit (that row is named), each cell is unescaped and checked once as its row
goes by, and no more than `MAX_PROBLEMS_PER_FILE` problems are kept per sheet (the rest are
counted). The root cause comes first: a problem that stopped a sheet (or the file) from being
read is listed before any cell problem, and nothing is checked against a sheet that could not be
read (no "does not exist in studies.csv" for every row when studies.csv is UTF-16).
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from evidence.extraction.cells import shown, unescape_cell
from evidence.extraction.contract import (
    FACT_PREFIXES,
    FACT_VALUE_COLUMNS,
    ID_PATTERN,
    SHEETS,
    SHEETS_BY_NAME,
    Column,
    Sheet,
)

# Limits that protect a shared server from oversized uploads; the shipped sheets are far below
# them (the largest is 99 rows and 14 KB).
MAX_ROWS_PER_SHEET = 5_000
MAX_CELL_CHARS = 4_000
# A sheet's bytes as CSV: 5,000 rows of 1.6 KB (a shipped cohort row is under 0.9 KB). Checked
# before the sheet is decoded; an upload's reader stops unpacking or converting a sheet here.
MAX_SHEET_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class SheetLimits:
    """How many rows and bytes one sheet may hold.

    An upload to the hosted app is read on a server that other panels share, so it gets
    `UPLOAD_LIMITS`; a host building its own database from a folder of CSVs on the command line
    (`python -m evidence.extraction.build --from DIR`) gets `BUILD_LIMITS`, which only guard
    against a wrong file (a 100,000-cohort extraction has about 330,000 outcome rows, 90 MB).
    """

    rows: int
    sheet_bytes: int


UPLOAD_LIMITS = SheetLimits(MAX_ROWS_PER_SHEET, MAX_SHEET_BYTES)
BUILD_LIMITS = SheetLimits(5_000_000, 2 * 1024 * 1024 * 1024)

# Problems kept per sheet; the rest are counted in one line. A person fixes the first ones first,
# and a sheet of 16,384 unknown columns must not become 16,384 lines (or that much memory).
MAX_PROBLEMS_PER_FILE = 100

Row = dict[str, Any]

_BOM = b"\xef\xbb\xbf"
_SAVE_AS_UTF8 = "save the sheet as 'CSV UTF-8' (Excel) or 'Text CSV, UTF-8' (LibreOffice)"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one cell (or row, or file), located as a person would look for it.

    `blocking`: this problem stopped the file (or sheet) from being read further, so it is the
    root cause of whatever else is missing and is listed first. It is not part of the identity.
    """

    file: str
    row: int | None
    column: str
    message: str
    blocking: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        return f"{where}:{self.column or '-'}: {self.message}"


class ValidationError(Exception):
    """Raised by the build when any problem was found; carries the full list."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the extraction sheets")


def in_order(problems: Iterable[Problem]) -> list[Problem]:
    """Each problem once, root causes first, then by file, row, column and message: the order a
    person fixes them in.

    A problem that kept a file or sheet from being read (an encoding, a header, too many rows) and
    every file-level problem (row None) come before the cell problems of any sheet.
    """
    return sorted(
        set(problems),
        key=lambda p: (
            not (p.blocking or p.row is None),
            p.file,
            p.row or 0,
            p.column,
            p.message,
        ),
    )


class ProblemLog:
    """Problems as they are found, at most `limit` kept per file; the others are only counted.

    The first ones found are kept: a sheet is read from the top, so these are its earliest rows.
    """

    def __init__(self, limit: int = MAX_PROBLEMS_PER_FILE):
        self.limit = limit
        self._kept: list[Problem] = []
        self._per_file: Counter[str] = Counter()

    def add(self, problem: Problem) -> None:
        self._per_file[problem.file] += 1
        if self._per_file[problem.file] <= self.limit:
            self._kept.append(problem)

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    def problems(self) -> list[Problem]:
        """The kept problems, plus one line per file that had more."""
        more = [
            Problem(
                file,
                None,
                "",
                f"{count - self.limit:,} more problems in this sheet are not listed: fix the "
                f"{self.limit} listed and check the file again",
            )
            for file, count in self._per_file.items()
            if count > self.limit
        ]
        return self._kept + more


_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> set[str]:
    """English spellings of 0-99 ("twenty three", "twenty-three"), for quotes that spell counts."""
    if n < 20:
        return {_WORDS[n]}
    if n < 100:
        tens, unit = divmod(n, 10)
        if unit == 0:
            return {_TENS[tens - 2]}
        return {f"{_TENS[tens - 2]} {_WORDS[unit]}", f"{_TENS[tens - 2]}-{_WORDS[unit]}"}
    return set()


def format_number(value: float | int) -> str:
    """The shortest printed form of a number, as a quote would show it (20.0 -> "20")."""
    return format(value, "g") if isinstance(value, float) else str(value)


def number_appears(quote: str, value: float | int) -> bool:
    """True if `value` is printed in `quote` as digits (not inside a longer number) or as words."""
    text = format_number(value)
    if text in quote and re.search(rf"(?<![\d.]){re.escape(text)}(?!\d|\.\d)", quote):
        return True
    if isinstance(value, int) or float(value).is_integer():
        lowered = quote.lower()
        return any(re.search(rf"\b{w}\b", lowered) for w in _number_words(int(value)))
    return False


def _encoding_problem(raw: bytes) -> str | None:
    """What is wrong with the encoding of a sheet that is not plain UTF-8, judged by its first
    bytes, in words a person can act on; None when nothing is seen there."""
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return f"is UTF-32 text, not UTF-8: {_SAVE_AS_UTF8}"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f"is UTF-16 text (Excel's 'Unicode Text'), not UTF-8: {_SAVE_AS_UTF8}"
    if raw.startswith(_BOM + _BOM):
        return (
            "starts with two byte-order marks (it was converted to UTF-8 twice), so its first "
            f"column name is not read as written: {_SAVE_AS_UTF8} once, from the original"
        )
    if b"\x00" in raw[:4096]:
        return (
            "contains NUL bytes: it is UTF-16 text without a byte-order mark, or not text at all: "
            + _SAVE_AS_UTF8
        )
    return None


def decode_sheet(
    name: str, raw: bytes, max_bytes: int = MAX_SHEET_BYTES
) -> tuple[str | None, list[Problem]]:
    """Decode bytes as UTF-8 (one BOM is accepted), reporting the line of the first bad byte.

    The size is checked first, and an encoding that is not UTF-8 (UTF-16, a double BOM) is named
    as such rather than as a bad byte or, worse, a missing first column.
    """
    file = f"{name}.csv"
    if len(raw) > max_bytes:
        return None, [
            Problem(
                file,
                None,
                "",
                f"the sheet is larger than {max_bytes // (1024 * 1024):,} MB, the most one "
                "sheet may hold, so it was not read (an extraction sheet is a few hundred KB): "
                "upload only the extraction's rows",
                blocking=True,
            )
        ]
    if not raw.strip():
        return None, [
            Problem(file, None, "", "the file is empty: it needs at least a header row", True)
        ]
    encoding = _encoding_problem(raw)
    if encoding:
        return None, [Problem(file, None, "", encoding, blocking=True)]
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        message = (
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); {_SAVE_AS_UTF8}"
        )
        return None, [Problem(file, line, "", message, blocking=True)]


def _out_of_range(column: Column, value: float, text: str) -> str | None:
    if column.bounds is None:
        return None
    low, high = column.bounds
    if low <= value <= high:
        return None
    return f"'{shown(text)}' is outside {column.range_text}, the range {column.name} allows"


_ID = re.compile(ID_PATTERN)
_DIGITS = re.compile(r"[0-9]+")


def _parse_cell(column: Column, text: str) -> tuple[Any, str | None]:
    """Convert one non-empty cell to its Python value, or return an error message."""
    if column.kind in ("text", "ref"):
        return text, None
    if column.kind == "id":
        if not _ID.match(text):
            return (
                None,
                f"'{shown(text)}' is not a valid id (letters, digits, _ and -, starting with a "
                "letter)",
            )
        return text, None
    if column.kind == "int":
        if not _DIGITS.fullmatch(text):
            return None, f"'{shown(text)}' is not a whole number ≥ 0"
        # Compared as digits first: int() of a 4,000-digit cell is work for nothing.
        stripped = text.lstrip("0") or "0"
        value = int(stripped) if len(stripped) <= 18 else math.inf
        error = _out_of_range(column, value, text)
        return (None, error) if error else (int(value), None)
    if column.kind == "number":
        try:
            number = float(text)
        except ValueError:
            return None, f"'{shown(text)}' is not a number"
        if not math.isfinite(number):
            return None, f"'{shown(text)}' must be a finite number"
        error = _out_of_range(column, number, text)
        return (None, error) if error else (number, None)
    if column.kind == "bool":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            return None, f"'{shown(text)}' must be true or false"
        return lowered == "true", None
    if column.kind == "vocab":
        if text not in column.vocab:
            return None, f"'{shown(text)}' is not one of: {', '.join(column.vocab)}"
        return text, None
    if column.kind == "list":
        items = [item.strip() for item in text.split(";") if item.strip()]
        unknown = [item for item in items if column.vocab and item not in column.vocab]
        if unknown:
            listed = shown(", ".join(unknown))
            return None, f"{listed} not among: {', '.join(column.vocab)}"
        return ";".join(items), None
    raise AssertionError(f"unknown column kind {column.kind}")


# A line with its ending (\r\n, \n or a lone \r, as a file opened with newline="" gives them).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _lines(text: str) -> Iterator[str]:
    """The lines of `text` one at a time, for the CSV reader: no copy of the sheet is made (an
    io.StringIO holds four bytes a character)."""
    return (match.group() for match in _LINE.finditer(text))


def _records(reader: Any) -> Iterator[list[str] | csv.Error]:
    """The CSV reader's records one at a time; a malformed one ends the sheet as its error."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield err
            return
        yield record


def parse_sheet(
    sheet: Sheet,
    text: str,
    log: ProblemLog,
    unescape: bool = False,
    max_rows: int = MAX_ROWS_PER_SHEET,
) -> list[Row] | None:
    """Check the header and every cell's type, one row at a time, into `log`; rows come back with
    spreadsheet row numbers, or None when the sheet could not be read (its header, a malformed
    record, too many rows), so that nothing else is checked against it.

    `unescape`: undo `cells.safe_cell` on every cell (an upload: what the dashboard exports is
    escaped), once per cell as its row is read.
    """
    file = f"{sheet.name}.csv"
    reader = csv.reader(_lines(text))
    records = _records(reader)
    first = next(records, [])
    if isinstance(first, csv.Error):
        log.add(Problem(file, reader.line_num, "", f"malformed CSV: {first}", True))
        return None
    header = [(unescape_cell(h) if unescape else h).strip() for h in first]
    expected = set(sheet.column_names)
    header_problems = [
        Problem(file, 1, shown(name), "column appears more than once in the header", True)
        for name, count in Counter(header).items()
        if count > 1
    ]
    header_problems += [
        Problem(file, 1, shown(name), "unknown column (see data/README.md)", True)
        for name in header
        if name not in expected
    ]
    header_problems += [
        Problem(file, 1, column.name, "required column is missing from the header", True)
        for column in sheet.columns
        if column.name not in header and not column.may_omit
    ]
    if header_problems:
        log.extend(header_problems)
        return None
    columns = [sheet.column(name) for name in header]
    # A column the header may leave out (an extraction made before it existed) is empty.
    omitted = {c.name: None for c in sheet.columns if c.may_omit and c.name not in header}
    # text and reference cells are kept as read (references are checked across sheets later):
    # no call per cell for them, which is most of a large sheet's cells
    plain = [column.kind in ("text", "ref") for column in columns]
    rows: list[Row] = []
    line = 1
    for record in records:
        line += 1
        if isinstance(record, csv.Error):
            log.add(Problem(file, line, "", f"malformed CSV: {record}", True))
            return None
        if not "".join(record).strip():
            continue  # a blank row: skipped, and it costs no more than its bytes
        if line > max_rows + 1:
            log.add(
                Problem(
                    file,
                    line,
                    "",
                    f"more than {max_rows:,} rows: reading stopped at this row (a "
                    "sheet holds at most that many); delete the rows below the data",
                    blocking=True,
                )
            )
            return None
        if len(record) != len(header):
            log.add(
                Problem(file, line, "", f"has {len(record)} cells but the header has {len(header)}")
            )
            continue
        row: Row = {"_row": line, **omitted}
        for column, is_plain, cell in zip(columns, plain, record, strict=True):
            name = column.name
            cell = (unescape_cell(cell) if unescape else cell).strip()
            if len(cell) > MAX_CELL_CHARS:
                log.add(Problem(file, line, name, f"longer than {MAX_CELL_CHARS} characters"))
                row[name] = None
                continue
            if not cell:
                row[name] = None
                if column.required:
                    log.add(Problem(file, line, name, "required value is empty"))
                continue
            if is_plain:
                row[name] = cell
                continue
            value, error = _parse_cell(column, cell)
            if error:
                log.add(Problem(file, line, name, error))
            row[name] = value
        rows.append(row)
    return rows


def _check_keys_and_refs(tables: Mapping[str, list[Row]]) -> list[Problem]:
    """Unique ids, and references that name an existing id. A reference into a sheet that could
    not be read (missing, undecodable, a broken header) is not checked: that sheet's own problem
    is the cause, and one line per referring row would bury it."""
    problems: list[Problem] = []
    keys: dict[str, set[str]] = {}
    for sheet in SHEETS:
        rows = tables.get(sheet.name, [])
        if sheet.key is None:
            continue
        seen: dict[str, int] = {}
        for row in rows:
            key = row.get(sheet.key)
            if key is None:
                continue
            if key in seen:
                problems.append(
                    Problem(
                        f"{sheet.name}.csv",
                        row["_row"],
                        sheet.key,
                        f"duplicate id '{shown(key)}' (first used on row {seen[key]})",
                    )
                )
            else:
                seen[key] = row["_row"]
        keys[sheet.name] = set(seen)
    for sheet in SHEETS:
        for column in sheet.columns:
            if column.kind != "ref" or column.ref not in tables:
                continue
            for row in tables.get(sheet.name, []):
                value = row.get(column.name)
                if value is not None and value not in keys.get(column.ref or "", set()):
                    problems.append(
                        Problem(
                            f"{sheet.name}.csv",
                            row["_row"],
                            column.name,
                            f"'{shown(value)}' does not exist in {column.ref}.csv",
                        )
                    )
    figure_ids = keys.get("review_figures", set())
    for row in tables.get("review_figures", []):
        for item in (row.get("sum_of") or "").split(";"):
            if item and item not in figure_ids:
                problems.append(
                    Problem(
                        "review_figures.csv",
                        row["_row"],
                        "sum_of",
                        f"'{shown(item)}' is not a figure_id",
                    )
                )
    return problems


def _check_studies(rows: list[Row]) -> list[Problem]:
    return [
        Problem("studies.csv", r["_row"], "same_patients_as", "a study cannot point to itself")
        for r in rows
        if r.get("same_patients_as") and r["same_patients_as"] == r.get("study_id")
    ]


def _check_cohorts(rows: list[Row]) -> list[Problem]:
    problems: list[Problem] = []

    def add(row: Row, column: str, message: str) -> None:
        problems.append(Problem("cohorts.csv", row["_row"], column, message))

    for row in rows:
        for prefix in FACT_PREFIXES:
            given = [
                c for c in FACT_VALUE_COLUMNS[prefix] if row.get(c) not in (None, "not_reported")
            ]
            if not given:
                continue
            for part in ("source_id", "locator", "quote"):
                if not row.get(f"{prefix}_{part}"):
                    add(
                        row,
                        f"{prefix}_{part}",
                        f"{', '.join(given)} is given, so its {part} is required",
                    )
        n, quote = row.get("n_patients"), row.get("n_quote")
        if n is not None and quote and not number_appears(quote, n):
            add(row, "n_quote", f"the quote does not contain the number {n}")
        counts = [row.get(c) for c in FACT_VALUE_COLUMNS["product"][:-1]]
        if n is not None and sum(c or 0 for c in counts) > n:
            add(
                row,
                "n_axicel",
                f"product counts add up to {sum(c or 0 for c in counts)} > n_patients {n}",
            )
        for low, high in (
            ("dose_mg_day_min", "dose_mg_day_max"),
            ("dose_mg_kg_day_min", "dose_mg_kg_day_max"),
        ):
            if row.get(low) is not None and row.get(high) is not None and row[low] > row[high]:
                add(row, low, f"{low} {row[low]:g} is above {high} {row[high]:g}")
        if row.get("comparator_for") and row.get("arm") != "comparator":
            add(
                row,
                "comparator_for",
                "only a comparator cohort (arm=comparator) names comparator_for",
            )
    return problems


def _check_outcomes(rows: list[Row]) -> list[Problem]:
    problems: list[Problem] = []

    def add(row: Row, column: str, message: str) -> None:
        problems.append(Problem("outcomes.csv", row["_row"], column, message))

    in_use: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for row in rows:
        events, total, quote = row.get("events"), row.get("total"), row.get("quote") or ""
        if events is not None and total is not None and events > total:
            add(row, "events", f"events {events} exceed total {total}")
        if events is not None and total is None:
            add(row, "total", "events are given, so the total they are out of is required")
        if events is None and row.get("value") is None:
            add(row, "value", "a row needs either events/total or a printed value")
        if row.get("status") == "derived":
            if not row.get("derivation"):
                add(row, "derivation", "a derived number must state its arithmetic")
        elif events is not None and quote and not number_appears(quote, events):
            add(row, "quote", f"the quote does not contain the number {events}")
        if row.get("value") is not None and quote and not number_appears(quote, row["value"]):
            add(
                row,
                "quote",
                f"the quote does not contain the printed value {format_number(row['value'])}",
            )
        if row.get("use_in_analysis") and events is not None:
            in_use[(row.get("cohort_id"), row.get("outcome"), row.get("timepoint"))].append(
                row["_row"]
            )
    for (cohort, outcome, _), lines in in_use.items():
        for line in lines[1:]:
            problems.append(
                Problem(
                    "outcomes.csv",
                    line,
                    "use_in_analysis",
                    f"{outcome} of {shown(str(cohort))} is already used from row {lines[0]}: "
                    "set use_in_analysis=false on all but one",
                )
            )
    return problems


def validate_sheets(
    raw: Mapping[str, bytes],
    unescape: bool = False,
    unread: Iterable[str] = (),
    limits: SheetLimits = UPLOAD_LIMITS,
) -> tuple[dict[str, list[Row]], list[Problem]]:
    """Parse and check every sheet; return typed rows of the sheets that could be read and every
    problem found (root causes first, at most `MAX_PROBLEMS_PER_FILE` per sheet).

    `unescape`: the sheets come from an upload, whose cells may carry `cells.safe_cell`'s quote.
    `unread`: sheets the upload's reader already stopped at a limit (and said why): not missing,
    but neither checked nor checked against.
    `limits`: rows and bytes per sheet; an upload's unless the caller is a host's own build.
    """
    unread = set(unread)
    tables: dict[str, list[Row]] = {}
    log = ProblemLog()
    for name in raw:
        if name not in SHEETS_BY_NAME:
            log.add(Problem(f"{shown(name)}.csv", None, "", "unknown sheet (see data/README.md)"))
    for sheet in SHEETS:
        if sheet.name in unread:
            continue
        if sheet.name not in raw:
            log.add(Problem(f"{sheet.name}.csv", None, "", "sheet is missing", blocking=True))
            continue
        text, decode_problems = decode_sheet(sheet.name, raw[sheet.name], limits.sheet_bytes)
        log.extend(decode_problems)
        if text is None:
            continue
        rows = parse_sheet(sheet, text, log, unescape, limits.rows)
        del text
        if rows is not None:
            tables[sheet.name] = rows
    log.extend(_check_keys_and_refs(tables))
    log.extend(_check_studies(tables.get("studies", [])))
    log.extend(_check_cohorts(tables.get("cohorts", [])))
    log.extend(_check_outcomes(tables.get("outcomes", [])))
    return tables, in_order(log.problems())
