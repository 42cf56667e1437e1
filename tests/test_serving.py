"""Serving the dashboard as one shared URL: the served database verified at start (a damaged file
rebuilt, in memory when its folder is read-only, a plain "data unavailable" page and a failing
script health check when nothing can be served); a client's "clear cache" limited to its own
session; each session's upload bounded, one at a time, closed when replaced, left or ended."""

from __future__ import annotations

import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from evidence.extraction import build
from harness.server import ROOT, streamlit_server

FIXTURE = Path(__file__).parent / "fixtures" / "good"
TIMEOUT = 60


@pytest.fixture
def sheets(tmp_path: Path) -> Path:
    folder = tmp_path / "sheets"
    shutil.copytree(FIXTURE, folder)
    return folder


def _truncated(path: Path) -> None:
    """Cut the file in half, as an interrupted copy does (its checksum file stays)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    """Not a database at all, and no checksum beside it."""
    path.write_bytes(b"not a duckdb file\n" * 4096)
    build.checksum_path(path).unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {"truncated": _truncated, "garbage": _garbage}


def _damaged(sheets: Path, folder: Path, how: str) -> Path:
    target = build.build_from(sheets, folder / "anakinra.duckdb")
    DAMAGE[how](target)
    return target


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make the data folder read-only as far as the build can tell (tests run as root,
    who may write anyway): the folder reports itself unwritable and creating a file fails."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied (read-only folder)")

    def make() -> None:
        monkeypatch.setattr(build, "folder_writable", lambda folder: False)
        monkeypatch.setattr(build.tempfile, "mkstemp", refuse)

    return make


# ---- the build's verification -----------------------------------------------------------------
def test_a_build_records_its_checksum_and_row_counts(sheets: Path, tmp_path: Path) -> None:
    target = build.build_from(sheets, tmp_path / "anakinra.duckdb")
    recorded = build.checksum_path(target).read_text()
    assert recorded == f"{build.file_sha256(target)}  anakinra.duckdb\n"  # sha256sum -c reads it
    info = build.stored_info(target)
    with duckdb.connect(str(target), read_only=True) as con:
        for sheet in ("studies", "cohorts", "outcomes", "sources", "quality", "review_figures"):
            count = con.execute(f"SELECT count(*) FROM {sheet}").fetchone()[0]
            assert info[f"rows:{sheet}"] == str(count)
    assert build.verify(target) is None


def test_verify_names_what_is_wrong(sheets: Path, tmp_path: Path) -> None:
    assert build.verify(tmp_path / "none.duckdb") == "is missing"
    truncated = _damaged(sheets, tmp_path, "truncated")
    assert "does not match the checksum recorded in anakinra.duckdb.sha256" in build.verify(
        truncated
    )
    build.checksum_path(truncated).unlink()  # a file built before checksums were recorded
    assert build.verify(truncated).startswith("cannot be read (IOException")
    garbage = tmp_path / "g" / "anakinra.duckdb"
    garbage.parent.mkdir()
    build.build_from(sheets, garbage)
    _garbage(garbage)
    assert build.verify(garbage).startswith("cannot be read")


def test_verify_compares_the_row_counts_the_build_recorded(sheets: Path, tmp_path: Path) -> None:
    target = build.build_from(sheets, tmp_path / "anakinra.duckdb")
    with duckdb.connect(str(target)) as con:
        con.execute("DELETE FROM quality WHERE rowid = (SELECT min(rowid) FROM quality)")
    build.checksum_path(target).unlink()
    assert "rows in quality, where its build wrote" in build.verify(target)


def test_a_truncated_file_passes_the_staleness_check_but_not_verify(
    sheets: Path, tmp_path: Path
) -> None:
    """The defect: build_info still reads, so `ensure_built` keeps the file."""
    target = _damaged(sheets, tmp_path, "truncated")
    assert build.freshness(target, sheets).state == "current"
    assert build.verify(target) is not None


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_file_is_rebuilt_into_a_fresh_file(sheets: Path, tmp_path: Path, how: str):
    target = _damaged(sheets, tmp_path, how)
    damaged_bytes = target.read_bytes()
    served = build.open_served(target, sheets)
    assert served.file == target and build.verify(target) is None
    assert "rebuilt it from" in served.notice and "anakinra.duckdb.damaged" in served.notice
    assert (tmp_path / "anakinra.duckdb.damaged").read_bytes() == damaged_bytes
    assert served.con.execute("SELECT count(*) FROM studies").fetchone() == (6,)
    served.con.close()


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_file_in_a_read_only_folder_is_served_from_memory(
    sheets: Path, tmp_path: Path, how: str, read_only: Callable[[], None]
) -> None:
    target = _damaged(sheets, tmp_path, how)
    read_only()
    before = target.read_bytes()
    served = build.open_served(target, sheets)
    assert served.file is None and "built in memory" in served.notice
    assert served.con.execute("SELECT count(*) FROM studies").fetchone() == (6,)
    assert target.read_bytes() == before  # nothing written
    served.con.close()


def test_a_damaged_file_the_sheets_cannot_rebuild_is_unservable(
    sheets: Path, tmp_path: Path
) -> None:
    target = _damaged(sheets, tmp_path, "garbage")
    (sheets / "studies.csv").write_text("not,the,columns\n1,2,3\n", encoding="utf-8")
    with pytest.raises(build.Unservable, match=r"cannot be read.*and the sheets in .* problem"):
        build.open_served(target, sheets)


def test_a_file_chosen_as_is_is_never_replaced(sheets: Path, tmp_path: Path) -> None:
    """ANAKINRA_DB names a file to serve as it is: damaged, it is unservable, not swapped."""
    target = _damaged(sheets, tmp_path, "truncated")
    before = target.read_bytes()
    with pytest.raises(build.Unservable, match="does not match the checksum"):
        build.open_served(target, sheets, rebuild=False)
    assert target.read_bytes() == before


# ---- the app over a damaged file ----------------------------------------------------------------
@pytest.fixture
def app_over(monkeypatch: pytest.MonkeyPatch, sheets: Path) -> Iterator[Callable[[Path], AppTest]]:
    """The app as `make run` starts it (no ANAKINRA_DB) over `target`, following `sheets`."""
    monkeypatch.delenv("ANAKINRA_DB", raising=False)
    monkeypatch.setattr(build, "SHEETS_DIR", sheets)

    def make(target: Path) -> AppTest:
        monkeypatch.setattr(build, "DATABASE", target)
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)

    st.cache_resource.clear()
    yield make
    st.cache_resource.clear()  # the next test's app opens its own database


def _warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


@pytest.mark.parametrize("how", list(DAMAGE))
def test_the_app_rebuilds_a_damaged_file_and_says_so(
    app_over: Callable[[Path], AppTest], sheets: Path, tmp_path: Path, how: str
) -> None:
    target = _damaged(sheets, tmp_path, how)
    at = app_over(target).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "rebuilt it from" in _warnings(at)
    assert at.metric, "the Overview shows its numbers"
    assert build.verify(target) is None


@pytest.mark.parametrize("how", list(DAMAGE))
def test_the_app_serves_a_damaged_file_in_a_read_only_folder_from_memory_once(
    app_over: Callable[[Path], AppTest],
    sheets: Path,
    tmp_path: Path,
    how: str,
    read_only: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Built in memory once per process, not once per run; the database file is not offered for
    download (it is the damaged one)."""
    target = _damaged(sheets, tmp_path, how)
    read_only()
    builds = []
    in_memory = build.build_in_memory
    monkeypatch.setattr(
        build, "build_in_memory", lambda *a: builds.append(a) or in_memory(*a)
    )  # fmt: skip
    at = app_over(target)
    for _ in range(3):
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert "built in memory" in _warnings(at)
    assert len(builds) == 1
    at.switch_page("pages/methods.py").run()
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Extraction in use (XLSX)" in labels and "Database file (DuckDB)" not in labels


