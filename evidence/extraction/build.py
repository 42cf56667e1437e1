"""Build the DuckDB evidence file from the extraction sheets.

    python -m evidence.extraction.build               # data/extraction -> data/anakinra.duckdb
    python -m evidence.extraction.build --from PATH   # another folder, or a panel's .xlsx / .zip
    python -m evidence.extraction.build --if-stale    # only if missing or behind its sheets
    python -m evidence.extraction.build --check       # validate only

The file is written to a temporary name beside the target and renamed only when validation and
every insert succeeded, so a failed build never leaves a half-written or changed database behind.
The same code builds the test fixtures and (in memory) a panel's uploaded extraction.

Every database records where its sheets came from (`origin` and `origin_kind` in build_info).
`--if-stale` and `ensure_built`, which `make data`, `make run` and the app's first start call,
rebuild a database only when it is missing or was built from the sheets they follow
(data/extraction) and those have changed. A database built `--from` a panel's file or another
folder is kept, with a one-line notice: replacing it with the shipped sheets would silently serve
other data than the panel chose. Without `--if-stale` the command always builds.

Every built file has its SHA-256 beside it (`anakinra.duckdb.sha256`, in `sha256sum` format) and
records each table's row count in build_info. `verify` checks both and reads every table;
`open_served`, which the app calls once per process, serves a file only when it verifies, and
otherwise rebuilds it from the shipped sheets (into a fresh file, the damaged one kept beside it as
`*.damaged`; in memory when its folder cannot be written) or says why nothing can be served.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from evidence import db
from evidence.extraction import worker
from evidence.extraction.cells import shown
from evidence.extraction.contract import SHEETS, SHEETS_BY_NAME
from evidence.extraction.upload import (
    MAX_UNPACKED_BYTES,
    UploadError,
    inspect_upload,
    is_workbook,
)
from evidence.extraction.validate import (
    BUILD_LIMITS,
    MAX_SHEET_BYTES,
    UPLOAD_LIMITS,
    Problem,
    Row,
    SheetLimits,
    ValidationError,
    format_number,
    in_order,
    validate_sheets,
)

ROOT = Path(__file__).resolve().parents[2]
SHEETS_DIR = ROOT / "data" / "extraction"
DATABASE = ROOT / "data" / "anakinra.duckdb"
SCHEMA = Path(__file__).with_name("schema.sql")
# Raised whenever schema.sql changes, so that a file built by an earlier version is rebuilt (or,
# built from another source, named as behind): 2 added outcomes.caveat.
SCHEMA_VERSION = "2"
# The review prints percentages to one decimal and sometimes truncates (4/84 = 4.76 printed 4.7),
# so a printed percent agrees when it is within one unit of its last printed decimal.
PERCENT_TOLERANCE = 0.1

# What build_info's `origin_kind` says about where the sheets came from.
SHIPPED_SHEETS = "shipped sheets"  # data/extraction, the sheets kept in git
OTHER_FOLDER = "other folder"  # `--from` a folder of CSVs
PANEL_FILE = "panel file"  # `--from` a panel's .xlsx or .zip
UPLOAD = "upload"  # a panel's file uploaded in the app (in memory only)


@dataclass(frozen=True)
class Origin:
    """Where a database's sheets came from, as its build_info records it."""

    name: str  # a path (relative to the repository when inside it) or an upload's file name
    kind: str  # SHIPPED_SHEETS, OTHER_FOLDER, PANEL_FILE or UPLOAD

    @classmethod
    def of(cls, source: Path) -> Origin:
        """The origin of a folder or file on disk."""
        if source.resolve() == SHEETS_DIR.resolve():
            kind = SHIPPED_SHEETS
        else:
            kind = OTHER_FOLDER if source.is_dir() else PANEL_FILE
        return cls(_shown(source), kind)


