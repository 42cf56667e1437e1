"""Write the report bundle of one slice into a folder.

    python -m evidence.report --query "QUERY" [--data PATH] --out DIR

QUERY is the query string of a dashboard link (what follows "?"; read by the same parser as the
app: a value it does not know is dropped with a notice on stderr). PATH is a panel's extraction
(a workbook, a zip of CSVs or a folder of sheets), checked as an upload is; without it the
shipped database (data/anakinra.duckdb, or ANAKINRA_DB), or the shipped sheets built in memory
when that file is missing, damaged or behind them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb

from evidence import db
from evidence.extraction import build
from evidence.extraction.validate import ValidationError
from evidence.filters import keep_known_studies, read_link
from evidence.report import bundle

DATA_MARKER = "data"  # a link made on an upload carries data=upload (evidence.ui.data.LINK_KEY)


class DataError(Exception):
    """The data named cannot be used: every problem, in words."""


def open_data(path: Path | None) -> duckdb.DuckDBPyConnection:
    """The database to report on (see the module docstring)."""
    if path is not None:
        if path.is_dir():
            try:
                raw = build.read_sheet_dir(path)
                return build.build_in_memory(raw, build.Origin(path.name, build.OTHER_FOLDER))
            except ValidationError as err:
                raise DataError(build.report(err.problems)) from err
        if not path.is_file():
            raise DataError(f"{path}: no such file or folder")
        con, problems = build.from_upload(path.name, path.read_bytes())
        if con is None:
            raise DataError(build.report(problems))
        return con
    named = os.environ.get("ANAKINRA_DB")
    target = Path(named) if named else build.DATABASE
    if named or (
        build.verify(target) is None
        and build.freshness(target, build.SHEETS_DIR).state in ("current", "other source")
    ):
        if build.verify(target) is not None:
            raise DataError(f"{target} {build.verify(target)}")
        return db.connect_read_only(target)
    print(
        f"{target.name} is missing, damaged or behind data/extraction: reporting on the shipped "
        "sheets built in memory.",
        file=sys.stderr,
    )
    return build.build_in_memory(
        build.read_sheet_dir(build.SHEETS_DIR), build.Origin.of(build.SHEETS_DIR)
    )


def query_params(query: str) -> dict[str, list[str]]:
    """A link's query string (a whole link is accepted too: its part after "?")."""
    if "?" in query:
        query = urlsplit(query).query if "://" in query else query.split("?", 1)[1]
    return parse_qs(query.lstrip("?"), keep_blank_values=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evidence.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--query", default="", help="a dashboard link's query string")
    parser.add_argument("--data", type=Path, help="extraction workbook, zip of CSVs or folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the files into")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    params = query_params(args.query)
    params.pop(DATA_MARKER, None)  # which data is --data's to say
    rows, view, notices = read_link(params)
    try:
        con = open_data(args.data)
    except (DataError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    study_ids = tuple(db.run(con, "studies_table")["study_id"])
    rows, view, unknown = keep_known_studies(rows, view, study_ids)
    for notice in notices + unknown:
        print(f"notice: {notice}", file=sys.stderr)
    files = bundle.build(con, rows, view)
    for line in bundle.notices_of(files):
        print(f"notice: {line}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (args.out / name).write_bytes(content)
    took = time.perf_counter() - started
    print(f"wrote {len(files)} files to {args.out} in {took:.1f} s ({rows.describe()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
