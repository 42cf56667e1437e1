"""Two replicas behind Debian's nginx on loopback (harness/cluster.py, docs/hosting.md's blocks):
a session's WebSocket and requests stay on one replica; a dataset stored through one replica
opens by link through the other, with the same banner; a replica killed mid-session leaves the
other replica's sessions answering, and its own sessions reconnect through the proxy to the
other replica with their view and data restored from their links.

The protocol-level tests speak Streamlit's websocket protocol as the frontend does
(harness/protocol.py); the browser test drives the real frontend in Chromium: an upload through
one replica, the link opened through the other, and a replica killed under an open page."""

from __future__ import annotations

import asyncio
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence import datasets
from evidence.extraction import build
from harness import cluster
from harness.protocol import REPLICA_HEADER, Tab
from harness.server import CHROMIUM, CHROMIUM_ARGS

FIXTURE = Path(__file__).parent / "fixtures" / "good"
TIMEOUT_MS = 60_000
SHARED = "the panel's extraction “panel.xlsx”, shared by link"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nginx() -> None:
    if not cluster.nginx_available():
        message = "nginx is missing: install Debian's nginx (make system-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.build_from(build.SHEETS_DIR, tmp_path_factory.mktemp("db") / "anakinra.duckdb")


def _store_fixture(store: Path) -> str:
    """The fixture extraction stored as a checked upload named panel.xlsx; its id."""
    raw = build.read_sheet_dir(FIXTURE)
    dataset_id = build.sheets_checksum(raw)
    datasets.DatasetStore(str(store), 10 * 1024 * 1024).put(
        dataset_id, "panel.xlsx", build.sheets_zip(raw)
    )
    return dataset_id


def _start(tmp_path: Path, database: Path) -> Iterator[cluster.Cluster]:
    env = {"ANAKINRA_DATASETS": str(tmp_path / "datasets")}
    with cluster.cluster(tmp_path / "cluster", 2, database, env) as running:
        yield running


