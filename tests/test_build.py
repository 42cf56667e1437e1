"""The build: good sheets make a queryable database; each malformed sheet gets its own message and
leaves an existing database byte-identical."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from evidence import db
from evidence.extraction import build, export
from evidence.extraction.contract import SHEETS
from evidence.extraction.validate import number_appears, validate_sheets

FIXTURE = Path(__file__).parent / "fixtures" / "good"
ROOT = Path(__file__).resolve().parent.parent


def _replace(sheet: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        path = folder / f"{sheet}.csv"
        text = path.read_text(encoding="utf-8")
        assert old in text, f"fixture no longer contains {old!r}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return mutate


def _write_bytes(sheet: str, data: bytes) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        (folder / f"{sheet}.csv").write_bytes(data)

    return mutate


def _append_row(sheet: str, line: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        with (folder / f"{sheet}.csv").open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    return mutate


# (rule, mutation, expected "file:row:column: message" fragment as a regex)
BAD_INPUTS = [
    (
        "wrong header",
        _replace("studies", "first_author", "author"),
        r"studies\.csv:1:author: unknown column",
    ),
    (
        "missing column",
        _replace("sources", ",citation", ""),
        r"sources\.csv:1:citation: required column is missing",
    ),
    (
        "bad type",
        _replace("cohorts", ",6,", ",six,"),
        r"cohorts\.csv:2:n_\w+: 'six' is not a whole number",
    ),
    (
        "events > total",
        _replace(
            "outcomes", "o2,Beta_icans,icans_response,11,14", "o2,Beta_icans,icans_response,15,14"
        ),
        r"outcomes\.csv:3:events: events 15 exceed total 14",
    ),
    (
        "negative count",
        _replace(
            "outcomes",
            "o3,Gamma_icans,icans_response,15,20",
            "o3,Gamma_icans,icans_response,-15,20",
        ),
        r"outcomes\.csv:4:events: '-15' is not a whole number ≥ 0",
    ),
    (
        "unknown product",
        _replace("cohorts", "axi-cel;tisa-cel", "axi-cel;cilta-cel"),
        r"cohorts\.csv:3:products: cilta-cel not among",
    ),
    (
        "unknown grading system",
        _replace("cohorts", ",CTCAE,", ",Lee2014,"),
        r"cohorts\.csv:3:grading_system: 'Lee2014' is not one of",
    ),
    (
        "unknown outcome code",
        _replace("outcomes", "o5,Beta_icans,grade5_icans", "o5,Beta_icans,g5"),
        r"outcomes\.csv:6:outcome: 'g5' is not one of",
    ),
    (
        "duplicate id",
        _replace("outcomes", "o4,Alpha_icans", "o1,Alpha_icans"),
        r"outcomes\.csv:5:outcome_id: duplicate id 'o1' \(first used on row 2\)",
    ),
    (
        "dangling reference",
        _replace("cohorts", "Beta_icans,Beta2021", "Beta_icans,Beta2099"),
        r"cohorts\.csv:3:study_id: 'Beta2099' does not exist in studies\.csv",
    ),
    ("empty file", _write_bytes("quality", b""), r"quality\.csv:-: the file is empty"),
    (
        "non-UTF-8 bytes",
        _write_bytes("sources", "source_id,citation\nS1,Gr\u00e4fe\n".encode("latin-1")),
        r"sources\.csv:2:-: not UTF-8 text \(byte 0xe4",
    ),
    (
        "missing sheet",
        lambda folder: (folder / "quality.csv").unlink(),
        r"quality\.csv:-: sheet is missing",
    ),
    (
        "ragged row",
        _append_row("quality", "Alpha2020,JBI_case_series"),
        r"quality\.csv:4:-: has 2 cells but the header has 5",
    ),
    (
        "quote without its number",
        _replace("outcomes", "4 of 6 patients", "3 of 6 patients"),
        r"outcomes\.csv:2:quote: the quote does not contain the number 4",
    ),
    (
        "derived without arithmetic",
        _replace("outcomes", "10% of 30 = 3", ""),
        r"outcomes\.csv:11:derivation: a derived number must state its arithmetic",
    ),
    (
        "two rows used for one outcome",
        _replace("outcomes", ",false,o10", ",true,o10"),
        r"outcomes\.csv:12:use_in_analysis: grade3plus_icans of Delta_proph is already used",
    ),
    (
        "fact without its quote",
        _replace("cohorts", "6 patients were treated", ""),
        r"cohorts\.csv:2:n_quote: n_patients is given, so its quote is required",
    ),
    (
        "required value empty",
        _replace("studies", "Fixture study Beta", ""),
        r"studies\.csv:3:title: required value is empty",
    ),
    (
        "bad boolean",
        _replace(
            "studies",
            "true,likely,fixture,,numbers_extracted",
            "yes,likely,fixture,,numbers_extracted",
        ),
        r"studies\.csv:2:in_review_window: 'yes' must be true or false",
    ),
]


@pytest.fixture
def sheets(tmp_path: Path) -> Path:
    folder = tmp_path / "sheets"
    shutil.copytree(FIXTURE, folder)
    return folder


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fixture_builds_a_queryable_database(sheets: Path, tmp_path: Path) -> None:
    target = build.build_from(sheets, tmp_path / "db.duckdb")
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM studies").fetchone() == (6,)
        rows = con.execute(
            "SELECT study_id, outcome, events, total, locator, quote FROM outcomes "
            "WHERE outcome_id = 'o1'"
        ).fetchall()
        assert rows == [("Alpha2020", "icans_response", 4, 6, "results", "4 of 6 patients")]
        checks = dict(con.execute("SELECT figure_id, percent_check FROM review_figures").fetchall())
        assert checks["grade5"] == "agrees" and checks["bad_percent"] == "disagrees"
        info = dict(con.execute("SELECT key, value FROM build_info").fetchall())
        assert info["sheets_sha256"] == build.sheets_checksum(build.read_sheet_dir(sheets))


def test_same_sheets_same_content(sheets: Path, tmp_path: Path) -> None:
    dumps = []
    for name in ("a.duckdb", "b.duckdb"):
        with duckdb.connect(str(build.build_from(sheets, tmp_path / name)), read_only=True) as con:
            dumps.append(
                [con.execute(f"SELECT * FROM {s.name} ORDER BY ALL").fetchall() for s in SHEETS]
            )
    assert dumps[0] == dumps[1]


@pytest.mark.parametrize(("rule", "mutate", "expected"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_each_bad_input_has_its_own_message_and_changes_nothing(
    rule: str,
    mutate: Callable[[Path], None],
    expected: str,
    sheets: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "existing.duckdb"
    build.build_from(FIXTURE, target)
    before = _digest(target), _digest(build.checksum_path(target))
    mutate(sheets)
    status = build.main(["--from", str(sheets), "--out", str(target)])
    err = capsys.readouterr().err
    assert status == 1, rule
    assert re.search(expected, err), f"{rule}: expected /{expected}/ in:\n{err}"
    assert "nothing was written" in err
    assert (_digest(target), _digest(build.checksum_path(target))) == before
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["existing.duckdb", "existing.duckdb.sha256", "sheets"]


def test_all_problems_are_reported_at_once(
    sheets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = BAD_INPUTS[3:10]
    for _, mutate, _ in chosen:
        mutate(sheets)
    assert build.main(["--from", str(sheets), "--check"]) == 1
    *problems, summary = capsys.readouterr().err.splitlines()
    assert summary == f"{len(problems)} problem(s); nothing was written."
    found = {rule: [p for p in problems if re.search(expected, p)] for rule, _, expected in chosen}
    assert all(len(lines) == 1 for lines in found.values()), found
    assert len({lines[0] for lines in found.values()}) == len(chosen), "two rules, one line"


def _info(database: Path) -> dict[str, str]:
    info = build.stored_info(database)
    assert info is not None, f"{database} is missing or unreadable"
    return info


def _study_ids(database: Path) -> set[str]:
    with db.connect_read_only(database) as con:
        return set(db.run(con, "studies_table")["study_id"])


def test_edited_shipped_sheets_are_rebuilt(
    sheets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make data` / `make run` follow the shipped sheets: an edit there rebuilds the file."""
    monkeypatch.setattr(build, "SHEETS_DIR", sheets)
    target = tmp_path / "db.duckdb"
    assert build.ensure_built(target).state == "missing"
    assert _info(target)["origin_kind"] == build.SHIPPED_SHEETS
    assert build.ensure_built(target).state == "current"
    _replace("studies", "Fixture study Alpha", "Fixture study Alpha (corrected)")(sheets)
    assert build.ensure_built(target).state == "changed"
    assert _info(target)["sheets_sha256"] == build.sheets_checksum(build.read_sheet_dir(sheets))
    assert build.ensure_built(target).state == "current"


