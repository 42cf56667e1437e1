"""Build the DuckDB evidence file from the extraction sheets.

    python -m evidence.extraction.build               # data/extraction -> data/anakinra.duckdb
    python -m evidence.extraction.build --from PATH   # a folder of CSVs instead
    python -m evidence.extraction.build --check       # validate only

The file is written to a temporary name beside the target and renamed only when validation and
every insert succeeded, so a failed build never leaves a half-written or changed database behind.
The same code builds the test fixtures and (in memory) a panel's uploaded extraction.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from evidence import db
from evidence.extraction.contract import SHEETS, SHEETS_BY_NAME
from evidence.extraction.upload import UploadError, inspect_upload, is_workbook
from evidence.extraction.validate import (
    Problem,
    Row,
    ValidationError,
    format_number,
    in_order,
    validate_sheets,
)

ROOT = Path(__file__).resolve().parents[2]
SHEETS_DIR = ROOT / "data" / "extraction"
DATABASE = ROOT / "data" / "anakinra.duckdb"
SCHEMA = Path(__file__).with_name("schema.sql")
SCHEMA_VERSION = "1"
# The review prints percentages to one decimal and sometimes truncates (4/84 = 4.76 printed 4.7),
# so a printed percent agrees when it is within one unit of its last printed decimal.
PERCENT_TOLERANCE = 0.1


def read_sheet_dir(folder: Path) -> dict[str, bytes]:
    """Raw bytes of every `*.csv` in a folder, keyed by sheet name (file stem)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of extraction sheets")
    return {path.stem: path.read_bytes() for path in sorted(folder.glob("*.csv"))}


def sheets_checksum(raw: Mapping[str, bytes]) -> str:
    """One SHA-256 over every sheet's name and bytes: the data version shown in the app."""
    digest = hashlib.sha256()
    for name in sorted(raw):
        digest.update(name.encode() + b"\0" + hashlib.sha256(raw[name]).digest())
    return digest.hexdigest()