def _shown(path: Path) -> str:
    """A path as people read it: relative to the repository when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


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


ROWS = "rows:"  # build_info key prefix: a table's row count as built (`rows:studies`)


def database_rows(
    tables: Mapping[str, list[Row]], info: Mapping[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """Validated rows as the database's tables hold them (in the order they are inserted): the
    sheets' columns, each outcome's study, each review figure's checks, and build_info with each
    table's row count (which `verify` checks)."""
    info = {**info, **{f"{ROWS}{sheet.name}": str(len(tables[sheet.name])) for sheet in SHEETS}}
    cohort_study = {r["cohort_id"]: r["study_id"] for r in tables["cohorts"]}
    figures_by_id = {r["figure_id"]: r for r in tables["review_figures"]}
    out: dict[str, list[dict[str, Any]]] = {}
    for sheet in SHEETS:
        names = sheet.column_names
        rows = [{c: row.get(c) for c in names} for row in tables[sheet.name]]
        if sheet.name == "outcomes":
            for row in rows:
                row["study_id"] = cohort_study[row["cohort_id"]]
        if sheet.name == "review_figures":
            rows = [row | check_review_figure(row, figures_by_id) for row in rows]
        out[sheet.name] = rows
    out["build_info"] = [{"key": k, "value": v} for k, v in info.items()]
    return out


def write_database(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, list[Row]], info: Mapping[str, str]
) -> None:
    """Create the schema on an empty connection and insert validated rows."""
    con.execute(SCHEMA.read_text())
    for table, rows in database_rows(tables, info).items():
        _insert(con, table, rows)


def build_info(raw: Mapping[str, bytes], origin: Origin) -> dict[str, str]:
    """What a database records about itself: the data version shown in the app, and where its
    sheets came from, which decides whether `ensure_built` may replace it."""
    info = {
        "schema_version": SCHEMA_VERSION,
        "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "origin": origin.name,
        "origin_kind": origin.kind,
        "sheets_sha256": sheets_checksum(raw),
    }
    info |= {f"sheet_sha256:{name}": hashlib.sha256(raw[name]).hexdigest() for name in sorted(raw)}
    return info


def validated_tables(
    raw: Mapping[str, bytes], limits: SheetLimits = BUILD_LIMITS
) -> dict[str, list[Row]]:
    """The typed rows, or ValidationError listing every problem. A file built on disk is a
    host's own build (`BUILD_LIMITS`); a panel's upload was already held to `UPLOAD_LIMITS`."""
    tables, problems = validate_sheets(raw, limits=limits)
    if problems:
        raise ValidationError(problems)
    return tables


def build_in_memory(
    raw: Mapping[str, bytes], origin: Origin, limits: SheetLimits = UPLOAD_LIMITS
) -> duckdb.DuckDBPyConnection:
    """An in-memory database of `raw` sheets: used for a panel's upload, never touching disk
    (and for a host's own sheets, with `BUILD_LIMITS`, when their file cannot be written)."""
    tables = validated_tables(raw, limits)
    con = duckdb.connect(":memory:")
    write_database(con, tables, build_info(raw, origin))
    return con


def build_file(raw: Mapping[str, bytes], target: Path, origin: Origin) -> Path:
    """Validate, write to a temporary file beside `target`, then atomically rename onto it; its
    checksum file (`checksum_path`) is written beside it the same way."""
    tables = validated_tables(raw)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    tmp.unlink()  # duckdb must create the file itself
    tmp_checksum = Path(str(tmp) + CHECKSUM_SUFFIX)
    try:
        with duckdb.connect(str(tmp)) as con:
            write_database(con, tables, build_info(raw, origin))
        tmp_checksum.write_text(f"{file_sha256(tmp)}  {target.name}\n", encoding="utf-8")
        os.replace(tmp, target)
        os.replace(tmp_checksum, checksum_path(target))
    finally:
        tmp.unlink(missing_ok=True)
        tmp_checksum.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return target


def build_from(source: Path, target: Path = DATABASE) -> Path:
    """Build `target` from a folder of CSVs or a panel's file, recording where they came from."""
    return build_file(load_source(source), target, Origin.of(source))


# ---- a built file's integrity ------------------------------------------------------------------
CHECKSUM_SUFFIX = ".sha256"
DAMAGED_SUFFIX = ".damaged"


