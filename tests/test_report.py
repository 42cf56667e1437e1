"""The report bundle (evidence/report): the command line on the shipped data and on fixtures,
reproduce.R run by R (exit 0, and a named failure when a shown number is altered), the
references parsed by rispy and bibtexparser, the workbook and CSVs free of formulas, results.json
against its schema, the app's bundle equal to the command line's, report.html offline in Chromium.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import bibtexparser
import duckdb
import jsonschema
import openpyxl
import pandas as pd
import pytest
import rispy

from evidence import analysis, db
from evidence.extraction import build
from evidence.extraction.template import sheets_zip
from evidence.filters import Slice, View
from evidence.report import bundle, results
from evidence.report.__main__ import main
from evidence.report.rscript import r_string
from harness.server import CHROMIUM, CHROMIUM_ARGS, ROOT

FIXTURE_SHEETS = Path(__file__).parent / "fixtures" / "good"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_TITLE = '=HYPERLINK("http://x") <script>alert(1)</script> & 50% of_ü {brace'
HOSTILE_LABEL = 'Zeta "low" \\ dose =1+1'
# Every kind of number on one fixture: pools with k = 1 and k ≥ 3, the test for subgroup
# differences (grading split: 2 groups), the dose regression, the within-study dose comparison,
# the comparator risk ratio, and the panel's judgement on one row (a footnote).
RICH_QUERY = "split=grading_system"
JUDGED = "judge=treatment.icans_response~imprecision~very_serious~Too few patients for a decision"


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def rich_sheets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The good fixture plus a study with two dose levels (a within-study comparison), whose
    title and cohort label are hostile text."""
    folder = tmp_path_factory.mktemp("rich") / "sheets"
    shutil.copytree(FIXTURE_SHEETS, folder)
    columns, studies = _rows(folder / "studies.csv")
    zeta = {
        **studies[2],
        "study_id": "Zeta2022",
        "first_author": "Zeta Z",
        "year": "2022",
        "title": HOSTILE_TITLE,
        "venue": "Blood Adv 2022;6(3):100-110",
        "publication_type": "full_paper",
        "pmid": "12345678",
        "doi": "10.1000/zeta_1",
        "same_patients_as": "",
        "in_review_window": "true",
    }
    _write(folder / "studies.csv", columns, [*studies, zeta])
    columns, cohorts = _rows(folder / "cohorts.csv")
    base = cohorts[2]  # Gamma: steroid-refractory ICANS, ASTCT
    low = {**base, "cohort_id": "Zeta_low", "study_id": "Zeta2022", "label": HOSTILE_LABEL,
           "n_patients": "10", "dose_mg_day_min": "100", "dose_mg_day_max": "100",
           "dose_band": "le200", "n_brexucel": "10"}  # fmt: skip
    high = {**low, "cohort_id": "Zeta_high", "label": "Zeta high dose", "dose_mg_day_min": "400",
            "dose_mg_day_max": "400", "dose_band": "gt200"}  # fmt: skip
    for cohort in (low, high):
        cohort["n_quote"] = "10 patients were treated"
    _write(folder / "cohorts.csv", columns, [*cohorts, low, high])
    columns, outcomes = _rows(folder / "outcomes.csv")
    added = [
        {**outcomes[2], "outcome_id": "z1", "cohort_id": "Zeta_low", "events": "3", "total": "10",
         "quote": "3 of 10 patients"},
        {**outcomes[2], "outcome_id": "z2", "cohort_id": "Zeta_high", "events": "8",
         "total": "10", "quote": "=8 of 10 patients"},
    ]  # fmt: skip
    _write(folder / "outcomes.csv", columns, [*outcomes, *added])
    build.validated_tables(build.read_sheet_dir(folder))  # a valid extraction
    return folder


