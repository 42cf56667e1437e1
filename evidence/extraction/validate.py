"""Validate raw extraction sheets and turn them into typed rows.

Every problem is collected (not raised at the first one) so that a person fixing a sheet sees the
whole list at once, each as `file:row:column: message` with spreadsheet-style row numbers (the
header is row 1). Nothing here writes anything: the build only writes when this finds no problem.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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
# them.
MAX_ROWS_PER_SHEET = 5_000
MAX_CELL_CHARS = 4_000

Row = dict[str, Any]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one cell (or row, or file), located as a person would look for it."""

    file: str
    row: int | None
    column: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        return f"{where}:{self.column or '-'}: {self.message}"


class ValidationError(Exception):
    """Raised by the build when any problem was found; carries the full list."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the extraction sheets")


def in_order(problems: Iterable[Problem]) -> list[Problem]:
    """Each problem once, by file, row, column and message: the order a person fixes them in.

    A file-level problem (row None) comes before the file's rows.
    """
    return sorted(set(problems), key=lambda p: (p.file, p.row or 0, p.column, p.message))


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
    if re.search(rf"(?<![\d.]){re.escape(text)}(?!\d|\.\d)", quote):
        return True
    if isinstance(value, int) or float(value).is_integer():
        lowered = quote.lower()
        return any(re.search(rf"\b{w}\b", lowered) for w in _number_words(int(value)))
    return False


def decode_sheet(name: str, raw: bytes) -> tuple[str | None, list[Problem]]:
    """Decode bytes as UTF-8 (a BOM is accepted), reporting the line of the first bad byte."""
    file = f"{name}.csv"
    if not raw.strip():
        return None, [Problem(file, None, "", "the file is empty: it needs at least a header row")]
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        message = (
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "save the sheet as 'CSV UTF-8'"
        )
        return None, [Problem(file, line, "", message)]


def _parse_cell(column: Column, text: str) -> tuple[Any, str | None]:
    """Convert one non-empty cell to its Python value, or return an error message."""
    if column.kind in ("text", "ref"):
        return text, None
    if column.kind == "id":
        if not re.match(ID_PATTERN, text):
            return (
                None,
                f"'{text}' is not a valid id (letters, digits, _ and -, starting with a letter)",
            )
        return text, None
    if column.kind == "int":
        if not re.fullmatch(r"\d+", text):
            return None, f"'{text}' is not a whole number ≥ 0"
        return int(text), None
    if column.kind == "number":
        try:
            number = float(text)
        except ValueError:
            return None, f"'{text}' is not a number"
        if not math.isfinite(number) or number < 0:
            return None, f"'{text}' must be a finite number ≥ 0"
        return number, None
    if column.kind == "bool":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            return None, f"'{text}' must be true or false"
        return lowered == "true", None
    if column.kind == "vocab":
        if text not in column.vocab:
            return None, f"'{text}' is not one of: {', '.join(column.vocab)}"
        return text, None
    if column.kind == "list":
        items = [item.strip() for item in text.split(";") if item.strip()]
        unknown = [item for item in items if column.vocab and item not in column.vocab]
        if unknown:
            return None, f"{', '.join(unknown)} not among: {', '.join(column.vocab)}"
        return ";".join(items), None
    raise AssertionError(f"unknown column kind {column.kind}")


def parse_sheet(sheet: Sheet, text: str) -> tuple[list[Row], list[Problem]]:
    """Check the header and every cell's type; rows come back with spreadsheet row numbers."""
    file = f"{sheet.name}.csv"
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        records = list(reader)
    except csv.Error as err:
        return [], [Problem(file, reader.line_num, "", f"malformed CSV: {err}")]
    header = [h.strip() for h in records[0]] if records else []
    expected = set(sheet.column_names)
    for name, count in Counter(header).items():
        if count > 1:
            problems.append(Problem(file, 1, name, "column appears more than once in the header"))
    for name in header:
        if name not in expected:
            problems.append(Problem(file, 1, name, "unknown column (see data/README.md)"))
    for name in sheet.column_names:
        if name not in header:
            problems.append(Problem(file, 1, name, "required column is missing from the header"))
    if problems:
        return [], problems
    if len(records) - 1 > MAX_ROWS_PER_SHEET:
        return [], [Problem(file, None, "", f"more than {MAX_ROWS_PER_SHEET} rows")]
    rows: list[Row] = []
    for offset, record in enumerate(records[1:]):
        line = offset + 2
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problems.append(
                Problem(file, line, "", f"has {len(record)} cells but the header has {len(header)}")
            )
            continue
        row: Row = {"_row": line}
        for name, cell in zip(header, record, strict=True):
            column = sheet.column(name)
            cell = cell.strip()
            if len(cell) > MAX_CELL_CHARS:
                problems.append(
                    Problem(file, line, name, f"longer than {MAX_CELL_CHARS} characters")
                )
                row[name] = None
                continue
            if not cell:
                row[name] = None
                if column.required:
                    problems.append(Problem(file, line, name, "required value is empty"))
                continue
            value, error = _parse_cell(column, cell)
            if error:
                problems.append(Problem(file, line, name, error))
            row[name] = value
        rows.append(row)
    return rows, problems


def _check_keys_and_refs(tables: Mapping[str, list[Row]]) -> list[Problem]:
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
                        f"duplicate id '{key}' (first used on row {seen[key]})",
                    )
                )
            else:
                seen[key] = row["_row"]
        keys[sheet.name] = set(seen)
    for sheet in SHEETS:
        for column in sheet.columns:
            if column.kind != "ref":
                continue
            for row in tables.get(sheet.name, []):
                value = row.get(column.name)
                if value is not None and value not in keys.get(column.ref or "", set()):
                    problems.append(
                        Problem(
                            f"{sheet.name}.csv",
                            row["_row"],
                            column.name,
                            f"'{value}' does not exist in {column.ref}.csv",
                        )
                    )
    figure_ids = keys.get("review_figures", set())
    for row in tables.get("review_figures", []):
        for item in (row.get("sum_of") or "").split(";"):
            if item and item not in figure_ids:
                problems.append(
                    Problem(
                        "review_figures.csv", row["_row"], "sum_of", f"'{item}' is not a figure_id"
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
                    f"{outcome} of {cohort} is already used from row {lines[0]}: "
                    "set use_in_analysis=false on all but one",
                )
            )
    return problems


def validate_sheets(raw: Mapping[str, bytes]) -> tuple[dict[str, list[Row]], list[Problem]]:
    """Parse and check every sheet; return typed rows and every problem found (sorted)."""
    tables: dict[str, list[Row]] = {}
    problems: list[Problem] = []
    for name in raw:
        if name not in SHEETS_BY_NAME:
            problems.append(Problem(f"{name}.csv", None, "", "unknown sheet (see data/README.md)"))
    for sheet in SHEETS:
        if sheet.name not in raw:
            problems.append(Problem(f"{sheet.name}.csv", None, "", "sheet is missing"))
            continue
        text, decode_problems = decode_sheet(sheet.name, raw[sheet.name])
        problems += decode_problems
        if text is None:
            continue
        rows, sheet_problems = parse_sheet(sheet, text)
        problems += sheet_problems
        tables[sheet.name] = rows
    problems += _check_keys_and_refs(tables)
    problems += _check_studies(tables.get("studies", []))
    problems += _check_cohorts(tables.get("cohorts", []))
    problems += _check_outcomes(tables.get("outcomes", []))
    return tables, in_order(problems)
