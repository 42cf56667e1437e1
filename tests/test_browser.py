"""Real-browser checks: what only Chromium shows (rendered charts, URL round trips, uploads).

Screenshots of each page at 1280x800 go to artifacts/screenshots/ (git-ignored) for review.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence import charts, figures
from evidence.extraction import build
from harness.server import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PAGES = ["", "sof", "treatment", "prophylaxis", "dose", "safety", "studies", "methods"]
TIMEOUT_MS = 45_000


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_chromium()
    (ROOT / "artifacts").mkdir(exist_ok=True)
    database = tmp_path_factory.mktemp("browser") / "anakinra.duckdb"
    build.build_from(build.SHEETS_DIR, database)
    with streamlit_server(env={"ANAKINRA_DB": str(database)}) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require_chromium()
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _page(browser: object, url: str) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_selector("h1", timeout=TIMEOUT_MS)
    _settle(page)
    return page


def _settle(page: object) -> None:
    """Wait until Streamlit has finished the current run (no running indicator)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS
    )
    page.wait_for_timeout(300)


def _first_card_value(page: object) -> str:
    """The Overview's pooled-response card, found by its key once it has rendered."""
    value = page.locator('.st-key-card_icans_response [data-testid="stMetricValue"]')
    _settle(page)
    # While a run replaces the card, the old and new values can both be in the page.
    playwright_api.expect(value).to_have_count(1, timeout=TIMEOUT_MS)
    return value.inner_text()


def test_health_endpoint(server: str) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{server}/_stcore/health", timeout=5) as response:
        assert response.read().decode().strip() == "ok"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p or "overview")
def test_every_page_renders_without_exception(server: str, browser: object, path: str) -> None:
    page = _page(browser, f"{server}/{path}")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not page.errors, page.errors
    if path in ("treatment", "prophylaxis", "dose"):
        page.wait_for_selector('[data-testid="stVegaLiteChart"], .vega-embed', timeout=TIMEOUT_MS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{path or 'overview'}.png"), full_page=False)
    page.context.close()


def test_filter_change_repools_and_the_link_restores_the_view(server: str, browser: object) -> None:
    page = _page(browser, f"{server}/treatment")
    page.wait_for_selector('[data-testid="stMultiSelect"]', timeout=TIMEOUT_MS)
    before_value = page.locator("strong").first.inner_text()
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.wait_for(timeout=TIMEOUT_MS)
    before_chart = chart.screenshot()
    # Exclude one study through the sidebar: the pooled estimate and the forest plot must change.
    exclude = page.locator('[data-testid="stMultiSelect"]').filter(
        has_text="Exclude studies (sensitivity)"
    )
    exclude.locator("input").click()
    page.keyboard.type("Wehrli2022")  # the list shows options once something is typed
    page.get_by_role("option", name="Wehrli2022").click()
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(r"exclude=Wehrli2022"), timeout=TIMEOUT_MS)
    _settle(page)
    after_value = page.locator("strong").first.inner_text()
    assert after_value != before_value
    assert chart.screenshot() != before_chart
    assert "exclude=Wehrli2022" in _copied_link(page)  # redrawn with the page, not stale
    shared = page.url
    page.context.close()
    fresh = _page(browser, shared)
    assert fresh.locator("strong").first.inner_text() == after_value
    excluded = fresh.locator('[data-testid="stMultiSelect"]').filter(has_text="Wehrli2022")
    excluded.wait_for(timeout=TIMEOUT_MS)  # the sidebar shows the link's exclusion
    fresh.context.close()


def _copied_link(page: object) -> str:
    """The link the sidebar's "Copy link to this view" popover offers."""
    page.get_by_role("button", name="Copy link to this view").click()
    code = page.locator('[data-testid="stPopoverBody"] code')
    code.wait_for(timeout=TIMEOUT_MS)
    link = code.inner_text()
    page.keyboard.press("Escape")
    return link


def _study_marker(page: object, label: str) -> object:
    """The square a forest plot draws for the study with this label (clickable)."""
    return page.locator(
        '[data-testid="stVegaLiteChart"] svg '
        f'path[aria-roledescription="point"][aria-label^="{label}"]'
    ).first