def checksum_path(database: Path) -> Path:
    """Where a built file's SHA-256 is recorded: beside it, `sha256sum -c` readable."""
    return database.with_name(database.name + CHECKSUM_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recorded_checksum(database: Path) -> str | None:
    """The SHA-256 recorded beside `database` when it was built, or None if none is."""
    try:
        text = checksum_path(database).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    first = text.split(maxsplit=1)
    return first[0].lower() if first and re.fullmatch(r"[0-9a-fA-F]{64}", first[0]) else None


def verify(database: Path) -> str | None:
    """Why `database` cannot be served, in words, or None if it can.

    It can when its checksum matches the one recorded beside it (a file built before checksums
    were recorded has none, and is judged by its contents alone), it opens read-only, every table
    of the schema reads to its last row, and each table holds the rows its build recorded.
    """
    if not database.is_file():
        return "is missing"
    recorded = recorded_checksum(database)
    if recorded is not None and file_sha256(database) != recorded:
        return (
            f"does not match the checksum recorded in {checksum_path(database).name} "
            "(damaged or changed after its build)"
        )
    try:
        with db.connect_read_only(database) as con:
            info = dict(con.execute("SELECT key, value FROM build_info").fetchall())
            for sheet in SHEETS:
                count = len(con.execute(f"SELECT * FROM {sheet.name}").fetchall())
                expected = info.get(f"{ROWS}{sheet.name}")
                if expected is not None and str(count) != expected:
                    return f"has {count} rows in {sheet.name}, where its build wrote {expected}"
    except (duckdb.Error, OSError) as err:
        return f"cannot be read ({type(err).__name__}: {str(err).splitlines()[0]})"
    return None


def folder_writable(folder: Path) -> bool:
    """Whether a new file can be written in `folder` (a container's data folder may be read-only:
    then a damaged file is rebuilt in memory instead)."""
    return os.access(folder, os.W_OK)


class Unservable(Exception):
    """Nothing can be served: the file is damaged and the sheets cannot rebuild it."""


@dataclass(frozen=True)
class Served:
    """The database to serve, the file it is (None when built in memory) and what happened to
    get it, for the host and the people using the app (None when the file was served as it is)."""

    con: duckdb.DuckDBPyConnection
    file: Path | None
    notice: str | None = None


def open_served(database: Path, sheets: Path | None = None, rebuild: bool = True) -> Served:
    """`database` opened read-only if it verifies; else rebuilt from `sheets` (default: the shipped
    sheets) into a fresh file (the damaged one kept beside it, `*.damaged`), or in memory when its
    folder cannot be written. Raises Unservable when the sheets cannot rebuild it either, or when
    `rebuild` is False (a file chosen to be served as it is, never replaced by other data).

    Each outcome is meant to be kept for the life of the process (the app caches it), so a
    read-only folder costs one attempt, not one per page view.
    """
    sheets = SHEETS_DIR if sheets is None else sheets
    problem = verify(database)
    if problem is None:
        return Served(db.connect_read_only(database), database)
    shown = _shown(database)
    if not rebuild:
        raise Unservable(f"{shown} {problem}")
    try:
        raw = read_sheet_dir(sheets)
        validated_tables(raw)
    except ValidationError as err:
        why = f"the sheets in {_shown(sheets)} have {len(err.problems)} problem(s)"
        raise Unservable(f"{shown} {problem}, and {why}") from err
    except (OSError, ValueError) as err:
        raise Unservable(f"{shown} {problem}, and {_shown(sheets)} cannot be read ({err})") from err
    origin = Origin.of(sheets)
    if folder_writable(database.parent):
        try:
            kept = database.with_name(database.name + DAMAGED_SUFFIX)
            if database.exists():
                shutil.move(database, kept)
            build_file(raw, database, origin)
            if verify(database) is None:
                aside = f" (the damaged file is kept as {kept.name})" if kept.exists() else ""
                return Served(
                    db.connect_read_only(database),
                    database,
                    f"{shown} {problem}: rebuilt it from {_shown(sheets)}{aside}.",
                )
        except OSError:
            pass  # not writable after all (a read-only mount): build in memory below
    return Served(
        build_in_memory(raw, origin, BUILD_LIMITS),
        None,
        f"{shown} {problem} and could not be rebuilt in its folder: serving {_shown(sheets)} "
        "built in memory until the file is rebuilt (`python -m evidence.extraction.build`).",
    )


# ---- keeping a built file in step with its sheets --------------------------------------------
def stored_info(database: Path) -> dict[str, str] | None:
    """The build_info a built file records, or None if it is missing or unreadable."""
    if not database.exists():
        return None
    try:
        with db.connect_read_only(database) as con:
            return dict(db.run(con, "build_info").itertuples(index=False))
    except duckdb.Error:
        return None


State = Literal["missing", "changed", "current", "other source"]


@dataclass(frozen=True)
class Freshness:
    """How a built file stands against the sheets it should follow, with a line for people."""

    state: State
    message: str

    @property
    def needs_build(self) -> bool:
        return self.state in ("missing", "changed")


def freshness(database: Path, source: Path) -> Freshness:
    """Whether `database` is missing, behind `source`, up to date with it, or built from another
    source (and so not `source`'s to replace).

    The recorded origin and a checksum decide, not file times (git checkouts reset those). A
    file built elsewhere is judged before `source` is read, so keeping it needs no sheets.
    """
    info = stored_info(database)
    followed = Origin.of(source)
    shown = _shown(database)
    if info is None:
        return Freshness("missing", f"{shown} is missing or unreadable: building it")
    recorded = info.get("origin", "")
    if (ROOT / recorded).resolve() != source.resolve():
        kind = info.get("origin_kind", "origin kind not recorded")
        command = "python -m evidence.extraction.build"
        if followed.kind != SHIPPED_SHEETS:
            command += f" --from {followed.name}"
        if database.resolve() != DATABASE.resolve():
            command += f" --out {shown}"
        behind = (
            ""
            if info.get("schema_version") == SCHEMA_VERSION
            else f" (it has schema version {info.get('schema_version', '?')}, this version reads "
            f"{SCHEMA_VERSION}: rebuild it from {recorded} before serving it)"
        )
        return Freshness(
            "other source",
            f"kept {shown}: it was built from {recorded} ({kind}), not from {followed.name}; "
            f"`{command}` rebuilds it from {followed.name}{behind}",
        )
    if info.get("schema_version") != SCHEMA_VERSION:
        return Freshness(
            "changed",
            f"{shown} was built with schema version {info.get('schema_version', '?')}, this "
            f"version reads {SCHEMA_VERSION}: rebuilding",
        )
    if info.get("sheets_sha256") != sheets_checksum(load_source(source)):
        return Freshness("changed", f"{followed.name} changed since {shown} was built: rebuilding")
    return Freshness("current", f"{shown} is up to date with {followed.name}")


def ensure_built(database: Path = DATABASE, source: Path | None = None) -> Freshness:
    """Build `database` from `source` (default: data/extraction) if it is missing, or was built
    from `source` and the sheets have changed since; otherwise leave it as it is.

    Returns what was found before building; its message is the line to show. A database built
    from another source (a panel's file, another folder) is never replaced here.
    """
    source = SHEETS_DIR if source is None else source
    found = freshness(database, source)
    if found.needs_build:
        build_from(source, database)
    return found


# ---- a panel's file ----------------------------------------------------------------------------
# An upload's database holds one extraction for one browser session: one thread, a small memory
# limit, and no spilling to a temporary directory on disk. The largest valid upload the caps allow
# (the shipped extraction 49 times over, 4,802 rows in its largest sheet) stores 22 MB, 16 MB of
# it the keys' indexes, and its Studies page's query needs about 80 MB (64 MB failed it).
UPLOAD_DATABASE_CONFIG = {"threads": 1, "memory_limit": "128MB", "temp_directory": ""}
# Imported once by the checking processes' fork server, so that a check starts in milliseconds.
worker.preload("evidence.extraction.build", "openpyxl", "pyarrow")
_UPLOAD_TABLES = (*(sheet.name for sheet in SHEETS), "build_info")


def check_upload(filename: str, content: bytes) -> tuple[dict[str, bytes], list[Problem]]:
    """A panel's file as raw sheets, plus every problem in it: the reader's notes on cells and
    the validator's findings, in one list. Raises UploadError if the file itself is unreadable."""
    raw, _, problems = _checked_upload(filename, content)
    return raw, problems


def _checked_upload(
    filename: str, content: bytes
) -> tuple[dict[str, bytes], dict[str, list[Row]], list[Problem]]:
    """Raw sheets, typed rows and every problem: the file read once, each sheet checked as its
    rows stream by, within the reader's and the validator's limits."""
    raw, notes, unread = inspect_upload(filename, content)
    tables, problems = validate_sheets(raw, unescape=True, unread=unread)
    if is_workbook(filename):
        problems = _workbook_labels(problems)
    return raw, tables, in_order(problems + notes)


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

    Never raises for bad input: the upload page shows the list. The file is read, checked and
    built in a separate process with its own time and memory limits (`worker.run`, at most a few
    at once), so a hostile or merely huge file cannot stall the server's other sessions or keep
    its memory. What comes back is small and plain: the problems as JSON, or the built tables as
    Arrow IPC streams (never a pickle), which are inserted here into a fresh `:memory:`
    connection with the same schema (its constraints checked again). That connection, private to
    the caller, uses one thread and a small memory limit; nothing on disk is opened or written.
    """
    con, _, problems = upload_with_sheets(filename, content)
    return con, problems


def upload_with_sheets(
    filename: str, content: bytes
) -> tuple[duckdb.DuckDBPyConnection | None, bytes | None, list[Problem]]:
    """`from_upload`, and the checked sheets as `sheets_zip` writes them (what the dataset store
    keeps, so that another server process can build the same database): (None, None, problems)
    when the file does not pass."""
    return _built_in_worker(filename, _upload_in_worker, (filename,), content)


def from_sheets_zip(
    filename: str, content: bytes, sheets_sha256: str
) -> tuple[duckdb.DuckDBPyConnection | None, list[Problem]]:
    """An in-memory database of sheets kept by `sheets_zip` (a dataset the store holds), checked
    again as an upload is, in the same bounded process, and refused unless the sheets are the
    ones `sheets_sha256` names. `filename` is the name the panel uploaded them under: build_info
    records it as the origin, as for the upload itself."""
    con, _, problems = _built_in_worker(
        filename, _stored_in_worker, (filename, sheets_sha256), content
    )
    return con, problems


def _built_in_worker(
    filename: str, target: Any, args: tuple[Any, ...], content: bytes
) -> tuple[duckdb.DuckDBPyConnection | None, bytes | None, list[Problem]]:
    """Run `target` (`_upload_in_worker` or `_stored_in_worker`) in the bounded process and build
    the database from its answer: the problems, or the tables and the sheets' zip."""
    try:
        parts = worker.run(target, args, content)
    except worker.Refused as refused:
        return None, None, [Problem(shown(filename), None, "", _refusal(refused), blocking=True)]
    try:
        answer = json.loads(parts[0])
        problems = [Problem(*problem) for problem in answer["problems"]]
        if problems:
            return None, None, in_order(problems)
        if tuple(answer["tables"]) != _UPLOAD_TABLES or len(parts) != len(_UPLOAD_TABLES) + 2:
            raise ValueError("the checking process sent other tables than the schema's")
        return _upload_database(parts[1:-1]), parts[-1], []
    except (duckdb.Error, KeyError, TypeError, ValueError, IndexError) as err:
        return None, None, [_not_loaded(filename, err)]


def _refusal(refused: worker.Refused) -> str:
    """Why a file was not checked, in words for the person who uploaded it."""
    limits = worker.LIMITS
    if refused.reason == "busy":
        return (
            "the server is busy checking other uploads: try again in a minute (nothing was loaded)"
        )
    if refused.reason == "time":
        return (
            f"checking the file took longer than {limits.seconds:g} s, the most one check may "
            "take, so it was stopped: an extraction is checked in a second or two; upload only "
            "the extraction sheets (no other data, images or formatting far beyond the tables)"
        )
    if refused.reason == "memory":
        return (
            f"checking the file needed more than {limits.memory_mb} MB of memory, the most one "
            "check may use, so it was stopped: upload only the extraction sheets"
        )
    return f"the file could not be checked ({shown(refused.detail, 120)}): upload it again"


def _not_loaded(filename: str, err: Exception) -> Problem:
    return Problem(
        shown(filename),
        None,
        "",
        f"could not be loaded ({type(err).__name__}: {shown(str(err), 200)})",
        blocking=True,
    )


def _upload_in_worker(filename: str, content: bytes) -> list[bytes]:
    """In the checking process: the problems as JSON, or (when there are none) the database's
    rows, each table as an Arrow IPC stream after a JSON header naming them, and last the
    sheets as `sheets_zip` writes them.

    No database is opened here: DuckDB reserves far more address space than the rows need, which
    the process's own limit (RLIMIT_AS) is about. The rows are typed by the validator, so Arrow's
    types follow from them.
    """
    try:
        raw, tables, problems = _checked_upload(filename, content)
    except UploadError as err:
        return [_answer(err.problems)]
    except MemoryError:
        raise
    except Exception as err:  # a reader bug must not take the page down
        return [_answer([_unreadable(filename, err)])]
    return _rows_reply(filename, raw, tables, problems)


def _stored_in_worker(filename: str, sheets_sha256: str, content: bytes) -> list[bytes]:
    """In the checking process: a stored dataset's sheets (`sheets_zip`) read within the sheets'
    caps, refused unless they are the ones `sheets_sha256` names, then checked and answered as
    an upload is (`_upload_in_worker`)."""
    try:
        raw = read_sheets_zip(filename, content)
    except UploadError as err:
        return [_answer(err.problems)]
    if sheets_checksum(raw) != sheets_sha256:
        message = "does not hold the sheets its identifier names (damaged in the dataset store)"
        return [_answer([Problem(shown(filename), None, "", message, blocking=True)])]
    try:
        tables, problems = validate_sheets(raw, unescape=True)
    except MemoryError:
        raise
    except Exception as err:
        return [_answer([_unreadable(filename, err)])]
    return _rows_reply(filename, raw, tables, in_order(problems))


def _answer(problems: list[Problem], tables: tuple[str, ...] = ()) -> bytes:
    """The checking process's JSON header: the problems, or the tables that follow."""
    rows = [[p.file, p.row, p.column, p.message, p.blocking] for p in problems]
    return json.dumps({"problems": rows, "tables": list(tables)}).encode("utf-8")


def _unreadable(filename: str, err: Exception) -> Problem:
    message = f"could not be read ({type(err).__name__}: {shown(str(err), 200)})"
    return Problem(shown(filename), None, "", message, blocking=True)


def _rows_reply(
    filename: str,
    raw: dict[str, bytes],
    tables: dict[str, list[Row]],
    problems: list[Problem],
) -> list[bytes]:
    """The checking process's answer: the problems, or the header, one Arrow IPC stream per
    table and the sheets' zip."""
    import pyarrow as pa

    if problems:
        return [_answer(problems)]
    pa.set_memory_pool(pa.system_memory_pool())  # no allocator that reserves address space
    try:
        rows = database_rows(tables, build_info(raw, Origin(filename, UPLOAD)))
    except MemoryError:
        raise
    except Exception as err:
        return [_answer([_unreadable(filename, err)])]
    kept = sheets_zip(raw)
    del raw, tables
    streams = []
    for name in _UPLOAD_TABLES:
        table = pa.Table.from_pylist(rows.pop(name))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        streams.append(sink.getvalue().to_pybytes())
    return [_answer([], _UPLOAD_TABLES), *streams, kept]


# ---- checked sheets kept as one file (the dataset store's format) -----------------------------
SHEETS_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a fixed time: the same sheets give the same bytes


def sheets_zip(raw: Mapping[str, bytes]) -> bytes:
    """Raw sheets as a zip of `<sheet>.csv` members, byte for byte, in name order, with a fixed
    time: the same sheets always give the same file (two servers storing one upload at once
    write identical bytes). It is also a valid upload (a zip of CSVs)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in sorted(raw):
            info = zipfile.ZipInfo(f"{name}.csv", date_time=SHEETS_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, raw[name])
    return buffer.getvalue()


def read_sheets_zip(filename: str, content: bytes) -> dict[str, bytes]:
    """The raw sheets of a `sheets_zip` file: only `<sheet>.csv` members of the contract, each
    unpacked to at most one byte past MAX_SHEET_BYTES (the validator refuses it then) and
    MAX_UNPACKED_BYTES in all, whatever the members declare. UploadError when it is anything
    else or damaged."""

    def refused(message: str) -> UploadError:
        return UploadError([Problem(shown(filename), None, "", message, blocking=True)])

    raw: dict[str, bytes] = {}
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            for info in zf.infolist():
                stem = info.filename.removesuffix(".csv")
                if (
                    not info.filename.endswith(".csv")
                    or stem not in SHEETS_BY_NAME
                    or stem in raw
                    or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
                ):
                    raise refused(f"holds {shown(info.filename)}, which is not one of the sheets")
                with zf.open(info) as stream:
                    raw[stem] = stream.read(MAX_SHEET_BYTES + 1)
                total += len(raw[stem])
                if total > MAX_UNPACKED_BYTES:
                    raise refused("holds more than the sheets of one extraction")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as err:
        raise refused(f"is damaged ({type(err).__name__})") from err
    except (NotImplementedError, RuntimeError, ValueError) as err:
        if isinstance(err, UploadError):
            raise
        raise refused(f"cannot be unpacked ({type(err).__name__})") from err
    return raw


def _upload_database(streams: list[bytes]) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database with the schema, filled from the checking process's tables
    (their constraints checked again on insert)."""
    import pyarrow as pa

    con = duckdb.connect(":memory:", config=UPLOAD_DATABASE_CONFIG)
    try:
        con.execute(SCHEMA.read_text())
        for name, stream in zip(_UPLOAD_TABLES, streams, strict=True):
            table = pa.ipc.open_stream(stream).read_all()
            if table.num_rows == 0:
                continue
            known = set(con.table(name).columns)
            if not set(table.column_names) <= known:  # names reach SQL only if the schema has them
                raise ValueError(f"the checking process sent columns {name} does not have")
            columns = ", ".join(table.column_names)
            con.register("_incoming", table)
            try:
                con.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM _incoming")
            finally:
                con.unregister("_incoming")
    except BaseException:
        con.close()
        raise
    return con


# ---- the command line --------------------------------------------------------------------------
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
        help="folder of extraction CSVs, or a panel's .xlsx / .zip (default: data/extraction)",
    )
    parser.add_argument("--out", type=Path, default=DATABASE, help="database file to write")
    parser.add_argument("--check", action="store_true", help="validate only, write nothing")
    parser.add_argument(
        "--if-stale",
        action="store_true",
        help="build only if the file is missing, or was built from these sheets and they changed; "
        "a file built from another source is kept",
    )
    args = parser.parse_args(argv)
    source: Path = args.source
    try:
        if args.check:
            validated_tables(load_source(source))
            print(f"{source}: all sheets valid")
            return 0
        if args.if_stale:
            found = freshness(args.out, source)
            print(found.message, file=sys.stderr if found.state == "other source" else sys.stdout)
            if not found.needs_build:
                return 0
        raw = load_source(source)
        origin = Origin.of(source)
        path = build_file(raw, args.out, origin)
    except ValidationError as err:
        print(report(err.problems), file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    checksum = sheets_checksum(raw)[:12]
    print(f"wrote {path} from {origin.name} ({origin.kind}; sheets sha256 {checksum})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