def test_a_database_built_from_a_panel_file_is_kept_by_make_run(
    tmp_path: Path, fixture_con: duckdb.DuckDBPyConnection, shipped_db: Path
) -> None:
    """`--from panel.xlsx` then `make run`: the host serves the panel's data, not the shipped
    sheets, and says how to go back; the command without `--from` goes back."""
    panel = tmp_path / "panel.xlsx"
    panel.write_bytes(export.export_workbook(fixture_con))
    target = tmp_path / "anakinra.duckdb"
    assert build.main(["--from", str(panel), "--out", str(target)]) == 0
    built = _info(target)
    assert (built["origin"], built["origin_kind"]) == (str(panel.resolve()), build.PANEL_FILE)
    fixture_ids = _study_ids(target)
    assert fixture_ids != _study_ids(shipped_db)

    # What `make run` runs for the data: `make data` (below), then the app's ensure_built.
    make_data = subprocess.run(
        [sys.executable, "-m", "evidence.extraction.build", "--if-stale", "--out", str(target)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    notice = make_data.stderr.strip()
    shown_target, shown_panel = target.resolve(), panel.resolve()
    assert notice.startswith(f"kept {shown_target}: it was built from {shown_panel} (panel file)")
    assert f"`python -m evidence.extraction.build --out {shown_target}`" in notice
    assert "\n" not in notice
    assert build.ensure_built(target).state == "other source"
    assert _info(target) == built
    assert _study_ids(target) == fixture_ids

    assert build.main(["--out", str(target)]) == 0
    back = _info(target)
    assert back["origin_kind"] == build.SHIPPED_SHEETS
    assert back["sheets_sha256"] == _info(shipped_db)["sheets_sha256"]
    assert _study_ids(target) == _study_ids(shipped_db)
    assert build.ensure_built(target).state == "current"


def test_a_database_of_an_earlier_schema_is_rebuilt(sheets: Path, tmp_path: Path) -> None:
    """A file built before the schema changed (an outcomes table without caveat) is rebuilt even
    though its sheets did not change; one built from another source is kept, and says so."""
    target = build.build_from(sheets, tmp_path / "db.duckdb")
    with duckdb.connect(str(target)) as con:
        con.execute("UPDATE build_info SET value = '1' WHERE key = 'schema_version'")
    found = build.freshness(target, sheets)
    assert found.state == "changed" and "schema version 1" in found.message
    assert build.ensure_built(target, sheets).state == "changed"
    assert _info(target)["schema_version"] == build.SCHEMA_VERSION
    assert build.freshness(target, sheets).state == "current"
    with duckdb.connect(str(target)) as con:
        con.execute("UPDATE build_info SET value = '1' WHERE key = 'schema_version'")
    kept = build.freshness(target, ROOT / "data" / "extraction")
    assert kept.state == "other source" and "schema version 1" in kept.message


def test_the_caveat_column_is_stored_and_may_be_left_out(sheets: Path, tmp_path: Path) -> None:
    """outcomes.caveat reaches the provenance rows (`outcome_rows`); an outcomes sheet made before
    the column existed (the fixture has none) still builds, with every caveat empty."""
    old = build.build_from(sheets, tmp_path / "old.duckdb")
    with db.connect_read_only(old) as con:
        rows = db.run(con, "outcome_rows", cohort_ids=["Alpha_icans"])
        assert "caveat" in rows and rows["caveat"].isna().all()
    path = sheets / "outcomes.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    caveat = "Tied to the study by its size only."
    lines = [lines[0] + ",caveat"] + [
        line + (f",{caveat}" if line.startswith("o1,") else ",") for line in lines[1:]
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    new = build.build_from(sheets, tmp_path / "new.duckdb")
    with db.connect_read_only(new) as con:
        rows = db.run(con, "outcome_rows", cohort_ids=["Alpha_icans"])
    assert rows.set_index("outcome_id").loc["o1", "caveat"] == caveat
    _replace("outcomes", ",caveat", ",caveat,caveat")(sheets)
    problems = validate_sheets(build.read_sheet_dir(sheets))[1]
    assert any("column appears more than once" in str(p) for p in problems)


def test_if_stale_from_another_folder_follows_that_folder(sheets: Path, tmp_path: Path) -> None:
    target = tmp_path / "db.duckdb"
    assert build.main(["--from", str(sheets), "--out", str(target), "--if-stale"]) == 0
    assert _info(target)["origin_kind"] == build.OTHER_FOLDER
    assert build.freshness(target, sheets).state == "current"
    _replace("studies", "Fixture study Alpha", "Fixture study Alpha (corrected)")(sheets)
    assert build.freshness(target, sheets).state == "changed"
    assert build.main(["--from", str(sheets), "--out", str(target), "--if-stale"]) == 0
    assert build.freshness(target, sheets).state == "current"


def test_data_dictionary_documents_every_column() -> None:
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for sheet in SHEETS:
        assert f"{sheet.name}.csv" in readme
        for column in sheet.column_names:
            stem = (
                column.rsplit("_", 1)[0]
                if column.startswith(("n_", "product_", "dose_", "grading_"))
                else column
            )
            assert column in readme or stem in readme, f"{sheet.name}.{column} is not documented"


def _schema_types() -> dict[tuple[str, str], str]:
    """{(table, column): SQL type} from schema.sql."""
    types: dict[tuple[str, str], str] = {}
    for table, body in re.findall(
        r"CREATE TABLE (\w+) \((.*?)\n\);", build.SCHEMA.read_text(), re.S
    ):
        for name, kind in re.findall(r"^\s+(\w+) (\w+)", body, re.M):
            types[(table, name)] = kind
    return types


def test_every_number_column_has_a_range_its_database_type_holds() -> None:
    """The validator refuses what the database could not store (2^31 in an INTEGER, 1e308 as a
    dose), with its cell, before the database sees it."""
    limits = {"INTEGER": 2**31 - 1, "BIGINT": 2**63 - 1, "DOUBLE": 1e300}
    types = _schema_types()
    numeric = [(s.name, c) for s in SHEETS for c in s.columns if c.kind in ("int", "number")]
    assert len(numeric) == 21
    for sheet, column in numeric:
        assert column.bounds is not None, f"{sheet}.{column.name} has no range"
        low, high = column.bounds
        assert 0 <= low < high <= limits[types[(sheet, column.name)]], f"{sheet}.{column.name}"


@pytest.mark.parametrize(
    ("quote", "value", "found"),
    [
        ("Four of 6 patients", 4, True),
        ("in 40 patients", 4, False),
        ("severe ICANS in 9.7%", 9.7, True),
        ("Twenty three patients", 23, True),
        ("4.7%", 4, False),
        ("19%", 9, False),
    ],
)
def test_number_appears(quote: str, value: float, found: bool) -> None:
    assert number_appears(quote, value) is found


def test_every_shipped_number_carries_its_source_and_quote(
    shipped_con: duckdb.DuckDBPyConnection,
) -> None:
    """The real extraction: each outcome has a source, locator, status and a quote containing
    its number (or, when derived, the arithmetic and the printed figure)."""
    rows = shipped_con.execute(
        "SELECT o.outcome_id, o.events, o.value, o.status, o.derivation, o.locator, o.quote, "
        "s.citation FROM outcomes o JOIN sources s USING (source_id)"
    ).fetchall()
    assert rows
    for outcome_id, events, value, status, derivation, locator, quote, citation in rows:
        assert citation and locator and quote and status, outcome_id
        if status == "derived":
            assert derivation, outcome_id
        elif events is not None:
            assert number_appears(quote, events), (outcome_id, events, quote)
        if value is not None:
            assert number_appears(quote, value), (outcome_id, value, quote)


# The rows that ../shared/literature/round3/verification.md (section "Caveats the dashboard should
# keep visible (10 rows)") lists as confirmed but carrying a caveat, with what the caveat is about.
VERIFIED_CAVEATS = {
    "Wehrli2022_resp": "attribution by sample size only (ref 30 not readable)",
    "Ref33_resp": "source study unidentified; no count from 73% of 23",
    "Park2023_icans3_Santomasso": "6% vs 9.7% in the primary paper",
    "Park2023_icans3_Jain": "6% vs 9.7%; attribution by description only",
    "Park2023_crs3_Jain": "attribution by description only",
    "Park2023_crs3_n": "2/31 = 6.45% does not round to the printed 6.4%",
    "Liang2025_crs_lisocel_alone": "news report of a talk; a non-trial comparator figure",
    "FHCC_OHSU2025_early_death": "unlocated copy",
    "FHCC_OHSU2025_response": "unlocated copy",
    "LBCL2025_resp": "unlocated copy",
}


def test_every_verified_caveat_is_on_its_row(shipped_con: duckdb.DuckDBPyConnection) -> None:
    """Each row the round-3 verification found to carry a caveat says it, in words, on the row
    (the provenance panel shows it beside the number)."""
    caveats = dict(shipped_con.execute("SELECT outcome_id, caveat FROM outcomes").fetchall())
    for outcome_id, about in VERIFIED_CAVEATS.items():
        assert outcome_id in caveats, f"{outcome_id} is no longer in outcomes.csv"
        text = (caveats[outcome_id] or "").strip()
        assert len(text.split()) >= 8, f"{outcome_id} needs its caveat ({about})"


# Cohort facts added from ../shared/literature/round3/new_studies.md (sections 1, 3 and 4), each
# read in a source with its place and words. Park 2023's dose and grading have columns of their
# own (`<fact>_source_id`, `_locator`, `_quote`); the others have no column and are written in the
# cohort's notes as "<source_id>, <locator>: ... '<quote>'".
MSKCC_ABSTRACT = "MSKCC_NCT04148430_abstract"
NEW_COHORT_FACTS = [
    (
        "Park2023_cohort1",
        "dose",
        MSKCC_ABSTRACT,
        "abstract, Methods",
        "Pts received anakinra 100mg subcutaneous every 12 hours ... the dose could be increased "
        "to 100mg every 6 hours",
        {"dose_mg_day_min": 200, "dose_mg_day_max": 400, "dose_band": "mixed", "route": "SC"},
    ),
    (
        "Park2023_cohort1",
        "grading",
        MSKCC_ABSTRACT,
        "abstract, Methods",
        "CRS and ICANS were assessed per the ASTCT consensus grading.",
        {"grading_system": "ASTCT"},
    ),
]
NEW_COHORT_NOTES = [
    (
        "FHCC_OHSU2025_all",
        "FHCC_OHSU2025_abstract",
        "abstract, Results",
        "large B-cell lymphoma (LBCL; n = 53, 43%), mantle cell lymphoma (n = 25, 20%), and "
        "multiple myeloma (n = 21, 17%)",
        (53, 25, 21),
    ),
    (
        "FHCC_OHSU2025_all",
        "FHCC_OHSU2025_abstract",
        "abstract, Results",
        "Anakinra was initiated for persistent and/or severe ICANS in most patients (n = 106, 85%; "
        "grade ≥3: n = 82, 76%).",
        (106, 82),
    ),
    (
        "FHCC_OHSU2025_all",
        "FHCC_OHSU2025_abstract",
        "abstract, Results",
        "Nearly all (n = 123; 99%) patients received concurrent dexameth",
        (123,),
    ),
    (
        "LBCL2025_all",
        "LBCL2025_abstract",
        "abstract, Results",
        "The median age was 64.5 years (range 19-78) and 54.8% (n=23) were male.",
        (64.5, 23),
    ),
    (
        "LBCL2025_all",
        "LBCL2025_abstract",
        "abstract, Results",
        "Most (66.7%, n=28) had stage IV disease",
        (66.7, 28),
    ),
]


def test_new_cohort_facts_carry_their_source_locator_and_quote(
    shipped_con: duckdb.DuckDBPyConnection,
) -> None:
    cohorts = shipped_con.execute("SELECT * FROM cohorts").df().set_index("cohort_id")
    sources = shipped_con.execute("SELECT * FROM sources").df().set_index("source_id")
    for cohort_id, fact, source_id, locator, quote, values in NEW_COHORT_FACTS:
        row = cohorts.loc[cohort_id]
        assert row[f"{fact}_source_id"] == source_id, (cohort_id, fact)
        assert row[f"{fact}_locator"] == locator, (cohort_id, fact)
        assert row[f"{fact}_quote"] == quote, (cohort_id, fact)
        assert len(quote.split()) <= 30, (cohort_id, fact)
        for column, value in values.items():
            assert row[column] == value, (cohort_id, column)
    for cohort_id, source_id, locator, quote, numbers in NEW_COHORT_NOTES:
        notes = cohorts.loc[cohort_id, "notes"]
        assert f"{source_id}, {locator}" in notes and f"'{quote}'" in notes, (cohort_id, quote)
        assert source_id in sources.index and len(quote.split()) <= 30, (cohort_id, quote)
        assert all(number_appears(quote, n) for n in numbers), (cohort_id, quote)
    # The conference abstract was read without an address, and its notes say so; the cohort's
    # notes say the 2023 paper's own schedule was not read and show the mg/day arithmetic.
    abstract = sources.loc[MSKCC_ABSTRACT]
    assert abstract["kind"] == "primary_abstract" and pd.isna(abstract["url"])
    assert abstract["notes"].startswith("No URL was recorded")
    park = cohorts.loc["Park2023_cohort1", "notes"]
    assert "2023 paper, whose own schedule was not read" in park
    assert "200 mg/day (x2)" in park and "400 mg/day (x4)" in park


def test_strati_carhlh_response_is_read_in_the_review_table(
    shipped_con: duckdb.DuckDBPyConnection,
) -> None:
    """new_rows.csv's carHLH row: 0 of 2 from 'no response', so derived, with its arithmetic."""
    row = shipped_con.execute(
        "SELECT cohort_id, outcome, events, total, source_id, status, derivation, use_in_analysis "
        "FROM outcomes WHERE outcome_id = 'Strati2020_carhlh_resp_T2'"
    ).fetchone()
    assert row is not None
    cohort, outcome, events, total, source, status, derivation, used = row
    assert (cohort, outcome, events, total) == ("Strati2020_carhlh", "carhlh_response", 0, 2)
    assert (source, status, used) == ("BloodAdv2022_PedLetter_T2", "derived", True)
    assert "0/2" in derivation