PAGES = ["pages/overview.py", "pages/treatment.py", "pages/methods.py", "pages/studies.py"]


def test_the_app_shows_a_plain_page_when_nothing_can_be_served(
    app_over: Callable[[Path], AppTest], sheets: Path, tmp_path: Path
) -> None:
    target = _damaged(sheets, tmp_path, "garbage")
    (sheets / "cohorts.csv").unlink()
    at = app_over(target).run()
    for page in PAGES:
        if page != PAGES[0]:
            at.switch_page(page).run()
        assert [t.value for t in at.title] == ["Data unavailable"]
        assert not at.exception and not at.error
        assert "Rebuild the database" in at.caption[0].value
        assert not at.sidebar.get("multiselect"), "no filters on the plain page"


# ---- the script health check of a real server ---------------------------------------------------
def _status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.slow
def test_the_script_health_check_fails_while_no_data_can_be_served(tmp_path: Path) -> None:
    """/_stcore/health says the process is up either way; /_stcore/script-health-check (which
    the Dockerfile's HEALTHCHECK and a proxy probe) runs app.py and fails without data."""
    good = build.build_from(FIXTURE, tmp_path / "good.duckdb")
    with streamlit_server(env={"ANAKINRA_DB": str(good)}) as base:
        assert _status(f"{base}/_stcore/health") == (200, "ok")
        assert _status(f"{base}/_stcore/script-health-check") == (200, "ok")
    damaged = build.build_from(FIXTURE, tmp_path / "damaged.duckdb")
    _truncated(damaged)
    with streamlit_server(env={"ANAKINRA_DB": str(damaged)}) as base:
        assert _status(f"{base}/_stcore/health") == (200, "ok")
        assert _status(f"{base}/_stcore/script-health-check") == (503, "error")


