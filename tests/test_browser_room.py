"""Readable in the room and by a clinician alone, in Chromium: meeting mode at 1920x1080 (type
sizes, contrast, the header, PageDown/PageUp between outcomes, the link's `mode`), a 390 px phone
(forest plots and the dose axis stay readable), and accessibility on every page (axe-core, the
charts' text alternatives, the Studies page from the keyboard).

Screenshots of every page at 390 px and in meeting mode at 1920x1080 go to the git-ignored
artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence import charts
from evidence.extraction import build
from evidence.ui import meeting
from harness.server import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PAGES = ["", "sof", "treatment", "prophylaxis", "dose", "safety", "studies", "methods"]
TIMEOUT_MS = 45_000
PROJECTOR = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 800}
BODY_MIN_PX, CHART_MIN_PX, CONTRAST_MIN = 28, 22, 7.0
CHART_PAGES = ("treatment", "prophylaxis", "dose", "safety")


def _require(path: Path, how: str) -> None:
    if not path.exists():
        message = f"{path} is missing: {how}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require(Path(CHROMIUM), "install Debian's chromium (make system-deps)")
    database = tmp_path_factory.mktemp("room") / "anakinra.duckdb"
    build.build_from(build.SHEETS_DIR, database)
    with streamlit_server(env={"ANAKINRA_DB": str(database)}) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require(Path(CHROMIUM), "install Debian's chromium (make system-deps)")
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _open(browser: object, url: str, viewport: dict[str, int] = PROJECTOR) -> object:
    page = browser.new_context(viewport=viewport).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_selector("h1", timeout=TIMEOUT_MS)
    if "mode=meeting" in url:  # its CSS applied
        page.wait_for_function(
            f"() => getComputedStyle(document.documentElement).fontSize === '{BODY_MIN_PX}px'",
            timeout=TIMEOUT_MS,
        )
    _settle(page)
    return page


def _settle(page: object) -> None:
    """Wait until Streamlit has finished its run and the charts have drawn."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS
    )
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"]'))
                 .every((chart) => chart.querySelector('svg text'))""",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(500)


def _screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def _name(path: str) -> str:
    return path or "overview"


# ---- meeting mode at 1920x1080 --------------------------------------------------------------
# Every visible text of the page's main area outside the charts: its computed font size and
# its contrast against the background it is drawn on (WCAG 2's formula, with the element's
# colour, alpha and opacities composited over the backgrounds under it); and the size of every
# text the charts draw (SVG text).
MEASURE = """
() => {
  const parse = (colour) => {
    const m = colour.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const channel = (v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3]));
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour && colour[3] > 0) {
        layers.push(colour);
        if (colour[3] >= 1) break;
      }
    }
    let shown = [255, 255, 255];
    for (const layer of layers.reverse()) shown = over(layer, shown);
    return shown;
  };
  const opacity = (element) => {
    let value = 1;
    for (let node = element; node; node = node.parentElement) {
      value *= Number(getComputedStyle(node).opacity);
    }
    return value;
  };
  const main = document.querySelector('[data-testid="stMain"]');
  const texts = [];
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const element = node.parentElement;
    if (!text || element.closest('svg, [data-testid="stVegaLiteChart"]')) continue;
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    if (box.width < 2 || box.height < 2 || style.visibility === "hidden") continue;
    const fg = parse(style.color);
    const bg = background(element);
    const drawn = over([fg[0], fg[1], fg[2], fg[3] * opacity(element)], bg);
    const [light, dark] = [luminance(drawn), luminance(bg)].sort((a, b) => b - a);
    texts.push({
      text: text.slice(0, 60), px: parseFloat(style.fontSize),
      contrast: (light + 0.05) / (dark + 0.05),
    });
  }
  const chartTexts = Array.from(main.querySelectorAll('[data-testid="stVegaLiteChart"] svg text'))
    .filter((t) => t.textContent.trim() && t.getBoundingClientRect().width > 0)
    .map((t) => ({
      text: t.textContent.trim().slice(0, 40), px: parseFloat(getComputedStyle(t).fontSize),
    }));
  return { texts, charts: chartTexts };
}
"""

FIGURES = ROOT / "artifacts" / "meeting_measures.json"


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_meeting_mode_is_readable_from_the_back_of_the_room(
    server: str, browser: object, path: str
) -> None:
    """At 1920x1080: body text 28 px or more, chart text 22 px or more, every text at 7:1
    contrast or more; no sidebar; the slice in words in the header."""
    page = _open(browser, f"{server}/{path}?mode=meeting")
    assert not page.errors, page.errors
    header = page.locator(f".st-key-{meeting.HEADER_KEY}")
    playwright_api.expect(header).to_contain_text("Slice: All anakinra cohorts: ")
    assert not page.locator('[data-testid="stSidebar"]').is_visible()
    if path in CHART_PAGES:
        page.wait_for_selector('[data-testid="stVegaLiteChart"] svg text', timeout=TIMEOUT_MS)
        _settle(page)
    measured = page.evaluate(MEASURE)
    texts, chart_texts = measured["texts"], measured["charts"]
    assert texts
    small = [t for t in texts if t["px"] < BODY_MIN_PX]
    assert not small, small[:5]
    faint = [t for t in texts if t["contrast"] < CONTRAST_MIN]
    assert not faint, faint[:5]
    if path in CHART_PAGES:
        assert chart_texts, "no chart drawn"
    small_in_charts = [t for t in chart_texts if t["px"] < CHART_MIN_PX]
    assert not small_in_charts, small_in_charts[:5]
    _record(
        _name(path),
        {
            "body_px_min": min(t["px"] for t in texts),
            "contrast_min": round(min(t["contrast"] for t in texts), 2),
            "chart_px_min": min((t["px"] for t in chart_texts), default=None),
            "texts": len(texts),
            "chart_texts": len(chart_texts),
        },
    )
    _screenshot(page, f"meeting-{_name(path)}")
    page.context.close()


def _record(page_name: str, figures: dict) -> None:
    """The measured sizes and contrast, for the report (artifacts/, git-ignored)."""
    found = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    found[page_name] = figures
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2))


# Where each outcome section is, against the band the sticky header leaves (viewport px).
SECTIONS = f"""
() => {{
  const header = document.querySelector('.st-key-{meeting.HEADER_KEY}');
  const band = (header.closest('[data-testid="stLayoutWrapper"]') || header)
    .getBoundingClientRect();
  const stop = '[class*="st-key-{meeting.SECTION_PREFIX}"]';
  const sections = Array.from(document.querySelectorAll(stop))
    .filter((s) => !s.parentElement.closest(stop));
  return {{
    edge: band.bottom, height: window.innerHeight,
    tops: sections.map((s) => s.getBoundingClientRect().top),
  }};
}}
"""


def _at_top(page: object) -> int | None:
    """The index of the outcome section whose start is at the header's edge, if any; and no
    other section may show on the screen (one outcome per screen)."""
    where = page.evaluate(SECTIONS)
    at_edge = [i for i, top in enumerate(where["tops"]) if abs(top - where["edge"]) <= 2]
    if not at_edge:
        return None
    index = at_edge[0]
    others = [top for i, top in enumerate(where["tops"]) if i != index]
    assert all(top >= where["height"] or top < where["edge"] for top in others), where
    return index


def test_pagedown_and_pageup_step_between_outcomes(server: str, browser: object) -> None:
    """What a presentation clicker sends: PageDown from the page's top brings each outcome
    section in turn to the top of the screen, under the header, alone; PageUp goes back."""
    page = _open(browser, f"{server}/prophylaxis?mode=meeting")
    sections = len(page.evaluate(SECTIONS)["tops"])
    assert sections == 4
    assert _at_top(page) is None  # the page's title first
    reached = []
    for _ in range(3 * sections):
        page.keyboard.press("PageDown")
        page.wait_for_timeout(150)
        index = _at_top(page)
        if index is not None and index not in reached:
            reached.append(index)
        if reached == list(range(sections)):
            break
    assert reached == list(range(sections)), reached
    page.keyboard.press("PageUp")
    page.wait_for_timeout(150)
    assert _at_top(page) == sections - 2
    page.keyboard.press("PageUp")
    page.wait_for_timeout(150)
    assert _at_top(page) == sections - 3
    assert not page.errors, page.errors
    page.context.close()


def test_the_link_carries_meeting_mode_and_the_header_leaves_it(
    server: str, browser: object
) -> None:
    """mode=meeting survives navigation (the header's Pages menu) and a fresh browser; the
    header's button leaves it and the sidebar's toggle brings it back, both in the link."""
    page = _open(browser, f"{server}/treatment?mode=meeting&exclude=Wehrli2022")
    page.get_by_role("button", name="Pages").click()
    page.get_by_role("link", name="Prophylaxis").click()
    page.wait_for_url(re.compile(r"/prophylaxis\?.*mode=meeting"), timeout=TIMEOUT_MS)
    _settle(page)
    assert "exclude=Wehrli2022" in page.url
    shared = page.url
    page.context.close()

    fresh = _open(browser, shared)
    playwright_api.expect(fresh.locator(f".st-key-{meeting.HEADER_KEY}")).to_be_visible()
    assert not fresh.locator('[data-testid="stSidebar"]').is_visible()
    fresh.get_by_role("button", name="Leave meeting mode").click()
    fresh.wait_for_url(re.compile(r"/prophylaxis(?!.*mode=)"), timeout=TIMEOUT_MS)
    _settle(fresh)
    assert "exclude=Wehrli2022" in fresh.url
    assert fresh.locator(f".st-key-{meeting.HEADER_KEY}").count() == 0
    sidebar = fresh.locator('[data-testid="stSidebar"]')
    playwright_api.expect(sidebar).to_be_visible()
    sidebar.get_by_text("Meeting mode (projector)").click()
    fresh.wait_for_url(re.compile(r"mode=meeting"), timeout=TIMEOUT_MS)
    _settle(fresh)
    playwright_api.expect(fresh.locator(f".st-key-{meeting.HEADER_KEY}")).to_be_visible()
    assert not fresh.errors, fresh.errors
    fresh.context.close()


# ---- a 390 px phone -------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_every_page_on_a_phone(server: str, browser: object, path: str) -> None:
    page = _open(browser, f"{server}/{path}", PHONE)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not page.errors, page.errors
    _screenshot(page, f"phone-{_name(path)}")
    page.context.close()


def _chart_geometry(chart: object) -> dict:
    """A chart's marks and texts with their horizontal places (viewport px)."""
    return chart.evaluate(
        """(chart) => {
          const box = (e) => e.getBoundingClientRect();
          const frame = box(chart);
          const marks = Array.from(chart.querySelectorAll('path[aria-roledescription="point"]'))
            .map((m) => ({ label: m.getAttribute('aria-label'), x: box(m).x + box(m).width / 2 }));
          const texts = Array.from(chart.querySelectorAll('svg text')).map((t) => ({
            text: t.textContent, left: box(t).left, right: box(t).right,
          }));
          return { left: frame.left, right: frame.right, marks, texts };
        }"""
    )


def test_a_forest_plot_on_a_phone_keeps_every_estimate_apart_and_readable(
    server: str, browser: object
) -> None:
    """ux walkthrough F: on a 390 px screen the labels took the width and every square sat on
    one "100%" tick. Now each row's estimate and interval are written out in the chart, the
    squares stand at their own proportions and the axis keeps its ticks."""
    page = _open(browser, f"{server}/treatment", PHONE)
    chart = (
        page.locator(".st-key-forest_icans_response")
        .locator("..")
        .locator('[data-testid="stVegaLiteChart"]')
    )
    if chart.count() == 0:
        chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    geometry = _chart_geometry(chart.first)
    xs = sorted(round(m["x"]) for m in geometry["marks"])
    assert len(xs) == 4 and len(set(xs)) == 4, geometry["marks"]  # 3 studies and the pool
    numbers = [t for t in geometry["texts"] if re.fullmatch(r"\d+/\d+ +\d+\.\d% \[.*\]", t["text"])]
    assert {t["text"].split()[0] for t in numbers} == {"31/42", "4/6", "9/14", "44/62"}
    for text in numbers:  # written out whole, inside the chart
        assert geometry["left"] - 1 <= text["left"] and text["right"] <= geometry["right"] + 1
    ticks = [t["text"] for t in geometry["texts"] if re.fullmatch(r"\d+%", t["text"])]
    assert len(ticks) >= 3, ticks
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chart.first.screenshot(path=str(SCREENSHOTS / "phone-treatment-forest.png"))
    page.context.close()


def test_the_dose_axis_on_a_phone_shows_both_sides_of_the_split(
    server: str, browser: object
) -> None:
    page = _open(browser, f"{server}/dose", PHONE)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.scroll_into_view_if_needed()
    texts = [t["text"] for t in _chart_geometry(chart)["texts"]]
    doses = [int(t) for t in texts if re.fullmatch(r"\d+", t)]
    assert max(doses) > charts.REVIEW_DOSE_SPLIT, texts
    assert {str(n) for n in charts.PATIENT_SIZES} <= set(texts)  # the bubble legend
    chart.screenshot(path=str(SCREENSHOTS / "phone-dose-chart.png"))
    page.context.close()


# ---- accessibility --------------------------------------------------------------------------
def _axe(page: object) -> list[dict]:
    """axe-core's violations on the page as it is: id, impact, how many elements, where."""
    _require(AXE, "run `npm ci` (make test does): axe-core is pinned in package.json")
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
             .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length,
                            where: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }))"""
    )


AXE_FIGURES = ROOT / "artifacts" / "axe.json"


@pytest.mark.parametrize("mode", ["screen", "meeting"])
@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_no_serious_or_critical_accessibility_violation(
    server: str, browser: object, path: str, mode: str
) -> None:
    query = "?mode=meeting" if mode == "meeting" else ""
    page = _open(browser, f"{server}/{path}{query}", PROJECTOR if query else DESK)
    violations = _axe(page)
    found = json.loads(AXE_FIGURES.read_text()) if AXE_FIGURES.exists() else {}
    found[f"{_name(path)} ({mode})"] = violations
    AXE_FIGURES.write_text(json.dumps(found, indent=2))
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, bad
    page.context.close()


def test_every_chart_says_what_it_shows_and_gives_its_numbers_as_a_table(
    server: str, browser: object
) -> None:
    """A chart's container is labelled with what it draws; under it, "Chart data as a table"
    opens from the keyboard to the numbers the chart draws."""
    page = _open(browser, f"{server}/treatment", DESK)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    label = re.compile(r"^Forest plot of Neurological response / improvement: for each study")
    playwright_api.expect(chart).to_have_attribute("aria-label", label, timeout=TIMEOUT_MS)
    summary = page.locator(".st-key-forest_icans_response_data summary")
    summary.focus()
    page.keyboard.press("Enter")
    table = page.locator(".st-key-forest_icans_response_data table")
    playwright_api.expect(table).to_contain_text(
        "Strati 2020 - treated for ICANS", timeout=TIMEOUT_MS
    )
    playwright_api.expect(table).to_contain_text("66.7% [22.3%, 95.7%]")
    playwright_api.expect(table).to_contain_text("Pooled estimate")
    assert not page.errors, page.errors
    page.context.close()


def test_a_studys_provenance_is_reached_from_the_keyboard(server: str, browser: object) -> None:
    """The Studies table's rows are chosen with a pointer; the list under it, from the keyboard,
    highlights the same study (in the link too) and shows where its numbers were read."""
    page = _open(browser, f"{server}/studies", DESK)
    # A row selected with the pointer first (Wehrli 2022, the second row): the table keeps
    # sending that selection, and the study chosen from the list afterwards must still win.
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    page.mouse.click(grid["x"] + 12, grid["y"] + 35 + 35 + 17)
    page.wait_for_url(re.compile(r"study=Wehrli2022"), timeout=TIMEOUT_MS)
    _settle(page)
    picker = page.get_by_role("combobox", name="Show where a study's numbers come from")
    picker.focus()
    page.keyboard.type("Strati P 2020")
    page.get_by_role("option", name="Strati P 2020 (Strati2020)").wait_for(timeout=TIMEOUT_MS)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"study=Strati2020"), timeout=TIMEOUT_MS)
    _settle(page)
    heading = page.get_by_role("heading", name=re.compile("where every number was read"))
    playwright_api.expect(heading).to_contain_text("Strati P 2020")
    page.get_by_text("Only studies in the current slice").click()  # a rerun
    _settle(page)
    assert "study=Strati2020" in page.url
    assert not page.errors, page.errors
    page.context.close()
