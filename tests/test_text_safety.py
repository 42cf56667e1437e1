"""Every value that comes from a link or an upload is shown as text: a shared link or a panel's
file cannot put a working link, a remote image or formatting in front of the people who open
the dashboard, and no link, however malformed, raises."""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from evidence.extraction import build
from evidence.filters import Slice, View, keep_known_studies, read_link
from evidence.format import plain

ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "tests" / "fixtures" / "good"
PAGES = {
    "overview": None,
    "sof": "pages/sof.py",
    "treatment": "pages/treatment.py",
    "prophylaxis": "pages/prophylaxis.py",
    "dose": "pages/dose.py",
    "safety": "pages/safety.py",
    "studies": "pages/studies.py",
    "methods": "pages/methods.py",
}
PAYLOAD = (
    "[click here](https://example.org/login) ![pixel](https://example.org/p.png) "
    "<img src=https://example.org/x.png> *bold* :red[red] $x^2$ www.example.org"
)
# What a link's or an upload's values would become if rendered as Markdown: a link or image
# (unescaped "](" or "!["), raw HTML elements that load or run something, or an address the
# renderer links by itself. (The page's own markup, such as the certainty symbols' SVG, is not
# from a link or an upload and is not looked for.)
ACTIVE_MARKDOWN = re.compile(
    r"(?<!\\)\]\((?# link)|(?<!\\)!(?<!\\)\[(?# image)|(?<!\\)<(img|script|a|iframe)\b(?# html)"
    r"|https?://(example\.org|e\.org)|(?<![\\\w])www\.example(?# autolinks of the payloads)"
)
TIMEOUT = 60


def _rendered_markdown(at: AppTest) -> list[str]:
    """The Markdown source of every element that Streamlit renders as Markdown."""
    texts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success")
             for e in getattr(at, kind)]  # fmt: skip
    texts += [e.value for kind in ("title", "header", "subheader") for e in getattr(at, kind)]
    texts += [e.label for e in at.expander] + [b.label for b in at.button]
    return [str(t) for t in texts]


# The project's own documents, shown on the Methods page as the Markdown they are.
DOCUMENTS = {
    " ".join((ROOT / name).read_text(encoding="utf-8").split())
    for name in ("docs/methods.md", "data/README.md")
}


def _active(at: AppTest) -> list[str]:
    """Rendered Markdown that would be a link, image, HTML or autolink (documents aside)."""
    return [
        t
        for t in _rendered_markdown(at)
        if ACTIVE_MARKDOWN.search(t) and " ".join(t.split()) not in DOCUMENTS
    ]


