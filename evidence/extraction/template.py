"""Blank extraction templates (XLSX and CSV) generated from the sheet contract.

    python -m evidence.extraction.template [--out DIR]
    # DIR/extraction_template.xlsx, DIR/extraction_template_csv.zip and DIR/csv/

A guideline panel fills these in and loads them into the dashboard. Everything in them is derived:
the columns, kinds and vocabularies from `contract` and each column's meaning from the
tables in `data/README.md` (parsed, not copied), so the template cannot drift from the validator
or the data dictionary. The XLSX has one sheet per table (frozen header row), a dropdown on every
closed-vocabulary and true/false column, and a "notes" sheet explaining every column; the same
layout, filled in, is what `export.export_workbook` writes.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from evidence.extraction.contract import (
    LISTS_SHEET,
    NOTES_SHEET,
    SHEETS,
    SHEETS_BY_NAME,
    Column,
    Sheet,
)
from evidence.extraction.validate import MAX_ROWS_PER_SHEET

ROOT = Path(__file__).resolve().parents[2]
DATA_README = ROOT / "data" / "README.md"
CSV_README_NAME = "README.txt"
# A fixed timestamp keeps generated zips byte-identical from run to run.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
BOOL_VALUES = ("true", "false")
# Dropdowns cover every row the validator accepts.
LAST_ROW = MAX_ROWS_PER_SHEET + 1

KIND_LABELS = {
    "id": "id: letters, digits, _ and -, starting with a letter; unique in the sheet",
    "text": "text",
    "int": "whole number ≥ 0",
    "number": "number ≥ 0 (decimal point, no % sign)",
    "bool": "true or false",
    "vocab": "one value from the list",
    "list": "one or more values separated by ;",
}


@dataclass(frozen=True)
class ColumnNote:
    """One row of the notes sheet: what a column holds and whether it must be filled."""

    sheet: str
    column: str
    kind: str
    required: str
    allowed: str
    meaning: str


def _clean(cell: str) -> str:
    return cell.strip().replace("`", "")


@cache
def readme_tables(path: Path = DATA_README) -> dict[str, Any]:
    """Parse the data dictionary: sheet descriptions, each column's README row, vocabulary notes.

    Returns {"sheets": {sheet: description}, "columns": {(sheet, column): (type, required,
    meaning)}, "outcomes": {code: explanation}, "intro": [paragraphs]}. A missing README gives
    empty parts: the template is still complete, only without the prose.
    """
    parsed: dict[str, Any] = {"sheets": {}, "columns": {}, "outcomes": {}, "intro": []}
    if not path.exists():
        return parsed
    text = path.read_text(encoding="utf-8")
    # What a panel needs from the preamble: the empty-cell rule and the types (not the git and
    # build workflow, which is for maintainers).
    prose = [" ".join(p.replace("`", "").replace("**", "").split()) for p in text.split("\n\n")]
    for paragraph in prose:
        if paragraph.startswith("Types:"):
            parsed["intro"].append(paragraph)
        elif not paragraph.startswith(("#", "|")):
            sentences = re.split(r"(?<=[.;])\s+(?=[A-Z])", paragraph)
            parsed["intro"] += [s for s in sentences if "empty cell" in s.lower()]
    sheet = None
    for line in text.splitlines():
        heading = re.match(r"##\s+(\w+)\.csv:\s*(.*)", line)
        if heading:
            sheet = heading.group(1)
            parsed["sheets"][sheet] = heading.group(2).strip()
            continue
        if line.startswith("## "):
            sheet = None
        if sheet is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] == "column" or set(cells[0]) <= {"-", ":"}:
            continue
        for name in _clean(cells[0]).split(","):
            parsed["columns"][(sheet, name.strip())] = (
                _clean(cells[1]),
                _clean(cells[2]),
                _clean(cells[3]),
            )
    vocab = re.search(r"Outcome vocabulary:(.*?)(?:\n\n|$)", text, re.S)
    if vocab:
        for code, explanation in re.findall(r"`(\w+)`\s*(?:\(([^)]*)\))?", vocab.group(1)):
            parsed["outcomes"][code] = explanation
    return parsed


def allowed_values(column: Column) -> tuple[str, ...]:
    """The closed list a column's cells must come from (empty for open columns)."""
    if column.kind == "bool":
        return BOOL_VALUES
    return column.vocab