# ---- "Clear cache" sent by a client -------------------------------------------------------------
PROBE = """
import time

import streamlit as st

from evidence.ui import serving

serving.guard_clear_cache()  # what app.py does through serving.start


@st.cache_resource
def shared() -> int:
    return time.monotonic_ns()  # one value per process, unless someone clears every cache


st.session_state.setdefault("runs", 0)
st.session_state["runs"] += 1
st.text(f"shared={shared()}")
st.text(f"runs={st.session_state['runs']}")
"""


class StreamClient:
    """A client speaking Streamlit's websocket protocol (BackMsg out, ForwardMsg in), as any
    script can: no browser, nothing but the server's own protobufs."""

    def __init__(self, socket: object) -> None:
        self.socket = socket

    def send(self, **fields: object) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        for name, value in fields.items():
            if name == "rerun_script":
                message.rerun_script.query_string = str(value)
            else:
                setattr(message, name, value)
        self.socket.send(message.SerializeToString())

    def run(self) -> dict[str, str]:
        """Rerun the script; what it wrote with st.text, as {name: value}."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.send(rerun_script="")
        shown: dict[str, str] = {}
        while True:
            message = ForwardMsg()
            message.ParseFromString(self.socket.recv(timeout=30))
            kind = message.WhichOneof("type")
            if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                if element.WhichOneof("type") == "text":
                    name, _, value = element.text.body.partition("=")
                    shown[name] = value
            if kind == "script_finished":
                return shown


@contextmanager
def stream_client(base: str) -> Iterator[StreamClient]:
    from websockets.sync.client import connect

    url = base.replace("http://", "ws://") + "/_stcore/stream"
    with connect(url, subprotocols=["streamlit"], open_timeout=30) as socket:
        yield StreamClient(socket)


@pytest.mark.slow
def test_a_clients_clear_cache_clears_its_own_session_only(tmp_path: Path) -> None:
    """Session B sends the `clear_cache` BackMsg: session A's state and what every session shares
    (cache_resource, which holds the served database connection in the app) survive; B's own
    state is cleared."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    with (
        streamlit_server(str(probe)) as base,
        stream_client(base) as first,
        stream_client(base) as other,
    ):
        a = first.run()
        b = other.run()
        assert a["shared"] == b["shared"] and a["runs"] == b["runs"] == "1"
        other.send(clear_cache=True)
        assert other.run() == {"shared": a["shared"], "runs": "1"}  # its own state cleared
        assert first.run() == {"shared": a["shared"], "runs": "2"}  # the other survives