@pytest.fixture(scope="module")
def rich_zip(rich_sheets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rich sheets as a panel would upload them (a zip of CSVs)."""
    texts = {p.stem: p.read_text(encoding="utf-8") for p in sorted(rich_sheets.glob("*.csv"))}
    path = tmp_path_factory.mktemp("upload") / "panel_extraction.zip"
    path.write_bytes(sheets_zip(texts))
    return path


def _cli(tmp: Path, query: str, data: Path | None = None, name: str = "out") -> dict[str, bytes]:
    out = tmp / name
    argv = ["--query", query, "--out", str(out)]
    if data is not None:
        argv += ["--data", str(data)]
    assert main(argv) == 0
    return {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.fixture(scope="module")
def shipped_files(shipped_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    os.environ["ANAKINRA_DB"] = str(shipped_db)
    try:
        return _cli(tmp_path_factory.mktemp("shipped_report"), "")
    finally:
        del os.environ["ANAKINRA_DB"]


@pytest.fixture(scope="module")
def rich_files(rich_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _cli(tmp_path_factory.mktemp("rich_report"), f"{RICH_QUERY}&{JUDGED}", rich_zip)


# ---- the files -----------------------------------------------------------------------------------
def test_the_command_writes_every_file_and_the_zip_holds_them(shipped_files: dict) -> None:
    expected = {*bundle.FILES, "bundle.zip"} | {
        f"{n}.csv" for n in ("studies", "outcomes", "pooled", "tests", "sof", "footnotes")
    }
    assert set(shipped_files) == expected
    with zipfile.ZipFile(io.BytesIO(shipped_files["bundle.zip"])) as archive:
        names = archive.namelist()
        assert names == sorted(expected - {"bundle.zip"})
        assert all(archive.read(n) == shipped_files[n] for n in names)
        assert {i.date_time for i in archive.infolist()} == {bundle.ZIP_DATE}


def test_results_follow_their_schema_and_hold_the_engines_numbers(
    shipped_files: dict, shipped_con: duckdb.DuckDBPyConnection
) -> None:
    document = json.loads(shipped_files["results.json"])
    jsonschema.validate(document, json.loads(results.SCHEMA_FILE.read_text()))
    assert document["schema"] == 1 and document["query"] == ""
    info = dict(db.run(shipped_con, "build_info").itertuples(index=False))
    assert document["data_version"] == info["sheets_sha256"]
    first = next(p for p in document["pooled"] if p["id"] == "treatment.icans_response")
    rows = Slice().within("treatment")
    counts = analysis.counts_by_outcome(
        analysis.in_slice(
            analysis.every_poolable_row(shipped_con), analysis.cohort_slice(shipped_con, rows)
        )
    )
    engine = analysis.pool("icans_response", counts["icans_response"], "glmm").result
    assert first["estimate"] == engine.proportion.estimate  # the 0-1 scale, as computed
    assert (first["k"], first["events"], first["patients"]) == (3, 44, 62)
    assert f"{100 * first['estimate']:.1f}" == "71.0"  # the README's first line
    levels = {"not serious", "serious", "very serious", "not assessable"}
    for row in document["sof"]:
        assert row["certainty"] in {"high", "moderate", "low", "very low", "not yet graded"}
        assert {d["suggested"] for d in row["domains"].values()} <= levels


def test_the_panels_judgement_and_the_query_travel_into_the_bundle(rich_files: dict) -> None:
    document = json.loads(rich_files["results.json"])
    assert document["query"] == bundle.query_string(*_slice_view(f"{RICH_QUERY}&{JUDGED}"))
    row = next(r for r in document["sof"] if r["id"] == "treatment.icans_response")
    decided = row["domains"]["imprecision"]
    assert decided["decided"] == "very serious"
    assert decided["reason"] == "Too few patients for a decision"
    assert row["footnotes"] == [1]
    kinds = {(p["page"], p["measure"]) for p in document["pooled"]}
    assert ("Dose", "risk_ratio") in kinds and ("Prophylaxis", "risk_ratio") in kinds
    assert document["subgroup_tests"][0]["test_common_tau2"]["statistic"] is not None
    assert document["dose_regressions"][0]["k"] >= 3


def _slice_view(query: str) -> tuple[Slice, View]:
    from urllib.parse import parse_qs

    from evidence.filters import read_link

    rows, view, _ = read_link(parse_qs(query))
    return rows, view


def test_judgements_made_on_other_data_are_not_applied(
    shipped_con: duckdb.DuckDBPyConnection,
) -> None:
    rows, view = _slice_view(f"{JUDGED}&graded_on=0123456789ab")
    files = bundle.build(shipped_con, rows, view, generated="t")
    document = json.loads(files["results.json"])
    assert "not applied" in document["notices"][0]
    row = next(r for r in document["sof"] if r["id"] == "treatment.icans_response")
    assert row["domains"]["imprecision"]["decided"] is None
    assert b"not applied in this report" in files["report.html"]


def test_link_notices_go_to_stderr(tmp_path: Path, rich_sheets: Path, capsys) -> None:
    _cli(tmp_path, "method=bogus&colour=red&data=upload", rich_sheets)
    err = capsys.readouterr().err
    assert "Ignored method='bogus'" in err and "Ignored unknown link parameter 'colour'" in err
    assert "data" not in err.replace("data version", "")


def test_a_bad_data_file_is_refused_with_its_problems(tmp_path: Path, capsys) -> None:
    bad = ROOT / "tests" / "fixtures" / "bad_uploads" / "duplicate_id.zip"
    assert main(["--data", str(bad), "--out", str(tmp_path / "x")]) == 1
    assert "problem" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_same_query_and_data_give_the_same_bundle_but_for_the_time(
    shipped_con: duckdb.DuckDBPyConnection,
) -> None:
    rows, view = _slice_view(RICH_QUERY)
    first = bundle.build(shipped_con, rows, view, generated="2000-01-01 00:00:00 UTC")
    second = bundle.build(shipped_con, rows, view)
    assert bundle.same_bundle(first, second, skip=["bundle.zip"]) == []
    assert first["report.html"] != second["report.html"]  # the time differs, and only it


# ---- references ----------------------------------------------------------------------------------
def _studies_in_slice(files: dict) -> list[str]:
    return [
        row["study_id"]
        for row in csv.DictReader(io.StringIO(files["studies.csv"].decode("utf-8-sig")))
    ]


@pytest.mark.parametrize("which", ["shipped_files", "rich_files"])
def test_ris_and_bibtex_parse_with_one_record_per_study(which: str, request) -> None:
    files = request.getfixturevalue(which)
    studies = _studies_in_slice(files)
    assert studies
    records = rispy.loads(files["references.ris"].decode("utf-8"))
    assert len(records) == len(studies)
    assert files["references.ris"].startswith(b"TY  - ")
    notes = [r["notes"][0] for r in records]
    assert [re.search(r"study_id=(\S+);", n).group(1) for n in notes] == studies
    library = bibtexparser.parse_string(files["references.bib"].decode("utf-8"))
    assert not library.failed_blocks
    assert [e.key for e in library.entries] == studies
    by_key = {e.key: e for e in library.entries}
    for record in records:
        key = re.search(r"study_id=(\S+);", record["notes"][0]).group(1)
        assert record.get("doi") == (by_key[key].fields_dict.get("doi").value
                                     if "doi" in by_key[key].fields_dict else None)  # fmt: skip


def test_references_carry_venue_details_and_encode_hostile_text(rich_files: dict) -> None:
    records = rispy.loads(rich_files["references.ris"].decode("utf-8"))
    zeta = next(r for r in records if "Zeta2022" in r["notes"][0])
    assert zeta["title"] == HOSTILE_TITLE
    assert (zeta["journal_name"], zeta["volume"], zeta["number"]) == ("Blood Adv", "6", "3")
    assert (zeta["start_page"], zeta["end_page"]) == ("100", "110")
    assert zeta["accession_number"] == "PMID:12345678" and zeta["doi"] == "10.1000/zeta_1"
    assert zeta["authors"][0] == "Zeta, Z"
    library = bibtexparser.parse_string(rich_files["references.bib"].decode("utf-8"))
    entry = next(e for e in library.entries if e.key == "Zeta2022")
    fields = entry.fields_dict
    assert fields["doi"].value == "10.1000/zeta_1"  # an address is never LaTeX-encoded
    assert fields["pages"].value == "100--110" and fields["pmid"].value == "12345678"
    title = fields["title"].value
    assert r"\&" in title and r"\%" in title and r"\_" in title and "ü" not in title


# ---- tables --------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["shipped_files", "rich_files"])
def test_the_workbook_holds_no_formula_and_no_cell_that_could_run(which: str, request) -> None:
    files = request.getfixturevalue(which)
    book = openpyxl.load_workbook(io.BytesIO(files["tables.xlsx"]))
    assert book.sheetnames == [
        "README",
        "studies",
        "outcomes",
        "pooled",
        "tests",
        "sof",
        "footnotes",
    ]
    texts = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula"
                if isinstance(cell.value, str):
                    texts.append(cell.value)
                    assert not cell.value.startswith(TRIGGERS), (sheet.title, cell.coordinate)
    pooled = book["pooled"]
    header = [c.value for c in pooled[1]]
    estimate = header.index("estimate")
    assert all(isinstance(r[estimate].value, int | float) for r in pooled.iter_rows(min_row=2))
    if which == "rich_files":
        assert "'" + HOSTILE_TITLE in texts and "'=8 of 10 patients" in texts


def test_the_csvs_neutralise_formula_text(rich_files: dict) -> None:
    for name in ("studies.csv", "outcomes.csv", "pooled.csv", "sof.csv", "tests.csv"):
        text = rich_files[name].decode("utf-8-sig")
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)
                assert not (cell.startswith("-") and not re.fullmatch(r"-[\d.e-]+", cell))
    studies = csv.DictReader(io.StringIO(rich_files["studies.csv"].decode("utf-8-sig")))
    assert "'" + HOSTILE_TITLE in [row["title"] for row in studies]


# ---- the app's bundle ----------------------------------------------------------------------------
def _unzipped(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_apps_bundle_equals_the_command_lines_on_the_shipped_data(
    shipped_con: duckdb.DuckDBPyConnection, shipped_files: dict
) -> None:
    from evidence.ui import data

    info = dict(db.run(shipped_con, "build_info").itertuples(index=False))
    source = data.ActiveData(shipped_con, f"shipped:{info['sheets_sha256']}", "shipped", False)
    app = _unzipped(data.report_bundle(source, Slice(), View()))
    assert bundle.same_bundle(app, shipped_files, skip=["bundle.zip"]) == []
    assert set(app) == set(shipped_files) - {"bundle.zip"}


def test_the_apps_bundle_of_an_upload_equals_the_command_lines(
    rich_zip: Path, rich_files: dict
) -> None:
    """A session that uploaded a panel's file, with the panel's judgement in its view: the
    button's bundle equals `--data` on the same file and query."""
    from evidence.ui import data

    con, problems = build.from_upload(rich_zip.name, rich_zip.read_bytes())
    assert con is not None and not problems
    info = dict(db.run(con, "build_info").itertuples(index=False))
    source = data.ActiveData(con, f"upload:{info['sheets_sha256']}", "upload", True, False)
    rows, view = _slice_view(f"{RICH_QUERY}&{JUDGED}")
    app = _unzipped(data.report_bundle(source, rows, view))
    assert bundle.same_bundle(app, rich_files, skip=["bundle.zip"]) == []
    assert "panel_extraction.zip" in app["report.html"].decode()


# ---- reproduce.R ---------------------------------------------------------------------------------
def _rscript() -> str:
    found = shutil.which("Rscript")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Rscript not found but CI is set: reproduce.R cannot be checked")
        pytest.skip("Rscript not installed (outside CI)")
    return found


def _run_r(script: bytes, tmp: Path) -> subprocess.CompletedProcess:
    path = tmp / "reproduce.R"
    path.write_bytes(script)
    proc = subprocess.run(
        [_rscript(), str(path)], capture_output=True, text=True, timeout=300, check=False,
        cwd=tmp,
    )  # fmt: skip
    if proc.returncode != 0 and "there is no package called" in proc.stderr:
        if os.environ.get("CI"):
            pytest.fail(f"R package missing but CI is set: {proc.stderr[-500:]}")
        pytest.skip("metafor/lme4 not installed in R (outside CI)")
    return proc


@pytest.mark.r_reference
@pytest.mark.parametrize("which", ["shipped_files", "rich_files"])
def test_r_reproduces_every_number_shown(which: str, request, tmp_path: Path) -> None:
    files = request.getfixturevalue(which)
    proc = _run_r(files["reproduce.R"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    checked = int(re.search(r"All (\d+) numbers agree", proc.stdout).group(1))
    assert checked == len(re.findall(r"^  check\(", files["reproduce.R"].decode(), re.M))
    assert "DIFF" not in proc.stdout


@pytest.mark.r_reference
@pytest.mark.parametrize(
    "query",
    [
        "method=reml_hksj&split=grading_system",
        "method=dl&split=dose_band",
        "method=freeman_tukey&split=grading_system",
        "indication=prophylaxis&method=dl",
    ],
)
def test_r_reproduces_every_method(query: str, rich_sheets: Path, tmp_path: Path) -> None:
    files = _cli(tmp_path, query, rich_sheets)
    text = files["reproduce.R"].decode()
    if "indication=prophylaxis" not in query:
        assert "mm <- rma(" in text and "rma.mh(" in text and "I(dose / 100)" in text
    proc = _run_r(files["reproduce.R"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.r_reference
def test_r_names_the_number_that_differs(rich_files: dict, tmp_path: Path) -> None:
    """One shown number altered in the script's inputs: R stops and names it (only it)."""
    text = rich_files["reproduce.R"].decode()
    line = next(line for line in text.splitlines() if "against dose: slope per 100 mg/day" in line)
    shown = re.search(r", ([-\d.]+), 3\)$", line).group(1)
    altered = line.replace(f", {shown}, 3)", f", {float(shown) + 0.01:.3f}, 3)")
    proc = _run_r(text.replace(line, altered).encode(), tmp_path)
    assert proc.returncode != 0
    assert "1 of" in proc.stderr and "numbers differ" in proc.stderr
    assert "Dose · Neurological response / improvement against dose: slope per 100" in proc.stderr
    assert "the app showed" in proc.stderr


@pytest.mark.r_reference
def test_r_fails_when_the_data_is_altered(rich_files: dict, tmp_path: Path) -> None:
    text = rich_files["reproduce.R"].decode()
    altered = text.replace("xi = c(6), ni = c(30)", "xi = c(7), ni = c(30)", 1)
    assert altered != text
    proc = _run_r(altered.encode(), tmp_path)
    assert proc.returncode != 0 and "Any-grade ICANS" in proc.stderr


def test_r_strings_hold_any_text() -> None:
    assert r_string('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'
    assert r_string("≥ é") == '"\\u{2265} \\u{00e9}"'
    assert "\n" not in r_string("x\n# system('rm')\n")


# ---- report.html -------------------------------------------------------------------------------
def test_the_report_page_has_a_csp_no_script_and_escapes_the_data(rich_files: dict) -> None:
    page = rich_files["report.html"].decode()
    assert "default-src 'none'" in html.unescape(page) and "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and "url(http" not in page
    assert "Checking the numbers with R" in page and "Rscript reproduce.R" in page
    assert page.count("<figure") == page.count("<svg") >= 5


@pytest.mark.browser
def test_the_report_renders_every_chart_offline_in_chromium(
    rich_files: dict, tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing")
    page_file = tmp_path / "report.html"
    page_file.write_bytes(rich_files["report.html"])
    requested: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True)
        context.on("request", lambda request: requested.append(request.url))
        context.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url == page_file.as_uri() else route.abort()
            ),
        )
        page = context.new_page()
        page.goto(page_file.as_uri())
        figures = page.locator("figure")
        assert figures.count() >= 5
        for index in range(figures.count()):
            figure = figures.nth(index)
            assert figure.get_attribute("aria-label")
            box = figure.locator("svg").bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 80
            assert figure.locator("svg path, svg line, svg rect").count() > 3
        assert page.locator("script").count() == 0
        assert HOSTILE_TITLE in page.locator("body").inner_text()
        (ROOT / "artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "artifacts" / "report.png"), full_page=False)
        browser.close()
    assert requested == [page_file.as_uri()]


# ---- docs ----------------------------------------------------------------------------------------
def test_the_readme_shows_the_command_and_the_methods_page_says_how_to_use_reproduce_r() -> None:
    assert "python -m evidence.report --query" in (ROOT / "README.md").read_text()
    methods = (ROOT / "docs" / "methods.md").read_text()
    assert "reproduce.R" in methods and "Rscript reproduce.R" in methods


def test_the_outcomes_csv_carries_each_numbers_caveat(shipped_files: dict) -> None:
    """A reader of the bundle alone sees the verification's caveats beside their numbers."""
    outcomes = pd.read_csv(io.BytesIO(shipped_files["outcomes.csv"]))
    caveats = outcomes.set_index("outcome_id")["caveat"].dropna()
    assert "Park2023_icans3_Jain" in caveats.index
    assert len(caveats) >= 8