def test_a_clicked_study_is_highlighted_and_excluding_it_updates_the_sidebar(
    server: str, browser: object
) -> None:
    page = _page(browser, f"{server}/treatment")
    marker = _study_marker(page, "Wehrli 2022")
    marker.wait_for(timeout=TIMEOUT_MS)
    before_value = page.locator("strong").first.inner_text()
    marker.click()
    exclude = page.get_by_role("button", name="Exclude Wehrli2022 and re-pool")
    exclude.wait_for(timeout=TIMEOUT_MS)
    _settle(page)
    assert marker.get_attribute("fill") == charts.OKABE_ITO["vermillion"]  # highlighted
    assert "study=Wehrli2022" in page.url  # the highlight travels with a copied link
    exclude.click()
    page.wait_for_url(re.compile(r"exclude=Wehrli2022"), timeout=TIMEOUT_MS)
    _settle(page)
    assert page.locator("strong").first.inner_text() != before_value
    sidebar = page.locator('[data-testid="stSidebar"]')
    tag = sidebar.locator('[data-testid="stMultiSelect"]').filter(has_text="Wehrli2022")
    tag.wait_for(timeout=TIMEOUT_MS)  # the sidebar shows an exclusion made on the page
    assert "exclude=Wehrli2022" in _copied_link(page)
    assert not page.errors, page.errors
    page.context.close()