def _open(database: Path, page: str, params: dict[str, str | list[str]]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    if PAGES[page]:
        at.switch_page(PAGES[page])
        at.run()
    return at


# ---- the escaping itself ---------------------------------------------------------------------
def test_plain_text_cannot_become_markdown() -> None:
    shown = plain(PAYLOAD)
    assert not ACTIVE_MARKDOWN.search(shown)
    read_back = re.sub(r"\\(.)", r"\1", shown).replace("\u200b", "")
    assert read_back == PAYLOAD  # as the reader sees it, the same text
    assert plain("x" * 1000, limit=50).endswith("…") and len(plain("x" * 1000, limit=50)) == 50
    assert plain("two\nlines\n# heading") == r"two lines \# heading"


def test_link_notices_shorten_what_they_repeat() -> None:
    _, _, notices = read_link({"product": "x" * 60_000, "y" * 10_000: "1"})
    assert notices and all(len(n) < 200 for n in notices)


def test_unknown_study_ids_are_dropped_with_a_notice() -> None:
    rows, view, notices = keep_known_studies(
        Slice(exclude=("Known", "Ghost")), View(study="Phantom"), {"Known"}
    )
    assert rows.exclude == ("Known",) and view.study is None
    assert any("'Ghost'" in n for n in notices) and any("'Phantom'" in n for n in notices)


# ---- a panel's file with hostile text in every text column ---------------------------------
def _hostile_sheets() -> dict[str, bytes]:
    """The fixture extraction with PAYLOAD appended to every free-text cell (quotes keep the
    number they must contain, ids stay ids)."""
    text_columns = {
        "studies": ("first_author", "title", "venue", "centres", "notes"),
        "sources": ("citation", "notes"),
        "cohorts": ("label", "schedule", "notes", "n_locator", "n_quote", "dose_locator"),
        "outcomes": ("definition", "timepoint", "locator", "quote", "conflict_note"),
        "quality": ("item", "reason"),
    }
    sheets = {}
    for path in sorted(GOOD.glob("*.csv")):
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        for row in rows:
            for column in text_columns.get(path.stem, ()):
                if column in row and (row[column] or column in ("label", "title")):
                    row[column] = f"{row[column]} {PAYLOAD}"
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        sheets[path.stem] = out.getvalue().encode("utf-8")
    return sheets


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("hostile") / "hostile.duckdb"
    origin = build.Origin("hostile fixture", build.OTHER_FOLDER)
    return build.build_file(_hostile_sheets(), target, origin)


@pytest.fixture
def serve(hostile_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ANAKINRA_DB", str(hostile_db))
    yield hostile_db


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("study", ["Alpha2020", "Delta2022"])
def test_uploaded_text_is_shown_as_text_on_every_page(serve: Path, page: str, study: str) -> None:
    at = _open(serve, page, {"study": study})
    assert not at.exception, [e.value for e in at.exception]
    if page == "studies":  # the page that shows a study's texts: they are there, as text
        assert sum("click here" in t for t in _rendered_markdown(at)) >= 3
    assert _active(at) == []


# ---- any link, however malformed -----------------------------------------------------------
KEYS = [
    "indication", "product", "dose_min", "dose_max", "dose_band", "route", "grading", "design",
    "pubtype", "year_min", "year_max", "min_n", "window", "exclude", "method", "outcome",
    "split", "study", "judge", "threshold", "graded_on",
]  # fmt: skip
VALUES = [
    PAYLOAD, "x" * 5_000, "1e308", "-1", "nan", "inf", "0x10", "", " ", "treatment", "axi-cel",
    "le200", "ASTCT", "prospective", "review", "dl", "grade5_icans", "dose_band", "Alpha2020",
    "Strati2020", "treatment.icans_response~imprecision~serious~[x](https://e.org)",
    "treatment.icans_response~0.5", "0123456789ab", "../../etc/passwd",
    "'; DROP TABLE studies; --", "\u202e\u0000\ufeff", "日本",
    "200", "2021", "[a](b)", "**", "%0A%0D", "<script>alert(1)</script>",
]  # fmt: skip


def _random_links(count: int, seed: int) -> list[dict[str, list[str]]]:
    generator = random.Random(seed)
    links = []
    for _ in range(count):
        link: dict[str, list[str]] = {}
        for _ in range(generator.randint(1, 6)):
            key = generator.choice([*KEYS, PAYLOAD, "colour", "x" * 300])
            link.setdefault(key, []).extend(
                generator.choice(VALUES) for _ in range(generator.randint(1, 3))
            )
        links.append(link)
    return links


@pytest.mark.parametrize("page", list(PAGES))
def test_generated_links_never_raise_and_never_render_markdown(
    shipped_db: Path, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    """30 generated query strings per page (210 in all), each with 1-6 keys, known and unknown,
    valid, malformed and hostile values, repeated keys."""
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    for link in _random_links(30, seed=hash(page) % 10_000):
        at = _open(shipped_db, page, link)
        assert not at.exception, (link, [e.value for e in at.exception])
        assert not at.error, (link, [e.value for e in at.error])
        assert _active(at) == [], link
        assert len(at.info) <= 8, "link notices must be one summarised box"


def test_an_uploaded_file_name_is_shown_as_text(
    hostile_db: Path, shipped_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The banner of an uploaded extraction names its file, which the uploader chose."""
    import duckdb

    from evidence.ui.data import ActiveData

    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    con = duckdb.connect(str(hostile_db), read_only=True)
    label = f"your upload “{PAYLOAD}.xlsx”"
    at.session_state["uploaded_data"] = ActiveData(con, "upload:hostile", label, True, False)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("click here" in w.value for w in at.warning)
    assert _active(at) == []