def column_notes() -> list[ColumnNote]:
    """One note per sheet column: kind and allowed values from the contract, prose from README."""
    readme = readme_tables()
    notes = []
    for sheet in SHEETS:
        for column in sheet.columns:
            kind = f"id from {column.ref}" if column.kind == "ref" else KIND_LABELS[column.kind]
            _, required, meaning = readme["columns"].get((sheet.name, column.name), ("", "", ""))
            if not required or required in ("yes", "no"):
                required = "yes" if column.required else "no"
            if column.name == "outcome" and readme["outcomes"]:
                explained = [f"{c} = {e}" for c, e in readme["outcomes"].items() if e]
                meaning = "; ".join(filter(None, [meaning, *explained]))
            notes.append(
                ColumnNote(
                    sheet.name,
                    column.name,
                    kind,
                    required,
                    ", ".join(allowed_values(column)) or column.range_text,
                    meaning,
                )
            )
    return notes


def _instructions() -> list[str]:
    readme = readme_tables()
    return [
        "Fill in one sheet per table; keep the header row as it is (row 1). Columns may be "
        "reordered but not renamed; extra columns and extra sheets are rejected.",
        "Empty cell = not reported. Type values, not formulas: formulas are read as their text "
        "and rejected. Percentages are plain numbers (7.5, not 7.5%).",
        "The 'notes' and 'vocabularies' sheets are ignored on upload; every problem found is "
        "listed at once, by sheet, row and column.",
        *readme["intro"],
    ]


def _add_dropdowns(ws: Worksheet, sheet: Sheet, lists: Worksheet) -> None:
    """A list validation on every closed-vocabulary, true/false and id-reference column of `ws`.

    The values live on the hidden vocabularies sheet because Excel caps an inline list at 255
    characters (the outcome vocabulary is longer). A `list` column (products) may hold several
    values separated by `;`, so its dropdown suggests but does not refuse other text.
    """
    for index, column in enumerate(sheet.columns, start=1):
        letter = get_column_letter(index)
        if column.kind == "ref" and column.ref:
            ws.add_data_validation(_id_dropdown(column, f"{letter}2:{letter}{LAST_ROW}"))
            continue
        values = allowed_values(column)
        if not values:
            continue
        list_col = get_column_letter(lists.max_column + 1 if lists["A1"].value else 1)
        lists[f"{list_col}1"] = f"{sheet.name}.{column.name}"
        for offset, value in enumerate(values, start=2):
            lists[f"{list_col}{offset}"] = value
        strict = column.kind != "list"
        validation = DataValidation(
            type="list",
            formula1=f"{LISTS_SHEET}!${list_col}$2:${list_col}${len(values) + 1}",
            allow_blank=True,
            showErrorMessage=strict,
            errorStyle="stop" if strict else "information",
            error=f"Use one of: {', '.join(values)}"[:255],
            errorTitle=column.name[:32],
            promptTitle=column.name[:32],
            prompt=("Several values: separate with ;" if not strict else "Pick from the list")[
                :255
            ],
            showInputMessage=True,
        )
        validation.add(f"{letter}2:{letter}{LAST_ROW}")
        ws.add_data_validation(validation)


def _id_dropdown(column: Column, cells: str) -> DataValidation:
    """A dropdown of the ids typed so far in the referenced sheet's key column.

    It only suggests (an id may be typed before its row exists); the validator checks every
    reference when the extraction is loaded.
    """
    target = SHEETS_BY_NAME[column.ref or ""]
    key = get_column_letter(target.column_names.index(target.key or "") + 1)
    validation = DataValidation(
        type="list",
        formula1=f"{target.name}!${key}$2:${key}${LAST_ROW}",
        allow_blank=True,
        showErrorMessage=False,
        errorStyle="information",
        promptTitle=column.name[:32],
        prompt=f"An id from the {target.name} sheet",
        showInputMessage=True,
    )
    validation.add(cells)
    return validation


def _mark_text(ws: Worksheet) -> None:
    """Keep str cells strings: openpyxl would store a str starting with `=` as a formula."""
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"


