"""Meeting mode under AppTest: the link's `mode=meeting` (and the sidebar's toggle) give the page
its CSS, its header with the slice in words, its keys' script and charts drawn in the meeting
style; leaving it drops all of them and the link's `mode`. What only a browser shows (sizes,
contrast, PageDown) is in tests/test_browser.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from evidence import charts
from evidence.filters import Slice, View, link_params, read_link
from evidence.ui import meeting

ROOT = Path(__file__).resolve().parent.parent


def test_mode_round_trips_through_the_link() -> None:
    view = View(mode="meeting")
    assert link_params(Slice(), view) == {"mode": ["meeting"]}
    assert read_link({"mode": "meeting"}) == (Slice(), view, [])
    assert link_params(Slice(), View()) == {}  # the desk's screen is the default


def test_an_unknown_mode_is_dropped_with_a_notice() -> None:
    _, view, notices = read_link({"mode": "projector"})
    assert view.mode == "screen"
    assert notices == ["Ignored mode='projector': not one of screen, meeting."]


@pytest.fixture
def app(shipped_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    yield AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def _open(at: AppTest, page: str | None, params: dict[str, str] | None = None) -> AppTest:
    at.query_params.update(params or {})
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _shown(markdown: str) -> str:
    """Markdown source as the text a reader sees of it (backslash escapes resolved)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _charts(at: AppTest) -> list[dict]:
    """The Vega-Lite specs the page sent (without their rows)."""
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def _meeting_css(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.sidebar.get("html") if "font-size: 28px" in h.proto.body]


def test_a_meeting_link_draws_the_page_for_the_room(app: AppTest) -> None:
    at = _open(app, "pages/treatment.py", {"mode": "meeting", "grading": "ASTCT"})
    assert _meeting_css(at), "the page carries no meeting CSS"
    scripts = [h.proto for h in at.get("html") if meeting.SCRIPT in h.proto.body]
    assert scripts and all(script.unsafe_allow_javascript for script in scripts)
    header = [_shown(m.value) for m in at.markdown if m.value.startswith("**Slice:**")]
    assert len(header) == 1 and header[0].startswith("**Slice:** ASTCT grading: ")
    assert header[0].endswith(" patients")  # the slice's words with its studies and patients
    specs = _charts(at)
    assert specs and all(s["config"]["axis"]["labelFontSize"] >= 22 for s in specs)
    assert at.session_state["view"].mode == "meeting"
    assert at.toggle(key=meeting.TOGGLE_KEY).value is True


def test_the_desk_view_has_none_of_it(app: AppTest) -> None:
    at = _open(app, "pages/treatment.py")
    assert not _meeting_css(at)
    assert not [m for m in at.markdown if m.value.startswith("**Slice:**")]
    sizes = {s["config"]["axis"]["labelFontSize"] for s in _charts(at)}
    assert sizes == {charts.STYLES["screen"].label}


def test_the_sidebar_toggle_turns_it_on_and_the_header_button_off(app: AppTest) -> None:
    at = _open(app, "pages/prophylaxis.py")
    at.toggle(key=meeting.TOGGLE_KEY).set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["mode"] in (["meeting"], "meeting")
    assert _meeting_css(at)
    assert all(s["config"]["axis"]["labelFontSize"] >= 22 for s in _charts(at))
    at.button(key="meeting_leave").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "mode" not in at.query_params
    assert not _meeting_css(at)
    assert at.toggle(key=meeting.TOGGLE_KEY).value is False


def _blocks(node: object) -> Iterator[object]:
    children = getattr(node, "children", None)
    for child in children.values() if isinstance(children, dict) else ():
        yield child
        yield from _blocks(child)


def _section_keys(at: AppTest) -> list[str]:
    """The keys of the page's outcome sections (a block's id ends with its key)."""
    ids = [getattr(b.proto, "id", "") for b in _blocks(at.main) if b.type == "flex_container"]
    return [i.rsplit("-", 1)[1] for i in ids if f"-{meeting.SECTION_PREFIX}" in i]


@pytest.mark.parametrize(
    ("page", "outcomes"),
    [
        ("pages/treatment.py", ["icans_response"]),
        ("pages/prophylaxis.py", ["any_icans", "grade3plus_icans", "any_crs", "grade3plus_crs"]),
        ("pages/safety.py", ["grade5_icans"]),
    ],
)
def test_every_outcome_section_is_a_stop_of_the_meeting_keys(
    app: AppTest, page: str, outcomes: list[str]
) -> None:
    """static/meeting.js steps through the containers keyed with the section prefix: each
    outcome section of a page is one."""
    at = _open(app, page, {"mode": "meeting"})
    keys = _section_keys(at)
    assert len(keys) == len(set(keys)) == len([s for s in at.subheader if s.value])
    for code in outcomes:
        assert any(key.endswith(code) for key in keys), (code, keys)
