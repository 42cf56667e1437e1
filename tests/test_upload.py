"""Uploads: every malformed file in the corpus gets its own message and changes nothing on disk; a
good extraction loads in memory; an export loads back unchanged; the template matches the contract.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import random
import re
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from evidence import db
from evidence.extraction import build, contract, template, upload, worker
from evidence.extraction.build import from_upload
from evidence.extraction.contract import SHEETS, SHEETS_BY_NAME, SYNTHETIC_MARK
from evidence.extraction.export import export_csv_zip, export_workbook
from evidence.extraction.upload import (
    MAX_COMPRESSION_RATIO,
    MAX_UPLOAD_BYTES,
    UploadError,
)
from evidence.extraction.validate import (
    MAX_PROBLEMS_PER_FILE,
    MAX_ROWS_PER_SHEET,
    MAX_SHEET_BYTES,
    Problem,
    ProblemLog,
    ValidationError,
    validate_sheets,
)
from tests import worker_targets

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
GOOD = FIXTURES / "good"
CORPUS = FIXTURES / "bad_uploads"
SHIPPED = ROOT / "data" / "anakinra.duckdb"
ORIGIN = build.Origin("tests/fixtures", build.OTHER_FOLDER)


def _expected() -> list[tuple[str, str]]:
    with (CORPUS / "expected.csv").open(encoding="utf-8", newline="") as handle:
        return [(row["file"], row["expected_fragment"]) for row in csv.DictReader(handle)]


EXPECTED = _expected()


def _digests() -> dict[str, str]:
    """Hashes of everything an upload must never change: the shipped database and the fixtures."""
    paths = [SHIPPED, *sorted(GOOD.glob("*")), *sorted(CORPUS.glob("*"))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def _good_raw() -> dict[str, bytes]:
    return build.read_sheet_dir(GOOD)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def good_con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = build.build_in_memory(_good_raw(), ORIGIN)
    yield con
    con.close()


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows in stored order (all columns, computed ones included)."""
    return {s.name: con.execute(f"SELECT * FROM {s.name}").fetchall() for s in SHEETS}


# The corpus -----------------------------------------------------------------------------------


def test_corpus_is_complete_and_large_enough() -> None:
    listed = {name for name, _ in EXPECTED}
    present = {p.name for p in CORPUS.iterdir() if p.name != "expected.csv"}
    assert listed == present
    assert len(listed) >= 40


@pytest.mark.parametrize(("name", "fragment"), EXPECTED, ids=[n for n, _ in EXPECTED])
def test_each_bad_upload_is_refused_with_its_message(name: str, fragment: str) -> None:
    before = _digests()
    con, problems = from_upload(name, (CORPUS / name).read_bytes())  # must not raise
    assert con is None
    assert problems and all(isinstance(p, Problem) for p in problems)
    shown = [str(p) for p in problems]
    assert any(fragment in line for line in shown), f"{name}: {fragment!r} not in {shown}"
    # Whatever the file holds, every line is short (names and values are shortened) and the list
    # is bounded (at most MAX_PROBLEMS_PER_FILE per sheet, and one line for the rest).
    assert all(len(line) < 500 for line in shown), max(shown, key=len)[:300]
    assert len(problems) <= 8 * (MAX_PROBLEMS_PER_FILE + 1)
    assert _digests() == before


def test_oversize_upload_is_refused_before_reading() -> None:
    data = _zip({"studies.csv": b"x"}) + bytes(MAX_UPLOAD_BYTES)
    con, problems = from_upload("big.zip", data)
    assert con is None
    assert "over the 5 MB limit" in str(problems[0])
    with pytest.raises(UploadError):
        upload.inspect_upload("big.zip", data)