def write_workbook(data: Mapping[str, Sequence[Sequence[Any]]] | None = None) -> bytes:
    """The upload-format workbook: one sheet per table, `data[sheet]` rows under each header.

    Values are written as given (callers neutralise text with `cells.safe_cell`); with no data
    this is the blank template.
    """
    data = data or {}
    wb = Workbook()
    wb.remove(wb.active)
    lists = wb.create_sheet(LISTS_SHEET)
    bold = Font(bold=True)
    for sheet in SHEETS:
        ws = wb.create_sheet(sheet.name, index=len(wb.sheetnames) - 1)
        ws.append(list(sheet.column_names))
        for cell in ws[1]:
            cell.font = bold
        for row in data.get(sheet.name, ()):
            ws.append(list(row))
        _mark_text(ws)
        ws.freeze_panes = "A2"
        for index, name in enumerate(sheet.column_names, start=1):
            ws.column_dimensions[get_column_letter(index)].width = max(12, len(name) + 3)
        _add_dropdowns(ws, sheet, lists)
    notes = wb.create_sheet(NOTES_SHEET, index=len(wb.sheetnames) - 1)
    for line in _instructions():
        notes.append([line])
    notes.append([])
    header_row = notes.max_row + 1
    notes.append(["sheet", "column", "type", "required", "allowed values", "meaning"])
    for cell in notes[header_row]:
        cell.font = bold
    descriptions = readme_tables()["sheets"]
    current = None
    for note in column_notes():
        if note.sheet != current:
            current = note.sheet
            notes.append([note.sheet, "", "", "", "", descriptions.get(note.sheet, "")])
            notes.cell(notes.max_row, 1).font = bold
        notes.append(
            [note.sheet, note.column, note.kind, note.required, note.allowed, note.meaning]
        )
    _mark_text(notes)
    for letter, width in zip("ABCDEF", (16, 26, 30, 22, 40, 80), strict=True):
        notes.column_dimensions[letter].width = width
    for row in notes.iter_rows(min_row=header_row):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    notes.freeze_panes = f"A{header_row + 1}"
    lists.sheet_state = "hidden"
    wb.active = 0
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def template_workbook() -> bytes:
    """The blank XLSX template (headers, dropdowns, notes)."""
    return write_workbook()


def csv_readme() -> str:
    """Plain-text instructions and the column notes, shipped inside the CSV zip."""
    lines = ["Extraction template: one CSV per table", "", *_instructions(), ""]
    lines.append(
        "Save each sheet as 'CSV UTF-8', named <sheet>.csv, and upload them as one .zip "
        "(all at the top level or in one folder)."
    )
    descriptions = readme_tables()["sheets"]
    current = None
    for note in column_notes():
        if note.sheet != current:
            current = note.sheet
            lines += ["", f"{note.sheet}.csv: {descriptions.get(note.sheet, '')}".rstrip()]
        detail = f"  {note.column} [{note.kind}; required: {note.required}]"
        if note.allowed:
            detail += f" allowed: {note.allowed}."
        if note.meaning:
            detail += f" {note.meaning}"
        lines.append(detail)
    return "\n".join(lines) + "\n"


def _header_csv(sheet: Sheet) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(sheet.column_names)
    return buffer.getvalue()


def template_csv_zip() -> bytes:
    """The blank CSV template: `<sheet>.csv` header rows plus README.txt, as one zip."""
    return sheets_zip({sheet.name: _header_csv(sheet) for sheet in SHEETS})


def sheets_zip(csv_texts: dict[str, str]) -> bytes:
    """`<sheet>.csv` for each text plus README.txt, as one zip with fixed timestamps (the same
    content always gives the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        files = {f"{name}.csv": text for name, text in csv_texts.items()}
        for name, text in {**files, CSV_README_NAME: csv_readme()}.items():
            zf.writestr(
                zipfile.ZipInfo(name, ZIP_DATE_TIME), text, compress_type=zipfile.ZIP_DEFLATED
            )
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evidence.extraction.template",
        description="Write the blank extraction templates.",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "artifacts" / "template", help="folder to write into"
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    csv_dir = out / "csv"
    csv_dir.mkdir(parents=True, exist_ok=True)
    (out / "extraction_template.xlsx").write_bytes(template_workbook())
    archive = template_csv_zip()
    (out / "extraction_template_csv.zip").write_bytes(archive)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for name in zf.namelist():
            (csv_dir / name).write_bytes(zf.read(name))
    print(f"wrote {out / 'extraction_template.xlsx'}, {out / 'extraction_template_csv.zip'}")
    print(f"wrote {len(SHEETS)} CSV headers and {CSV_README_NAME} to {csv_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