def test_a_forest_plot_downloads_as_a_png_of_the_chart_shown(server: str, browser: object) -> None:
    """The click gives a PNG of the chart at twice the export width, made on the click
    (deferred) without rerunning the page: the highlight and the pooled line stay."""
    page = _page(browser, f"{server}/treatment?exclude=Strati2020")
    marker = _study_marker(page, "Wehrli 2022")
    marker.wait_for(timeout=TIMEOUT_MS)
    marker.click()
    page.get_by_role("button", name="Exclude Wehrli2022 and re-pool").wait_for(timeout=TIMEOUT_MS)
    _settle(page)
    pooled = page.locator("strong").first.inner_text()
    button = page.locator(".st-key-forest_icans_response_png button")
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        button.click()
    assert download.value.suggested_filename == "anakinra-forest_icans_response.png"
    png = Path(download.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")  # the IHDR chunk
    assert width >= figures.PNG_SCALE * figures.EXPORT_WIDTH
    _settle(page)
    assert page.locator("strong").first.inner_text() == pooled
    assert marker.get_attribute("fill") == charts.OKABE_ITO["vermillion"]  # still highlighted
    assert not page.errors, page.errors
    page.context.close()


def test_navigating_by_the_sidebar_keeps_the_slice(server: str, browser: object) -> None:
    """Navigation runs inside the page fragment; a page change must still carry the filters."""
    page = _page(browser, f"{server}/treatment?exclude=Wehrli2022")
    excluded_value = page.locator("strong").first.inner_text()
    page.get_by_role("link", name="Dose").click()
    page.wait_for_url(re.compile(r"/dose\?.*exclude=Wehrli2022"), timeout=TIMEOUT_MS)
    playwright_api.expect(page.locator("h1")).to_have_text("Anakinra dose", timeout=TIMEOUT_MS)
    page.get_by_role("link", name="Treatment").click()
    page.wait_for_url(re.compile(r"/treatment\?.*exclude=Wehrli2022"), timeout=TIMEOUT_MS)
    _settle(page)
    assert page.locator("strong").first.inner_text() == excluded_value
    sidebar = page.locator('[data-testid="stSidebar"]')
    tag = sidebar.locator('[data-testid="stMultiSelect"]').filter(has_text="Wehrli2022")
    tag.wait_for(timeout=TIMEOUT_MS)
    assert not page.errors, page.errors
    page.context.close()


def test_deep_link_to_a_fresh_server_gets_the_shared_sidebar(
    browser: object, tmp_path: Path
) -> None:
    """A shared link is often the first request a restarted replica sees."""
    database = tmp_path / "anakinra.duckdb"
    build.build_from(build.SHEETS_DIR, database)
    with streamlit_server(env={"ANAKINRA_DB": str(database)}) as fresh:
        page = _page(browser, f"{fresh}/dose?grading=ASTCT")
        sidebar = page.locator('[data-testid="stSidebar"]')
        # Wait for the elements themselves: a rerun can be mid-redraw when the page settles.
        grading = sidebar.locator('[data-testid="stMultiSelect"]').filter(
            has_text="ICANS grading system"
        )
        playwright_api.expect(grading).to_contain_text("ASTCT", timeout=TIMEOUT_MS)
        playwright_api.expect(sidebar).to_contain_text("Filters", timeout=TIMEOUT_MS)
        # The app's navigation, not Streamlit's listing of the pages/ folder:
        playwright_api.expect(sidebar).to_contain_text("Methods & data", timeout=TIMEOUT_MS)
        playwright_api.expect(page.locator("h1").first).to_have_text("Anakinra dose")
        page.context.close()


def test_upload_runs_this_session_on_the_panels_data_only(
    server: str, browser: object, tmp_path: Path
) -> None:
    """Upload the template filled with the fixture extraction: this session's pooled number
    becomes the engine's value for the fixture; a second session still sees the shipped data."""
    import duckdb

    from evidence.extraction import export
    from evidence.filters import Slice
    from evidence.format import pct
    from evidence.ui.data import ActiveData, SliceEvidence

    fixture_db = build.build_from(ROOT / "tests" / "fixtures" / "good", tmp_path / "f.duckdb")
    with duckdb.connect(str(fixture_db), read_only=True) as con:
        workbook = tmp_path / "panel_extraction.xlsx"
        workbook.write_bytes(export.export_workbook(con))
        source = ActiveData(con, "upload test", "fixture", is_upload=True)
        expected = SliceEvidence(source, Slice(), "glmm").outcome("icans_response").result
    assert expected is not None
    expected_text = pct(expected.proportion.estimate)

    bystander = _page(browser, f"{server}/")
    shipped_value = _first_card_value(bystander)
    assert shipped_value != expected_text

    page = _page(browser, f"{server}/methods")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(workbook))
    page.get_by_role("button", name="Check and use this extraction").click()
    page.wait_for_selector("text=You are looking at", timeout=TIMEOUT_MS)  # the data banner
    page.get_by_role("link", name="Overview").click()
    page.wait_for_selector('[data-testid="stMetricValue"]', timeout=TIMEOUT_MS)
    _settle(page)
    assert _first_card_value(page) == expected_text
    assert page.get_by_text("panel_extraction.xlsx").count() >= 1
    # The summary of findings grades every outcome the panel's extraction reports as counts.
    page.get_by_role("link", name="Summary of findings").click()
    page.wait_for_selector("text=Summary of findings", timeout=TIMEOUT_MS)
    _settle(page)
    table = page.locator("table").first
    for label in ("Neurological response / improvement", "Grade 5 (fatal) ICANS",
                  "Early mortality", "Any-grade ICANS", "Grade ≥ 3 ICANS"):  # fmt: skip
        line = table.locator("tr").filter(has_text=label).first
        playwright_api.expect(line).to_be_visible(timeout=TIMEOUT_MS)
        assert "not reported as counts" not in line.inner_text(), label
    page.get_by_role("link", name="Overview").click()
    page.wait_for_selector('[data-testid="stMetricValue"]', timeout=TIMEOUT_MS)
    _settle(page)

    bystander.reload()
    bystander.wait_for_selector('[data-testid="stMetricValue"]', timeout=TIMEOUT_MS)
    _settle(bystander)
    assert _first_card_value(bystander) == shipped_value
    page.get_by_role("button", name="Back to shipped data").click()
    _settle(page)
    assert _first_card_value(page) == shipped_value
    page.context.close()
    bystander.context.close()


def test_make_run_serves_the_overview(browser: object) -> None:
    """The README's run command, as a newcomer types it, answers on /_stcore/health."""
    import signal
    import subprocess

    from harness.server import free_port, wait_healthy

    port = free_port()
    log = open(ROOT / "artifacts" / f"make-run-{port}.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # make starts streamlit as a child: stop the whole group
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=120)
        page = _page(browser, f"http://127.0.0.1:{port}/")
        assert page.locator("h1").first.inner_text().startswith("Anakinra for ICANS")
        assert page.locator('[data-testid="stException"]').count() == 0
        page.context.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