def test_upload_limit_matches_streamlit_config() -> None:
    config = (ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    match = re.search(r"maxUploadSize\s*=\s*(\d+)", config)
    assert match and int(match.group(1)) * 1024 * 1024 == MAX_UPLOAD_BYTES


def test_container_problems_raise_upload_error_with_every_reason() -> None:
    data = _zip({"../studies.csv": b"a", "run.exe": b"b", "a/b/c.csv": b"c"})
    with pytest.raises(UploadError) as caught:
        upload.inspect_upload("panel.zip", data)
    messages = " | ".join(str(p) for p in caught.value.problems)
    assert "unsafe path" in messages
    assert "not a CSV file" in messages
    assert "folder inside a folder" in messages


def test_names_from_inside_an_upload_are_shown_safely() -> None:
    evil = "\x1b[31m" + "a" * 500 + ".exe"
    with pytest.raises(UploadError) as caught:
        upload.inspect_upload("x.zip", _zip({evil: b"x", "studies.csv": b"study_id\n"}))
    message = caught.value.problems[0].message
    assert "\x1b" not in message and "?[31m" in message
    assert len(message) < 200


def test_all_sheet_problems_are_listed_at_once() -> None:
    wb = load_workbook(io.BytesIO(export_workbook(build.build_in_memory(_good_raw(), ORIGIN))))
    wb.create_sheet("Sheet1")["A1"] = "scratch"
    wb["studies"]["C2"] = "MMXX"  # year
    buffer = io.BytesIO()
    wb.save(buffer)
    con, problems = from_upload("many.xlsx", buffer.getvalue())
    assert con is None
    assert [p.file for p in problems] == ["many.xlsx", "studies sheet"], problems
    raw = _good_raw()
    raw["outcomes"] = raw["outcomes"].replace(b"icans_response,11,14", b"icans_response,15,14")
    raw["cohorts"] = raw["cohorts"].replace(b",CTCAE,", b",Lee2014,")
    del raw["quality"]
    con, problems = from_upload("many.zip", _zip({f"{k}.csv": v for k, v in raw.items()}))
    assert con is None
    assert {p.file for p in problems} == {"cohorts.csv", "outcomes.csv", "quality.csv"}


def test_lying_sizes_are_enforced_while_reading() -> None:
    """Even when the declared sizes are not checked first, unpacking stops at the limits."""
    data = _zip({"studies.csv": b" " * (4 * 1024 * 1024)})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.infolist()[0]
        assert info.file_size > MAX_COMPRESSION_RATIO * info.compress_size
        with pytest.raises(UploadError, match="zip bomb"):
            upload.read_member_bounded("x.zip", zf, info, upload._Budget())
        small = _zip({"studies.csv": b"study_id\n" * 1000})
    with (
        zipfile.ZipFile(io.BytesIO(small)) as zf,
        pytest.raises(UploadError, match="unpacks to more than"),
    ):
        upload.read_member_bounded("x.zip", zf, zf.infolist()[0], upload._Budget(100))


def test_damaged_uploads_never_raise() -> None:
    """Random byte damage to a good workbook and zip: always a problem list, never an exception."""
    rng = random.Random(20221)
    con = build.build_in_memory(_good_raw(), ORIGIN)
    for name, data in (("a.xlsx", export_workbook(con)), ("a.zip", export_csv_zip(con))):
        for _ in range(40):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            result, problems = from_upload(name, bytes(damaged))
            assert (result is None) == bool(problems)


def test_only_in_memory_databases_are_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_connect = duckdb.connect

    def spy(database: str = ":memory:", *args: object, **kwargs: object) -> object:
        opened.append(str(database))
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", spy)
    before = _digests()
    con, problems = from_upload("good.zip", _zip({f"{k}.csv": v for k, v in _good_raw().items()}))
    assert problems == [] and con is not None
    assert opened == [":memory:"]
    assert _digests() == before


# Good uploads ---------------------------------------------------------------------------------


def test_good_csv_zip_in_one_folder_with_junk_loads() -> None:
    members = {f"extraction/{k}.csv": v for k, v in _good_raw().items()}
    members |= {"__MACOSX/extraction/._studies.csv": b"\x00", "extraction/README.txt": b"hi"}
    members |= {"extraction/.DS_Store": b"\x00\x01"}
    con, problems = from_upload("Panel Extraction.ZIP", _zip(members))
    assert problems == []
    assert con is not None
    assert con.execute("SELECT count(*) FROM studies").fetchone() == (6,)
    info = dict(db.run(con, "build_info").itertuples(index=False))
    assert (info["origin"], info["origin_kind"]) == ("Panel Extraction.ZIP", build.UPLOAD)


def test_formula_cells_arrive_as_their_text_not_their_value() -> None:
    data = (CORPUS / "formula_in_count.xlsx").read_bytes()
    # Give the formula a cached result, as Excel would: it must still not be used.
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        parts = {i.filename: src.read(i) for i in src.infolist()}
    sheet = parts["xl/worksheets/sheet3.xml"]
    assert b"<f>3+3</f><v />" in sheet
    parts["xl/worksheets/sheet3.xml"] = sheet.replace(b"<f>3+3</f><v />", b"<f>3+3</f><v>6</v>")
    raw = upload.inspect_upload("f.xlsx", _zip(parts)).raw
    records = list(csv.reader(io.StringIO(raw["cohorts"].decode("utf-8"))))
    row = dict(zip(records[0], records[1], strict=True))
    assert row["n_patients"] == "=3+3"
    _, problems = from_upload("f.xlsx", _zip(parts))
    assert any("is a formula (=3+3)" in str(p) for p in problems)


def test_workbook_cells_become_validator_text() -> None:
    import datetime as dt

    assert upload.cell_text(True) == "true"
    assert upload.cell_text(False) == "false"
    assert upload.cell_text(200.0) == "200"
    assert upload.cell_text(0.1) == "0.1"
    assert upload.cell_text(7) == "7"
    assert upload.cell_text(None) == ""
    assert upload.cell_text(dt.datetime(2021, 3, 4)) == "2021-03-04"
    assert upload.cell_text(dt.datetime(2021, 3, 4, 5, 6)) == "2021-03-04T05:06:00"
    assert upload.cell_text(dt.date(2021, 3, 4)) == "2021-03-04"
    # Cells arrive as written: the validator removes the escape, once, as for a CSV's cells.
    assert upload.cell_text("'=1+1") == "'=1+1"


# Round trip -----------------------------------------------------------------------------------


def _swap(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data, old
    return data.replace(old, new, 1)


def _tricky_raw() -> dict[str, bytes]:
    """The fixture with text that tests escaping, numbers-as-text, decimals and non-ASCII."""
    raw = {k: v.replace(b"\r\n", b"\n") for k, v in _good_raw().items()}
    studies = raw["studies"].decode("utf-8").splitlines()
    notes = ["=1+1", "-3 days", "@home", "'=already quoted", "≥ 3 – grade, “quoted”", "+44 20"]
    studies[1:] = [f'{line}"{note}"' for line, note in zip(studies[1:], notes, strict=True)]
    raw["studies"] = ("\n".join(studies) + "\n").encode("utf-8")
    raw["sources"] = _swap(raw["sources"], b"primary_abstract,,", b"primary_abstract,007,")
    raw["cohorts"] = _swap(raw["cohorts"], b"axi-cel,100,200", b"axi-cel,100.5,200")
    raw["cohorts"] = _swap(
        raw["cohorts"],
        b"12 patients were treated,,,,,,,,,,\n",
        b'12 patients were treated,,,,,,,,,,"two\nlines"\n',
    )
    return raw


@pytest.mark.parametrize("fmt", ["xlsx", "zip"])
@pytest.mark.parametrize("source", ["fixture", "tricky"])
def test_export_then_upload_changes_nothing(fmt: str, source: str) -> None:
    raw = _good_raw() if source == "fixture" else _tricky_raw()
    original = build.build_in_memory(raw, ORIGIN)
    exported = export_workbook(original) if fmt == "xlsx" else export_csv_zip(original)
    loaded, problems = from_upload(f"export.{fmt}", exported)
    assert problems == []
    assert loaded is not None
    assert _tables(loaded) == _tables(original)
    if fmt == "zip":  # a second export of the loaded copy is byte-identical
        assert export_csv_zip(loaded) == exported


@pytest.mark.parametrize("fmt", ["xlsx", "zip"])
def test_the_shipped_extraction_round_trips(fmt: str) -> None:
    """The real sheets (quotes, en dashes, ≥, long notes) survive export and upload unchanged."""
    try:
        original = build.build_in_memory(build.read_sheet_dir(build.SHEETS_DIR), ORIGIN)
    except (FileNotFoundError, ValidationError) as err:
        pytest.skip(f"data/extraction does not build at the moment: {err}")
    exported = export_workbook(original) if fmt == "xlsx" else export_csv_zip(original)
    loaded, problems = from_upload(f"shipped.{fmt}", exported)
    assert problems == []
    assert loaded is not None
    assert _tables(loaded) == _tables(original)


def test_tricky_fixture_really_is_tricky() -> None:
    con = build.build_in_memory(_tricky_raw(), ORIGIN)
    notes = [r[0] for r in con.execute("SELECT notes FROM studies").fetchall()]
    assert "=1+1" in notes and "'=already quoted" in notes
    assert con.execute("SELECT count(*) FROM cohorts WHERE notes LIKE '%\n%'").fetchone() == (1,)


def test_exported_workbook_has_no_formulas_and_only_sheet_columns() -> None:
    con = build.build_in_memory(_tricky_raw(), ORIGIN)
    wb = load_workbook(io.BytesIO(export_workbook(con)))
    for sheet in SHEETS:
        ws = wb[sheet.name]
        assert tuple(c.value for c in ws[1]) == sheet.column_names
        assert all(cell.data_type != "f" for row in ws.iter_rows() for cell in row)
    studies = wb["studies"]
    notes_col = SHEETS_BY_NAME["studies"].column_names.index("notes") + 1
    assert studies.cell(2, notes_col).value == "'=1+1"


# Template -------------------------------------------------------------------------------------


def _resolve(wb: object, formula: str) -> list[str]:
    match = re.fullmatch(r"(\w+)!\$([A-Z]+)\$(\d+):\$([A-Z]+)\$(\d+)", formula)
    assert match, formula
    sheet, col, first, _, last = match.groups()
    ws = wb[sheet]  # type: ignore[index]
    return [ws[f"{col}{row}"].value for row in range(int(first), int(last) + 1)]


def test_template_has_a_dropdown_for_every_closed_vocabulary_and_reference() -> None:
    wb = load_workbook(io.BytesIO(template.template_workbook()))
    assert wb.sheetnames[: len(SHEETS)] == [s.name for s in SHEETS]
    for sheet in SHEETS:
        ws = wb[sheet.name]
        assert tuple(c.value for c in ws[1]) == sheet.column_names
        assert ws.freeze_panes == "A2"
        assert ws.max_row == 1
        by_column: dict[str, list[str]] = {}
        formulas: dict[str, str] = {}
        for validation in ws.data_validations.dataValidation:
            assert validation.type == "list"
            for cell_range in validation.sqref.ranges:
                name = sheet.column_names[cell_range.min_col - 1]
                assert cell_range.min_row == 2 and cell_range.max_row == template.LAST_ROW
                by_column[name] = _resolve(wb, validation.formula1)
                formulas[name] = validation.formula1
        for column in sheet.columns:
            if column.kind == "ref":
                target = SHEETS_BY_NAME[column.ref or ""]
                key = get_column_letter(target.column_names.index(target.key or "") + 1)
                formula = f"{target.name}!${key}$2:${key}${template.LAST_ROW}"
                assert formulas.pop(column.name) == formula, column.name
                by_column.pop(column.name)
            elif column.kind == "bool":
                assert by_column.pop(column.name) == ["true", "false"]
            elif column.vocab:
                assert by_column.pop(column.name) == list(column.vocab), column.name
        assert by_column == {}, f"dropdowns on open columns: {by_column}"
    assert wb[contract.LISTS_SHEET].sheet_state == "hidden"


def test_template_notes_explain_every_column_from_the_readme() -> None:
    wb = load_workbook(io.BytesIO(template.template_workbook()))
    rows = [tuple(r) for r in wb[contract.NOTES_SHEET].iter_rows(values_only=True)]
    header = rows.index(("sheet", "column", "type", "required", "allowed values", "meaning"))
    notes = {(r[0], r[1]): r for r in rows[header + 1 :] if r[1]}
    for sheet in SHEETS:
        for column in sheet.columns:
            assert (sheet.name, column.name) in notes, column.name
    assert notes[("studies", "pmid")][5] == "PubMed id"
    assert notes[("outcomes", "events")][2] == "whole number ≥ 0"
    assert notes[("cohorts", "n_quote")][3] == "when the fact is given"
    assert notes[("cohorts", "dose_band")][4] == "le200, gt200, mixed, not_reported"
    assert "trm = treatment-related mortality" in notes[("outcomes", "outcome")][5]
    assert notes[("cohorts", "n_brexucel")][5]  # a README row that names several columns


def test_blank_templates_load_as_empty_extractions() -> None:
    for name, data in (
        ("t.xlsx", template.template_workbook()),
        ("t.zip", template.template_csv_zip()),
    ):
        con, problems = from_upload(name, data)
        assert problems == [] and con is not None
        assert con.execute("SELECT count(*) FROM studies").fetchone() == (0,)


def test_csv_template_is_headers_and_readme() -> None:
    with zipfile.ZipFile(io.BytesIO(template.template_csv_zip())) as zf:
        names = sorted(zf.namelist())
        assert names == sorted([f"{s.name}.csv" for s in SHEETS] + [template.CSV_README_NAME])
        for sheet in SHEETS:
            lines = zf.read(f"{sheet.name}.csv").decode("utf-8").splitlines()
            assert lines == [",".join(sheet.column_names)]
        readme = zf.read(template.CSV_README_NAME).decode("utf-8")
    assert "review_inclusion_reason" in readme and "PubMed id" in readme
    assert template.template_csv_zip() == template.template_csv_zip()


def test_template_command_writes_both_forms(tmp_path: Path) -> None:
    assert template.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "extraction_template.xlsx").stat().st_size > 0
    assert (tmp_path / "extraction_template_csv.zip").read_bytes() == template.template_csv_zip()
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == sorted(
        [f"{s.name}.csv" for s in SHEETS] + [template.CSV_README_NAME]
    )


def test_build_reads_an_exported_workbook(
    tmp_path: Path, good_con: duckdb.DuckDBPyConnection
) -> None:
    source = tmp_path / "panel.xlsx"
    source.write_bytes(export_workbook(good_con))
    target = tmp_path / "panel.duckdb"
    assert build.main(["--from", str(source), "--out", str(target)]) == 0
    with duckdb.connect(str(target), read_only=True) as con:
        assert _tables(con) == _tables(good_con)


def test_build_refuses_a_workbook_with_formulas_or_a_damaged_zip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "panel.duckdb"
    for name, expected in (
        ("formula_in_text.xlsx", "studies sheet:3:notes: is a formula"),
        ("truncated.zip", "error: truncated.zip:-: the archive is damaged"),
    ):
        source = tmp_path / name
        source.write_bytes((CORPUS / name).read_bytes())
        assert build.main(["--from", str(source), "--out", str(target)]) == 1
        assert expected in capsys.readouterr().err
        assert not target.exists()


@pytest.mark.slow
def test_corpus_generator_reproduces_the_committed_files() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_bad_uploads", FIXTURES / "make_bad_uploads.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    corpus = module.build_corpus()
    for name, (data, _, _) in corpus.items():
        assert (FIXTURES / "bad_uploads" / name).read_bytes() == data, name


# Bounded work: caps before work, root causes first --------------------------------------------


def test_an_encoding_problem_is_listed_first_without_its_follow_ons() -> None:
    """A UTF-16 or double-BOM studies.csv is named as the cause; the "missing column" and "does
    not exist in studies.csv" lines it would cause are not listed (they came first before)."""
    for name, cause in (
        ("utf16.zip", "studies.csv:-: is UTF-16 text"),
        ("double_bom.zip", "studies.csv:-: starts with two byte-order marks"),
    ):
        con, problems = from_upload(name, (CORPUS / name).read_bytes())
        assert con is None
        shown = [str(p) for p in problems]
        assert shown[0].startswith(cause), shown
        assert not any("does not exist in studies.csv" in line for line in shown), shown
        assert not any("required column is missing" in line for line in shown), shown


def test_root_causes_come_before_cell_problems_of_any_sheet() -> None:
    raw = _good_raw()
    raw["cohorts"] = raw["cohorts"].replace(b",CTCAE,", b",Lee2014,")  # a cell problem
    raw["studies"] = raw["studies"].replace(b"study_id,first_author", b"study_id,author", 1)
    _, problems = validate_sheets(raw)
    assert [str(p) for p in problems[:2]] == [
        "studies.csv:1:author: unknown column (see data/README.md)",
        "studies.csv:1:first_author: required column is missing from the header",
    ]
    assert str(problems[2]).startswith("cohorts.csv:3:grading_system: 'Lee2014'")
    assert len(problems) == 3  # no reference into the unread studies sheet is checked


def _peak_mib(action: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_a_sheet_over_its_byte_cap_is_refused_before_it_is_parsed() -> None:
    """The 90 KB zip whose quality.csv unpacks to 8.2 MB (within the ratio limit): at most one byte
    past the cap is unpacked and nothing is parsed (before: every row parsed, twice for its
    quotes, and kept: about 40 times the sheet's size)."""
    data = (CORPUS / "inflates_past_sheet_cap.zip").read_bytes()
    peak = _peak_mib(lambda: build.check_upload("big.zip", data))
    assert peak < 3 * MAX_SHEET_BYTES / 2**20, f"{peak:.0f} MiB"
    _, problems = build.check_upload("big.zip", data)
    assert str(problems[0]).startswith("quality.csv:-: the sheet is larger than 8 MB")


def test_a_sheet_with_too_many_rows_stops_at_the_first_row_past_the_cap() -> None:
    """150,000 short rows (6.6 MB, under the byte cap): reading stops at row 5,002 and says so;
    the rows are never all held (before: every record materialised, then refused)."""
    rows = "".join(f"Alpha2020,JBI_case_series,'=item {i},yes,x\n" for i in range(150_000))
    raw = _good_raw() | {"quality": ("study_id,tool,item,judgement,reason\n" + rows).encode()}
    peak = _peak_mib(lambda: validate_sheets(raw, unescape=True))
    assert peak < 25, f"{peak:.0f} MiB"
    _, problems = validate_sheets(raw, unescape=True)
    assert [str(p) for p in problems] == [
        f"quality.csv:{MAX_ROWS_PER_SHEET + 2}:-: more than 5,000 rows: reading stopped at this "
        "row (a sheet holds at most that many); delete the rows below the data"
    ]


def test_a_workbook_is_read_no_wider_than_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quality header 16,384 cells wide: openpyxl decodes no more of that sheet than its table's
    width (25 columns) and the sheet stops at the first value past it (before: every stored cell
    of every row was decoded, 16,384 a row)."""
    from openpyxl.worksheet._reader import WorkSheetParser

    decoded = 0
    real = WorkSheetParser.parse_cell

    def counting(self: WorkSheetParser, element: object) -> dict[str, object]:
        nonlocal decoded
        decoded += 1
        return real(self, element)

    monkeypatch.setattr(WorkSheetParser, "parse_cell", counting)
    # The same workbook without its quality sheet: what the other sheets cost.
    upload.inspect_upload("w.xlsx", (CORPUS / "missing_sheet.xlsx").read_bytes())
    others, decoded = decoded, 0
    inspected = upload.inspect_upload("wide.xlsx", (CORPUS / "wide_workbook.xlsx").read_bytes())
    assert decoded - others <= 25, decoded - others
    assert "quality" in inspected.unread and "quality" not in inspected.raw
    assert [str(p) for p in inspected.notes] == [
        "quality sheet:1:-: has a value in column Z, beyond the 25 columns a sheet is read to: "
        "reading stopped here; delete everything right of the table"
    ]


def test_cells_are_unescaped_once_by_the_validator() -> None:
    raw = _good_raw()
    line = b"fixture,,numbers_extracted,\r\n"
    assert line in raw["studies"]
    raw["studies"] = raw["studies"].replace(line, line[:-2] + b"''=x\r\n", 1)
    tables, problems = validate_sheets(raw, unescape=True)
    assert problems == []
    assert tables["studies"][0]["notes"] == "'=x"
    tables, _ = validate_sheets(raw)  # the shipped sheets are read as written
    assert tables["studies"][0]["notes"] == "''=x"


def test_problems_are_capped_per_sheet_with_a_count_of_the_rest() -> None:
    log = ProblemLog(limit=3)
    for row in range(2, 12):
        log.add(Problem("a.csv", row, "x", "bad"))
    log.add(Problem("b.csv", 2, "x", "bad"))
    kept = log.problems()
    assert [p.row for p in kept if p.file == "a.csv"] == [2, 3, 4, None]
    assert str(kept[-1]) == (
        "a.csv:-: 7 more problems in this sheet are not listed: fix the 3 listed and check the "
        "file again"
    )
    assert [p.file for p in kept].count("b.csv") == 1


# The checking process -------------------------------------------------------------------------


def test_an_upload_is_checked_in_another_process_at_a_lower_priority() -> None:
    import os

    data = bytes(range(256)) * 40_000  # 10 MB, larger than a pipe's buffer
    child, niceness, echoed = worker.run(worker_targets.pid, (), data)
    assert int(child) != os.getpid()
    assert int(niceness) >= worker.CHILD_NICENESS
    assert echoed == data


def test_a_check_that_takes_too_long_is_killed_at_its_time_limit() -> None:
    limits = worker.Limits(seconds=1.0)
    start = time.perf_counter()
    with pytest.raises(worker.Refused) as refused:
        worker.run(worker_targets.sleep, (30,), limits=limits)
    assert refused.value.reason == "time"
    assert time.perf_counter() - start < 5


def test_a_check_that_needs_too_much_memory_is_stopped_by_its_own_limit() -> None:
    with pytest.raises(worker.Refused) as refused:
        worker.run(worker_targets.allocate, (1024,), limits=worker.Limits(memory_mb=128))
    assert refused.value.reason == "memory"
    assert worker.run(worker_targets.allocate, (64,), limits=worker.Limits(memory_mb=256))


def test_a_check_that_fails_or_answers_too_much_is_refused() -> None:
    with pytest.raises(worker.Refused, match="failed: RuntimeError"):
        worker.run(worker_targets.fail, ())
    with pytest.raises(worker.Refused, match="too large"):
        worker.run(worker_targets.send, (8,), limits=worker.Limits(result_mb=4))


def test_a_further_upload_waits_then_hears_the_server_is_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(worker, "_slots", slots)
    monkeypatch.setattr(worker, "LIMITS", worker.Limits(wait_seconds=0.2))
    data = _zip({f"{k}.csv": v for k, v in _good_raw().items()})
    with slots:  # every slot taken by other checks
        con, problems = from_upload("good.zip", data)
    assert con is None
    assert [str(p) for p in problems] == [
        "good.zip:-: the server is busy checking other uploads: try again in a minute (nothing "
        "was loaded)"
    ]
    con, problems = from_upload("good.zip", data)  # a slot is free again
    assert problems == [] and con is not None


def test_the_upload_database_has_one_thread_and_a_small_memory_limit() -> None:
    data = _zip({f"{k}.csv": v for k, v in _good_raw().items()})
    con, problems = from_upload("good.zip", data)
    assert problems == [] and con is not None
    threads, memory = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone()
    assert threads == 1
    assert memory.endswith("MiB") and float(memory.split()[0]) <= 128


def _scaled_shipped(rows: int) -> dict[str, bytes]:
    """The shipped sheets copied under new ids until the largest sheet nears `rows` rows."""
    shipped = build.read_sheet_dir(build.SHEETS_DIR)
    copies = rows // max(len(body.splitlines()) - 1 for body in shipped.values())
    scaled = {}
    for name, body in shipped.items():
        sheet = SHEETS_BY_NAME[name]
        keyed = {c.name for c in sheet.columns if c.kind in ("id", "ref")} | {"sum_of"}
        records = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(sheet.column_names))
        writer.writeheader()
        for k in range(copies):
            for record in records:
                writer.writerow(
                    {
                        c: ";".join(f"{v}_{k}" for v in value.split(";"))
                        if c in keyed and value
                        else value
                        for c, value in record.items()
                    }
                )
        scaled[name] = out.getvalue().encode("utf-8")
    return scaled


def test_the_largest_valid_upload_loads_and_every_query_runs_within_its_memory_limit() -> None:
    from evidence.filters import Slice

    try:
        raw = _scaled_shipped(MAX_ROWS_PER_SHEET - 100)
        con, problems = from_upload("largest.zip", _zip({f"{k}.csv": v for k, v in raw.items()}))
    except (FileNotFoundError, ValidationError) as err:
        pytest.skip(f"data/extraction does not build at the moment: {err}")
    assert problems == [] and con is not None
    assert con.execute("SELECT count(*) FROM quality").fetchone()[0] > 4_000
    cohorts = [r[0] for r in con.execute("SELECT cohort_id FROM cohorts").fetchall()]
    studies = [r[0] for r in con.execute("SELECT study_id FROM studies").fetchall()]
    params = {
        **Slice().sql_params(),
        "cohort_ids": cohorts,
        "study_ids": studies,
        "mark": SYNTHETIC_MARK,
    }
    for name in db.queries():
        db.run(con, name, **params)  # no OutOfMemoryException


def test_a_check_never_runs_the_servers_main_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamlit puts the app's script in sys.modules["__main__"] while it runs; multiprocessing
    would have each checking process run that script again before its check."""
    import sys
    import types

    script = tmp_path / "app.py"
    script.write_text("raise SystemExit('the app ran in the checking process')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert len(worker.run(worker_targets.pid, ())) == 3


def test_opening_a_workbook_parses_no_sheet_ahead_of_its_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """openpyxl sizes each sheet when it opens a workbook by parsing up to the optional
    `<dimension>` element; a sheet without one was parsed whole before its first row was read
    (here 30,000 rows; a 20 MB sheet took 0.7 s). Now only the rows up to the cap are parsed."""
    import openpyxl.worksheet._reader as sheet_reader
    import openpyxl.xml.functions as xml_functions

    with zipfile.ZipFile(io.BytesIO((CORPUS / "missing_sheet.xlsx").read_bytes())) as src:
        parts = {info.filename: src.read(info) for info in src.infolist()}
    studies = parts["xl/worksheets/sheet1.xml"]
    studies = re.sub(rb"<dimension[^>]*/>", b"", studies)
    extra = b"".join(
        b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (r, r) for r in range(8, 30_008)
    )
    parts["xl/worksheets/sheet1.xml"] = studies.replace(b"</sheetData>", extra + b"</sheetData>")
    parsed = 0
    real = xml_functions.iterparse

    def counting(*args: object, **kwargs: object) -> Iterator[object]:
        nonlocal parsed
        for item in real(*args, **kwargs):
            parsed += 1
            yield item

    monkeypatch.setattr(xml_functions, "iterparse", counting)
    monkeypatch.setattr(sheet_reader, "iterparse", counting)
    inspected = upload.inspect_upload("tall.xlsx", _zip(parts))
    assert "studies" in inspected.unread
    assert str(inspected.notes[0]).startswith("studies sheet:5002:-: has values below row 5001")
    assert parsed < 4 * (MAX_ROWS_PER_SHEET + 1), parsed  # a row, its cell and its value