def check_review_figure(row: Row, by_id: Mapping[str, Row]) -> dict[str, Any]:
    """Recompute a review figure's percent and sum; disagreement is data, not a build error."""
    numerator, denominator, printed = row["numerator"], row["denominator"], row["reported_percent"]
    result: dict[str, Any] = {
        "computed_percent": None,
        "percent_check": "not_applicable",
        "components_total": None,
        "sum_check": "not_applicable",
    }
    messages = []
    if numerator is not None and denominator:
        computed = 100 * numerator / denominator
        result["computed_percent"] = computed
        if printed is not None:
            agrees = abs(computed - printed) <= PERCENT_TOLERANCE
            result["percent_check"] = "agrees" if agrees else "disagrees"
            messages.append(
                f"{numerator}/{denominator} = {computed:.2f}% vs printed {format_number(printed)}%"
            )
    components = [c for c in (row["sum_of"] or "").split(";") if c]
    if components:
        total = sum(by_id[c]["numerator"] or 0 for c in components)
        target = numerator if numerator is not None else denominator
        result["components_total"] = total
        result["sum_check"] = "agrees" if total == target else "disagrees"
        parts = " + ".join(str(by_id[c]["numerator"]) for c in components)
        relation = "matches" if total == target else "does not match"
        messages.append(f"{parts} = {total}, which {relation} the printed {target}")
    result["check_message"] = "; ".join(messages) or "nothing to recompute"
    return result


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows in one statement (a registered DataFrame, cast to the table's types): one
    statement per row is far too slow for the largest upload the validator accepts."""
    if not rows:
        return
    columns = ", ".join(rows[0])  # names come from the contract, never from the sheets' text
    frame = pd.DataFrame(rows, dtype=object)
    con.register("_incoming", frame)
    try:
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _incoming")
    finally:
        con.unregister("_incoming")


def write_database(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, list[Row]], info: Mapping[str, str]
) -> None:
    """Create the schema on an empty connection and insert validated rows."""
    con.execute(SCHEMA.read_text())
    cohort_study = {r["cohort_id"]: r["study_id"] for r in tables["cohorts"]}
    figures_by_id = {r["figure_id"]: r for r in tables["review_figures"]}
    for sheet in SHEETS:
        rows = [{c: row.get(c) for c in sheet.column_names} for row in tables[sheet.name]]
        if sheet.name == "outcomes":
            for row in rows:
                row["study_id"] = cohort_study[row["cohort_id"]]
        if sheet.name == "review_figures":
            rows = [row | check_review_figure(row, figures_by_id) for row in rows]
        _insert(con, sheet.name, rows)
    _insert(con, "build_info", [{"key": k, "value": v} for k, v in info.items()])


def build_info(raw: Mapping[str, bytes], origin: str) -> dict[str, str]:
    info = {
        "schema_version": SCHEMA_VERSION,
        "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "origin": origin,
        "sheets_sha256": sheets_checksum(raw),
    }
    info |= {f"sheet_sha256:{name}": hashlib.sha256(raw[name]).hexdigest() for name in sorted(raw)}
    return info


def validated_tables(raw: Mapping[str, bytes]) -> dict[str, list[Row]]:
    """The typed rows, or ValidationError listing every problem."""
    tables, problems = validate_sheets(raw)
    if problems:
        raise ValidationError(problems)
    return tables


def build_in_memory(raw: Mapping[str, bytes], origin: str) -> duckdb.DuckDBPyConnection:
    """An in-memory database of `raw` sheets: used for a panel's upload, never touching disk."""
    tables = validated_tables(raw)
    con = duckdb.connect(":memory:")
    write_database(con, tables, build_info(raw, origin))
    return con


def build_file(raw: Mapping[str, bytes], target: Path, origin: str) -> Path:
    """Validate, write to a temporary file beside `target`, then atomically rename onto it."""
    tables = validated_tables(raw)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    tmp.unlink()  # duckdb must create the file itself
    try:
        with duckdb.connect(str(tmp)) as con:
            write_database(con, tables, build_info(raw, origin))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return target


def stored_checksum(database: Path) -> str | None:
    """The sheets checksum a built file records, or None if it is missing or unreadable."""
    if not database.exists():
        return None
    try:
        with db.connect_read_only(database) as con:
            info = dict(db.run(con, "build_info").itertuples(index=False))
    except duckdb.Error:
        return None
    return info.get("sheets_sha256")


def is_stale(database: Path = DATABASE, folder: Path = SHEETS_DIR) -> bool:
    """True when the file is missing or was built from other sheets than those in `folder`.

    A checksum rather than file times decides, because git checkouts reset modification times.
    """
    return stored_checksum(database) != sheets_checksum(read_sheet_dir(folder))


def ensure_built(database: Path = DATABASE, folder: Path = SHEETS_DIR) -> bool:
    """Build the shipped database if it is missing or stale; True if a build ran."""
    if not is_stale(database, folder):
        return False
    origin = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
    build_file(read_sheet_dir(folder), database, origin=str(origin))
    return True


def report(problems: list[Problem]) -> str:
    return (
        "\n".join(str(p) for p in problems) + f"\n{len(problems)} problem(s); nothing was written."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evidence.extraction.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=SHEETS_DIR,
        help="folder of extraction CSVs or an .xlsx workbook (default: data/extraction)",
    )
    parser.add_argument("--out", type=Path, default=DATABASE, help="database file to write")
    parser.add_argument("--check", action="store_true", help="validate only, write nothing")
    parser.add_argument(
        "--if-stale", action="store_true", help="build only if the file is missing or out of date"
    )
    args = parser.parse_args(argv)
    try:
        if args.if_stale and args.source.is_dir() and not is_stale(args.out, args.source):
            print(f"{args.out} is up to date with {args.source}")
            return 0
        raw = load_source(args.source)
        if args.check:
            validated_tables(raw)
            print(f"{args.source}: all sheets valid")
            return 0
        path = build_file(raw, args.out, origin=str(args.source))
    except ValidationError as err:
        print(report(err.problems), file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} (sheets sha256 {sheets_checksum(raw)[:12]})")
    return 0


def load_source(source: Path) -> dict[str, bytes]:
    """Raw sheets from a folder of CSVs, or from a panel's file (.xlsx, or .zip of CSVs).

    A file is read as an upload is, so the command line refuses what the upload page refuses
    (formula and percent-formatted cells, every sheet problem, named by sheet for a workbook) as
    ValidationError, and a file that cannot be read at all as UploadError (a ValueError).
    """
    if source.is_file():
        raw, problems = check_upload(source.name, source.read_bytes())
        if problems:
            raise ValidationError(problems)
        return raw
    return read_sheet_dir(source)


def check_upload(filename: str, content: bytes) -> tuple[dict[str, bytes], list[Problem]]:
    """A panel's file as raw sheets, plus every problem in it: the reader's notes on cells and
    the validator's findings, in one list. Raises UploadError if the file itself is unreadable."""
    raw, notes = inspect_upload(filename, content)
    _, problems = validate_sheets(raw)
    if is_workbook(filename):
        problems = _workbook_labels(problems)
    return raw, in_order(problems + notes)


def _workbook_labels(problems: list[Problem]) -> list[Problem]:
    """Name a workbook's problems by its sheets ("studies sheet") rather than by CSV files."""
    relabelled = []
    for problem in problems:
        stem = problem.file.removesuffix(".csv")
        if problem.file.endswith(".csv") and stem in SHEETS_BY_NAME:
            message = re.sub(
                r"\b(\w+)\.csv\b",
                lambda m: f"the {m.group(1)} sheet" if m.group(1) in SHEETS_BY_NAME else m.group(0),
                problem.message,
            )
            problem = Problem(f"{stem} sheet", problem.row, problem.column, message)
        relabelled.append(problem)
    return relabelled


def from_upload(
    filename: str, content: bytes
) -> tuple[duckdb.DuckDBPyConnection | None, list[Problem]]:
    """An in-memory database of a panel's uploaded file, or None and every problem found.

    Never raises for bad input: the upload page shows the list. Nothing on disk is opened or
    written; the connection is a fresh `:memory:` one, private to the caller.
    """
    try:
        raw, problems = check_upload(filename, content)
    except UploadError as err:
        return None, err.problems
    except Exception as err:  # a reader bug must not take the page down
        return None, [
            Problem(filename, None, "", f"could not be read ({type(err).__name__}: {err})")
        ]
    if problems:
        return None, problems
    try:
        return build_in_memory(raw, origin=f"upload: {filename}"), []
    except ValidationError as err:
        return None, err.problems
    except (duckdb.Error, KeyError, ValueError) as err:
        return None, [
            Problem(filename, None, "", f"could not be loaded ({type(err).__name__}: {err})")
        ]


if __name__ == "__main__":
    sys.exit(main())