def test_a_hostile_link_shows_its_values_as_text(server: str, browser: object) -> None:
    """A shared link with Markdown in its values: the notice shows them, and the page holds no
    link or image that the link put there."""
    from urllib.parse import urlencode

    payload = "[click](https://example.org/login) ![p](https://example.org/p.png) www.example.org"
    page = _page(browser, f"{server}/?{urlencode({'exclude': payload, 'study': payload})}")
    notice = page.locator('[data-testid="stAlert"]').filter(has_text="Ignored")
    playwright_api.expect(notice).to_contain_text("[click]", timeout=TIMEOUT_MS)
    assert notice.locator("a").count() == 0 and notice.locator("img").count() == 0
    assert (
        page.locator('a[href^="https://example.org"], img[src^="https://example.org"]').count() == 0
    )
    page.context.close()


SESSIONS = 5
EXPORTS = ["Extraction in use (XLSX)", "Extraction in use (CSV, zipped)"]


def test_simultaneous_sessions_download_the_exports_without_a_failure(
    server: str, browser: object
) -> None:
    """Five people open Methods & data and download both exports of the shared database at the
    same moment, three times over: every download arrives (each export takes its own cursor of
    the process-wide read-only connection) and the server logs no failed download."""
    log = ROOT / "artifacts" / f"streamlit-{server.rsplit(':', 1)[1]}.log"
    logged_before = log.read_text().count("Error executing deferred callable")
    pages = [_page(browser, f"{server}/methods") for _ in range(SESSIONS)]
    arrived: list[object] = []
    for page in pages:
        page.on("download", lambda download: arrived.append(download))
        for label in EXPORTS:
            page.get_by_role("button", name=label).wait_for(timeout=TIMEOUT_MS)
    rounds = 3
    for _ in range(rounds):
        # Every page clicks both buttons at one agreed moment (one clock: one browser).
        moment = pages[0].evaluate("Date.now()") + 1500
        for page in pages:
            page.evaluate(
                """([labels, moment]) => setTimeout(() => {
                    for (const button of document.querySelectorAll('button')) {
                        if (labels.includes(button.innerText.trim())) button.click();
                    }
                }, moment - Date.now())""",
                [EXPORTS, moment],
            )
        pages[0].wait_for_timeout(2000)
    wanted, waited = rounds * SESSIONS * len(EXPORTS), 0
    while len(arrived) < wanted and waited < TIMEOUT_MS:
        pages[0].wait_for_timeout(250)
        waited += 250
    failed = log.read_text().count("Error executing deferred callable") - logged_before
    assert failed == 0, f"{failed} downloads failed on the server (see {log.name})"
    assert len(arrived) == wanted
    for download in arrived:
        assert download.failure() is None
        assert Path(download.path()).read_bytes()[:2] == b"PK"  # an XLSX or zip
    for page in pages:
        assert not page.errors, page.errors
        page.context.close()


def test_a_server_without_data_shows_the_plain_page_on_every_address(
    browser: object, tmp_path: Path
) -> None:
    """A damaged ANAKINRA_DB file (served as it is, never replaced): every address, a deep link
    first, shows the plain "data unavailable" page, with no error and no navigation."""
    database = build.build_from(build.SHEETS_DIR, tmp_path / "anakinra.duckdb")
    database.write_bytes(database.read_bytes()[:4096])
    with streamlit_server(env={"ANAKINRA_DB": str(database)}) as base:
        for path in ("treatment?grading=ASTCT", "", "methods"):
            page = _page(browser, f"{base}/{path}")
            playwright_api.expect(page.locator("h1").first).to_have_text("Data unavailable")
            assert page.get_by_text("Rebuild the database").count() == 1
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stSidebarNav"]').count() == 0
            assert not page.errors, page.errors
            page.context.close()


def _fixture_workbook(tmp_path: Path) -> Path:
    """The template filled with the fixture extraction, as a panel would upload it."""
    import duckdb

    from evidence.extraction import export

    fixture_db = build.build_from(ROOT / "tests" / "fixtures" / "good", tmp_path / "f.duckdb")
    workbook = tmp_path / "panel_extraction.xlsx"
    with duckdb.connect(str(fixture_db), read_only=True) as con:
        workbook.write_bytes(export.export_workbook(con))
    return workbook


def _upload(page: object, workbook: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(workbook))
    page.get_by_role("button", name="Check and use this extraction").click()
    page.wait_for_selector("text=You are looking at", timeout=TIMEOUT_MS)  # the data banner
    _settle(page)