def test_app_py_installs_the_clear_cache_guard(
    fixture_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.runtime.app_session import AppSession

    from evidence.ui import serving

    def streamlits_own(self: AppSession) -> None:  # stands for the handler Streamlit ships
        raise AssertionError("not replaced")

    monkeypatch.setenv("ANAKINRA_DB", str(fixture_db_path))
    monkeypatch.setattr(AppSession, "_handle_clear_cache_request", streamlits_own)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert AppSession._handle_clear_cache_request is serving._clear_own_session


# ---- per-session bounds -------------------------------------------------------------------------
def _upload_con() -> duckdb.DuckDBPyConnection:
    """An upload's database as build.from_upload makes it (in memory, from the fixture)."""
    return build.build_in_memory(build.read_sheet_dir(FIXTURE), build.Origin("x.xlsx", "upload"))


def _closed(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("SELECT 1")
    except duckdb.ConnectionException:
        return True
    return False


def test_an_uploads_database_is_bounded() -> None:
    from evidence.ui import sessions

    con = _upload_con()
    sessions.bound(con)
    threads, limit = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone()
    assert threads == 1
    assert limit.endswith("MiB") and float(limit.split()[0]) <= 128  # build.UPLOAD_DATABASE_CONFIG
    con.close()


def test_the_registry_holds_one_upload_per_session_and_sweeps_ended_sessions() -> None:
    from evidence.ui import sessions

    first, second, other = _upload_con(), _upload_con(), _upload_con()
    sessions.hold("session-a", first)
    sessions.hold("session-b", other)
    sessions.hold("session-a", second)  # a second upload replaces the first
    assert _closed(first) and not _closed(second)
    assert sessions.held()["session-a"] is second
    assert sessions.sweep({"session-a", "unrelated"}) == ["session-b"]
    assert _closed(other) and "session-b" not in sessions.held()
    assert sessions.release("session-a") and _closed(second)
    assert not sessions.release("session-a")


def _upload_script() -> None:
    """A run that does what the Methods page and the banner do: load an upload, or go back."""
    import os
    from pathlib import Path

    import streamlit as st

    from evidence.extraction import build
    from evidence.ui import data

    action = st.query_params.get("do")
    if action == "upload":
        raw = build.read_sheet_dir(Path(os.environ["TEST_SHEETS"]))
        con = build.build_in_memory(raw, build.Origin("panel.xlsx", build.UPLOAD))
        data.use_upload(con, "panel.xlsx")
    elif action == "back":
        data.use_shipped()
    st.text(data.active().label)


def test_a_session_holds_one_upload_closed_when_replaced_or_left(
    fixture_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence.ui import sessions

    monkeypatch.setenv("ANAKINRA_DB", str(fixture_db_path))
    monkeypatch.setenv("TEST_SHEETS", str(FIXTURE))
    before = set(sessions.held())
    at = AppTest.from_function(_upload_script, default_timeout=TIMEOUT)
    at.query_params["do"] = "upload"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    ((session_id, first),) = [(s, c) for s, c in sessions.held().items() if s not in before]
    assert first.execute("SELECT current_setting('threads')").fetchone() == (1,)
    at.run()  # the same session uploads again
    ((again, second),) = [(s, c) for s, c in sessions.held().items() if s not in before]
    assert again == session_id and second is not first
    assert _closed(first), "the replaced upload's database is closed"
    assert at.session_state["uploaded_data"].con is second
    at.query_params["do"] = "back"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert session_id not in sessions.held() and _closed(second)
    assert at.text[0].value == "the extraction built from good"  # the served fixture


# ---- a link made while an upload was in use -----------------------------------------------------
NOT_HERE = (
    "The uploaded extraction of this link is not on this server (it lives only in the browser "
    "session that uploaded it); showing the shipped data."
)


@pytest.fixture
def shipped_app(shipped_db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)


def _infos(at: AppTest) -> list[str]:
    """The info boxes as read (Markdown escapes resolved: link notices are shown as text)."""
    return [re.sub(r"\\(.)", r"\1", i.value) for i in at.info]


def test_a_link_whose_upload_is_not_here_says_so(shipped_app: AppTest) -> None:
    """Server restarted or link shared: the marker stays a notice until something changes."""
    at = shipped_app
    at.query_params.update({"data": "upload", "exclude": "Strati2020"})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert NOT_HERE in _infos(at)
    assert at.session_state["slice"].exclude == ("Strati2020",)  # the rest of the link is read
    assert "data" not in at.query_params  # the link now names what is shown
    at.run()
    assert NOT_HERE in _infos(at)
    reset = next(b for b in at.sidebar.button if b.label == "Reset filters")
    reset.click().run()  # something changed
    assert NOT_HERE not in _infos(at)


def test_an_unknown_data_marker_is_ignored_with_a_notice(shipped_app: AppTest) -> None:
    shipped_app.query_params["data"] = "ds-1234"
    shipped_app.run()
    assert "Ignored data='ds-1234': not a data set this server knows." in _infos(shipped_app)


def test_a_session_reading_its_upload_carries_the_marker(
    shipped_app: AppTest, fixture_db_path: Path
) -> None:
    from evidence.ui import data

    at = shipped_app
    at.run()
    assert "data" not in at.query_params
    con = _upload_con()
    at.session_state[data.UPLOAD_KEY] = data.ActiveData(con, "upload:x", "your upload", True, False)
    at.query_params["exclude"] = "Alpha2020"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["data"] == "upload"
    assert NOT_HERE not in _infos(at)
    assert "data=upload" in at.sidebar.code[0].value  # the copied link carries it
    at.button(key="back_to_shipped").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "data" not in at.query_params and NOT_HERE not in _infos(at)
    assert "data=upload" not in at.sidebar.code[0].value


def test_a_missing_file_in_a_read_only_folder_is_built_in_memory_once(
    app_over: Callable[[Path], AppTest],
    tmp_path: Path,
    read_only: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first start of a container whose data folder is read-only: the failing build is
    tried once per process, not on every run."""
    target = tmp_path / "anakinra.duckdb"
    read_only()
    attempts = []
    ensure_built = build.ensure_built
    monkeypatch.setattr(
        build, "ensure_built", lambda *a: attempts.append(a) or ensure_built(*a)
    )  # fmt: skip
    at = app_over(target)
    for _ in range(3):
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert "built in memory" in _warnings(at)
    assert len(attempts) == 1 and not target.exists()