@pytest.fixture(scope="module")
def pair(
    nginx: None, database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[cluster.Cluster]:
    yield from _start(tmp_path_factory.mktemp("pair"), database)


@pytest.fixture
def fresh_pair(nginx: None, database: Path, tmp_path: Path) -> Iterator[cluster.Cluster]:
    """A pair of its own, for a test that kills a replica."""
    yield from _start(tmp_path, database)


def _replica_of(url: str, cookie: str | None) -> str:
    """The replica address the proxy sent this HTTP request to."""
    request = urllib.request.Request(
        f"{url}/_stcore/health", headers={"Cookie": cookie} if cookie else {}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers[REPLICA_HEADER]


def _pinned(running: cluster.Cluster, replica: cluster.Replica, page: str, query: str) -> Tab:
    tab = Tab(running.url, page, query)
    tab.cookie = running.cookie_for(replica)
    return tab


def _no_errors(*runs: object) -> None:
    for run in runs:
        assert not run.errors, run.errors


# ---- affinity -----------------------------------------------------------------------------------
def test_new_browsers_spread_and_each_stays_on_its_replica(pair: cluster.Cluster) -> None:
    seen = {_replica_of(pair.url, None) for _ in range(40)}
    assert seen == {r.address for r in pair.replicas}  # without a cookie: anywhere

    async def session() -> tuple[str, set[str]]:
        tab = Tab(pair.url, "treatment", "indication=treatment")
        _no_errors(await tab.open())
        first = tab.replica
        where = {first}
        _no_errors(await tab.choose("exclude", [tab.options("exclude")[0]]))
        where |= {await asyncio.to_thread(_replica_of, pair.url, tab.cookie) for _ in range(5)}
        _no_errors(await tab.reconnect())  # a reconnect lands where the session was
        where.add(tab.replica)
        assert "exclude=" in tab.query
        await tab.close()
        return first, where

    async def sessions() -> list[tuple[str, set[str]]]:
        return await asyncio.gather(*(session() for _ in range(4)))

    for first, where in asyncio.run(sessions()):
        assert where == {first}, f"a session's requests reached {where}"


def test_deep_links_reaching_a_fresh_replica_at_once_each_get_the_whole_app(
    nginx: None, database: Path, tmp_path: Path
) -> None:
    """Forty people opening the chair's link at once, scaled down: each session on a replica that
    has served nobody yet draws the sidebar and reads the link (not the page alone)."""

    async def open_all(url: str) -> None:
        tabs = [Tab(url, "treatment", "indication=treatment&exclude=Wehrli2022") for _ in range(6)]
        for run in await asyncio.gather(*(tab.open() for tab in tabs)):
            _no_errors(run)
        for tab in tabs:
            assert "filter_exclude" in tab.widgets, "a page drawn without app.py's sidebar"
            assert tab.widgets["filter_exclude"].value == ["Wehrli2022"]
            await tab.close()

    with cluster.cluster(tmp_path, 1, database) as running:
        asyncio.run(open_all(running.url))


# ---- a dataset shared by link, across replicas -------------------------------------------------
def test_a_stored_dataset_opens_by_link_on_either_replica(pair: cluster.Cluster) -> None:
    dataset_id = _store_fixture(Path(pair.replicas[0].env["ANAKINRA_DATASETS"]))

    async def open_on(replica: cluster.Replica) -> Tab:
        tab = _pinned(pair, replica, "treatment", f"data={dataset_id}&exclude=Alpha2020")
        run = await tab.open()
        _no_errors(run)
        assert tab.replica == replica.address
        assert any(SHARED in text for text in run.texts), run.texts
        assert f"data={dataset_id}" in tab.query and "exclude=Alpha2020" in tab.query
        return tab

    async def both() -> None:
        tabs = [await open_on(replica) for replica in pair.replicas]
        for tab in tabs:
            _no_errors(await tab.visit("studies"))
            assert f"data={dataset_id}" in tab.query  # the page's link keeps naming it
            await tab.close()
        unknown = Tab(pair.url, "", f"data={'0' * 64}")
        run = await unknown.open()
        _no_errors(run)
        assert any("is not in this server's dataset store" in text for text in run.texts)
        assert "data=" not in unknown.query
        await unknown.close()

    asyncio.run(both())


# ---- a replica killed mid-session ---------------------------------------------------------------
def test_a_killed_replicas_sessions_move_to_the_other_with_their_view(
    fresh_pair: cluster.Cluster,
) -> None:
    running = fresh_pair
    dataset_id = _store_fixture(Path(running.replicas[0].env["ANAKINRA_DATASETS"]))
    victim, survivor = running.replicas

    async def scenario() -> None:
        tabs = {
            replica.address: [
                _pinned(running, replica, "treatment", f"data={dataset_id}&indication=treatment")
                for _ in range(3)
            ]
            for replica in running.replicas
        }
        for tab in [t for group in tabs.values() for t in group]:
            _no_errors(await tab.open())
        for index, tab in enumerate(tabs[victim.address]):  # each its own view
            _no_errors(await tab.choose("exclude", [tab.options("exclude")[index]]))
        views = {id(tab): tab.query for tab in tabs[victim.address]}
        victim.kill()
        # The other replica's sessions answer on their own sockets, as if nothing happened.
        for tab in tabs[survivor.address]:
            run = await tab.choose("exclude", [tab.options("exclude")[0]])
            _no_errors(run)
            assert tab.replica == survivor.address
        # The killed replica's sessions lost their sockets: the frontend reconnects with the
        # page's URL, and the proxy sends them to the survivor, which restores it all.
        for tab in tabs[victim.address]:
            with pytest.raises(Exception):  # noqa: B017 - the closed socket, whatever its type
                await tab.choose("method", tab.options("method")[1])
            run = await tab.reconnect()
            _no_errors(run)
            assert running.replica_at(tab.replica) is survivor  # "victim, survivor": tried both
            assert tab.query == views[id(tab)]
            assert any(SHARED in text for text in run.texts), run.texts
            _no_errors(await tab.choose("method", tab.options("method")[1]))
            assert "method=" in tab.query and f"data={dataset_id}" in tab.query
        for tab in [t for group in tabs.values() for t in group]:
            await tab.close()

    asyncio.run(scenario())


# ---- the real frontend --------------------------------------------------------------------------
def _fixture_workbook(tmp_path: Path) -> Path:
    import duckdb

    from evidence.extraction import export

    fixture_db = build.build_from(FIXTURE, tmp_path / "f.duckdb")
    workbook = tmp_path / "panel.xlsx"
    with duckdb.connect(str(fixture_db), read_only=True) as con:
        workbook.write_bytes(export.export_workbook(con))
    return workbook


@pytest.mark.browser
def test_in_chromium_an_upload_through_one_replica_survives_it_on_the_other(
    fresh_pair: cluster.Cluster, tmp_path: Path
) -> None:
    """Chromium uploads through the proxy to replica 1; the page's link, opened by another
    browser pinned to replica 2, shows the same data; replica 1 is killed: the first page
    reconnects to replica 2 with its data and filters, and the other page keeps answering."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing")
    expect = playwright_api.expect
    running = fresh_pair
    first, second = running.replicas
    workbook = _fixture_workbook(tmp_path)

    def context(browser: object, replica: cluster.Replica) -> object:
        made = browser.new_context(viewport={"width": 1280, "height": 900})
        name, value = running.cookie_for(replica).split("=", 1)
        made.add_cookies([{"name": name, "value": value, "url": running.url}])
        return made

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        uploader = context(browser, first).new_page()
        uploader.goto(f"{running.url}/methods")
        uploader.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            str(workbook)
        )
        uploader.get_by_role("button", name="Check and use this extraction").click()
        expect(uploader.get_by_text(SHARED)).to_be_visible(timeout=TIMEOUT_MS)
        uploader.get_by_role("link", name="Treatment").click()
        uploader.wait_for_url(re.compile(r"/treatment\?.*data=[0-9a-f]{64}"), timeout=TIMEOUT_MS)
        link = uploader.url
        # Another panel member, on the other replica, opens the link.
        member = context(browser, second).new_page()
        member.goto(link)
        expect(member.get_by_text(SHARED)).to_be_visible(timeout=TIMEOUT_MS)
        expect(member.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible(
            timeout=TIMEOUT_MS
        )
        # The uploader narrows the view, then its replica dies.
        exclude = uploader.locator('[data-testid="stMultiSelect"]').filter(
            has_text="Exclude studies (sensitivity)"
        )
        exclude.locator("input").click()
        uploader.keyboard.type("Alpha2020")
        uploader.get_by_role("option", name="Alpha2020").click()
        uploader.keyboard.press("Escape")
        uploader.wait_for_url(re.compile(r"exclude=Alpha2020"), timeout=TIMEOUT_MS)
        before = uploader.url
        first.kill()
        # It reconnects through the proxy to the other replica: same link, same data, same view.
        expect(uploader.get_by_text(SHARED)).to_be_visible(timeout=TIMEOUT_MS)
        expect(
            uploader.locator('[data-testid="stMultiSelect"]').filter(has_text="Alpha2020")
        ).to_be_visible(timeout=TIMEOUT_MS)
        uploader.wait_for_timeout(3000)  # the reconnect's run has ended
        assert uploader.url == before
        assert uploader.locator('[data-testid="stException"]').count() == 0
        # The other member's page keeps answering.
        member.get_by_role("link", name="Dose").click()
        member.wait_for_url(re.compile(r"/dose\?.*data=[0-9a-f]{64}"), timeout=TIMEOUT_MS)
        expect(member.get_by_text(SHARED)).to_be_visible(timeout=TIMEOUT_MS)
        browser.close()