def test_an_ended_sessions_upload_is_closed(browser: object, tmp_path: Path) -> None:
    """A closed tab's session is kept for its reconnect window (6 s here), then dropped by
    Streamlit without a hook: the next run's sweep closes its upload's database."""
    from harness.server import streamlit_process

    database = build.build_from(build.SHEETS_DIR, tmp_path / "anakinra.duckdb")
    workbook = _fixture_workbook(tmp_path)
    env = {
        "ANAKINRA_DB": str(database),
        "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "6",
        "ANAKINRA_DATASETS": "off",  # a session-only upload: the one a session holds
    }
    with streamlit_process(env=env, log_prefix="session-end") as (base, _, _):
        log = ROOT / "artifacts" / f"session-end-{base.rsplit(':', 1)[1]}.log"
        page = _page(browser, f"{base}/methods")
        _upload(page, workbook)
        page.context.close()
        closed = "closed the uploaded extraction of ended session"
        page_of_another = _page(browser, f"{base}/")
        assert closed not in log.read_text(), "closed inside the reconnect window"
        page_of_another.wait_for_timeout(7000)  # the window passes
        page_of_another.reload()
        _settle(page_of_another)
        for _ in range(40):
            if closed in log.read_text():
                break
            page_of_another.wait_for_timeout(250)
        assert log.read_text().count(closed) == 1
        page_of_another.context.close()


def test_after_a_restart_a_page_showing_a_session_only_upload_says_it_is_gone(
    browser: object, tmp_path: Path
) -> None:
    """With sharing off the upload lived in the server's memory: after a restart the reconnected
    page says the link's upload is not on this server instead of silently showing the shipped
    data."""
    from harness.server import free_port, streamlit_process

    database = build.build_from(build.SHEETS_DIR, tmp_path / "anakinra.duckdb")
    workbook = _fixture_workbook(tmp_path)
    env, port = {"ANAKINRA_DB": str(database), "ANAKINRA_DATASETS": "off"}, free_port()
    not_here = "The uploaded extraction of this link is not on this server"
    with streamlit_process(env=env, port=port, log_prefix="restart-1") as (base, _, _):
        page = _page(browser, f"{base}/methods")
        _upload(page, workbook)
        page.get_by_role("link", name="Treatment").click()
        page.wait_for_url(re.compile(r"/treatment\?.*data=upload"), timeout=TIMEOUT_MS)
        _settle(page)
        assert page.get_by_text(not_here).count() == 0
    with streamlit_process(env=env, port=port, log_prefix="restart-2"):
        notice = page.get_by_text(not_here)
        playwright_api.expect(notice).to_be_visible(timeout=TIMEOUT_MS)
        page.wait_for_url(re.compile(r"/treatment(?!.*data=upload)"), timeout=TIMEOUT_MS)
        assert page.get_by_text("panel_extraction.xlsx").count() == 0
        page.context.close()


def test_after_a_restart_a_page_showing_a_shared_upload_shows_it_again(
    browser: object, tmp_path: Path
) -> None:
    """Shared by link (the default), the upload is in the dataset store: the page that
    reconnects after a restart opens it again from its link, with its banner and its filters."""
    from harness.server import free_port, streamlit_process

    database = build.build_from(build.SHEETS_DIR, tmp_path / "anakinra.duckdb")
    workbook = _fixture_workbook(tmp_path)
    env = {"ANAKINRA_DB": str(database), "ANAKINRA_DATASETS": str(tmp_path / "datasets")}
    port = free_port()
    shared = re.compile(r"/treatment\?.*data=[0-9a-f]{64}")
    with streamlit_process(env=env, port=port, log_prefix="restart-1") as (base, _, _):
        page = _page(browser, f"{base}/methods")
        _upload(page, workbook)
        page.get_by_role("link", name="Treatment").click()
        page.wait_for_url(shared, timeout=TIMEOUT_MS)
        _settle(page)
        before = page.url
    with streamlit_process(env=env, port=port, log_prefix="restart-2"):
        # The reconnected page's run ends with the app's own navigation drawn again.
        overview = page.get_by_role("link", name="Overview")
        playwright_api.expect(overview).to_be_visible(timeout=TIMEOUT_MS)
        _settle(page)
        banner = page.get_by_text("“panel_extraction.xlsx”, shared by link")
        playwright_api.expect(banner).to_be_visible(timeout=TIMEOUT_MS)
        assert page.url == before
        assert page.get_by_text("is not in this server's dataset store").count() == 0
        page.context.close()


def test_the_summary_of_findings_draws_certainty_and_a_judgement_travels_by_link(
    server: str, browser: object
) -> None:
    """The certainty symbols are drawn (SVG with the words for screen readers); a judgement
    recorded in the page is in the copied link, and a fresh browser opening that link sees it."""
    page = _page(browser, f"{server}/sof")
    certainty = page.locator('[role="img"][aria-label^="Certainty of evidence"]').first
    certainty.wait_for(timeout=TIMEOUT_MS)
    assert certainty.locator("svg").count() == 1
    assert re.search(r"\((\d) of 4\)$", certainty.get_attribute("aria-label") or "")
    row = page.locator(".st-key-sof_treatment_icans_response")
    row.get_by_text("GRADE domains").click()
    level = row.get_by_role("combobox", name="Panel: imprecision")
    level.wait_for(timeout=TIMEOUT_MS)
    _settle(page)
    level.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("not ser")  # the list opens on typing, filtered to the one option
    page.get_by_role("option", name="not serious", exact=True).wait_for(timeout=TIMEOUT_MS)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    playwright_api.expect(level).to_have_value("not serious", timeout=TIMEOUT_MS)
    reason = row.get_by_label("Reason (a footnote)").nth(3)
    reason.fill("The panel accepts the interval")
    row.get_by_role("button", name="Record the panel's judgements").click()
    page.wait_for_url(re.compile(r"judge=treatment\.icans_response"), timeout=TIMEOUT_MS)
    _settle(page)
    link = _copied_link(page)
    assert "judge=treatment.icans_response" in link and "graded_on=" in link
    page.context.close()
    fresh = _page(browser, link)
    reason = fresh.get_by_text("The panel accepts the interval").filter(visible=True).first
    playwright_api.expect(reason).to_be_visible(timeout=TIMEOUT_MS)  # the numbered footnote
    assert not fresh.errors, fresh.errors
    fresh.context.close()


def test_reset_works_on_the_first_click_after_a_multiselect_grew(
    server: str, browser: object
) -> None:
    """A multiselect that grows pushes what is below it down; Reset sits above them all."""
    page = _page(browser, f"{server}/treatment?product=axi-cel&grading=ASTCT&method=dl")
    products = page.locator('[data-testid="stMultiSelect"]').filter(has_text="CAR-T product")
    products.locator("input").click()
    page.keyboard.type("tisa")
    page.get_by_role("option", name="tisa-cel").click()  # the box grows
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(r"product=tisa-cel"), timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Reset filters").click()  # at once, while the page reruns
    page.wait_for_url(
        lambda url: "product=" not in url and "method=" not in url, timeout=TIMEOUT_MS
    )
    _settle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.locator('[data-testid="stMultiSelect"]').filter(has_text="axi-cel").count() == 0


def test_the_report_bundle_downloads_on_the_click_and_equals_the_command_lines(
    server: str, browser: object, shipped_con: object
) -> None:
    """Summary of findings → "Download report bundle": the zip of this view (method, judgement)
    arrives without a rerun, and holds what `python -m evidence.report` gives for the query."""
    import json
    import zipfile
    from urllib.parse import parse_qs

    from evidence.filters import read_link
    from evidence.report import bundle

    query = "method=dl&judge=treatment.icans_response~imprecision~very_serious~Too%20few%20patients"
    page = _page(browser, f"{server}/sof?{query}")
    url = page.url
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.get_by_role("button", name="Download report bundle (ZIP)").click()
    assert download.value.suggested_filename == "anakinra_report.zip"
    with zipfile.ZipFile(Path(download.value.path())) as archive:
        app = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(app["results.json"])
    assert document["method"] == "dl"
    row = next(r for r in document["sof"] if r["id"] == "treatment.icans_response")
    assert row["domains"]["imprecision"]["reason"] == "Too few patients"
    rows, view, _ = read_link(parse_qs(query))
    assert bundle.same_bundle(app, bundle.build(shipped_con, rows, view), skip=["bundle.zip"]) == []
    assert page.url == url and not page.errors, page.errors
    page.context.close()
