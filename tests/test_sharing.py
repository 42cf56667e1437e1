"""A panel's data shared by link, in the app: a checked upload goes to the dataset store and the
session's link carries its id; that link opens the same data, with the same banner, in a new
session (once built per process, whoever opens it); an unknown or removed id, a damaged file or
sharing turned off give a notice and the shipped data; a store that cannot take an upload leaves
it in the session, saying why. The cluster tests (tests/test_cluster.py) do the same across
replicas behind nginx."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from evidence import datasets
from evidence.extraction import build
from harness.server import ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "good"
TIMEOUT = 60
LABEL = "the panel's extraction “panel.zip”, shared by link"


def _fixture_zip() -> tuple[str, bytes]:
    raw = build.read_sheet_dir(FIXTURE)
    return build.sheets_checksum(raw), build.sheets_zip(raw)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[datasets.DatasetStore]:
    """A fresh dataset store for the test, and fresh process caches (the datasets opened)."""
    monkeypatch.setenv(datasets.STORE_ENV, str(tmp_path / "datasets"))
    st.cache_resource.clear()
    yield datasets.DatasetStore(str(tmp_path / "datasets"), 10 * 1024 * 1024)
    st.cache_resource.clear()


@pytest.fixture
def app(shipped_db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)


def _infos(at: AppTest) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", i.value) for i in at.info]


def _warnings(at: AppTest) -> str:
    return " ".join(re.sub(r"\\(.)", r"\1", w.value) for w in at.warning)


def _upload_script() -> None:
    """What the Methods page does with a checked file, and what app.py draws around it."""
    import streamlit as st

    from evidence.extraction import build
    from evidence.ui import components, data, state

    if st.session_state.pop("upload", None):
        raw = build.read_sheet_dir(build.ROOT / "tests" / "fixtures" / "good")
        problems = data.use_upload_if_valid("panel.zip", build.sheets_zip(raw))
        st.text(f"problems={len(problems)}")
    state.current()
    components.data_banner()
    components.notices(state.link_notices())
    st.text(f"label={data.active().label}")


def _uploaded(fixture_db_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ANAKINRA_DB", str(fixture_db_path))
    at = AppTest.from_function(_upload_script, default_timeout=TIMEOUT)
    at.session_state["upload"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> dict[str, str]:
    return dict(t.value.split("=", 1) for t in at.text)


# ---- an upload, stored -------------------------------------------------------------------------
def test_a_checked_upload_is_stored_and_its_link_carries_its_id(
    store: datasets.DatasetStore, fixture_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence.ui import sessions

    dataset_id, _ = _fixture_zip()
    at = _uploaded(fixture_db_path, monkeypatch)
    assert _texts(at) == {"problems": "0", "label": LABEL}
    assert store.ids() == [dataset_id] and store.get(dataset_id).name == "panel.zip"
    at.run()  # the rerun the Methods page asks for writes the link
    assert at.query_params["data"] == dataset_id
    assert "anyone with this page's link sees the same data" in _warnings(at)
    # Shared by the process, not held by the session: leaving it closes nothing others read.
    shared = at.session_state["uploaded_data"]
    assert shared.dataset == dataset_id and shared.key == f"upload:{dataset_id}"
    assert all(con is not shared.con for con in sessions.held().values())


def test_the_link_opens_the_same_data_in_a_new_session(
    store: datasets.DatasetStore, app: AppTest
) -> None:
    dataset_id, packed = _fixture_zip()
    store.put(dataset_id, "panel.zip", packed)
    app.query_params.update({"data": dataset_id, "exclude": "Alpha2020"})
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert LABEL in _warnings(app) and not _infos(app)
    assert app.session_state["uploaded_data"].dataset == dataset_id
    assert app.session_state["slice"].exclude == ("Alpha2020",)  # a study of the fixture's data
    assert app.query_params["data"] == dataset_id
    app.button(key="back_to_shipped").click().run()
    assert "data" not in app.query_params and not _warnings(app)


def test_sessions_opening_one_link_share_one_build(
    store: datasets.DatasetStore, shipped_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id, packed = _fixture_zip()
    store.put(dataset_id, "panel.zip", packed)
    builds = []
    original = build.from_sheets_zip
    monkeypatch.setattr(
        build, "from_sheets_zip", lambda *a: builds.append(a[0]) or original(*a)
    )  # fmt: skip
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    cons = []
    for _ in range(3):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
        at.query_params["data"] = dataset_id
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        cons.append(at.session_state["uploaded_data"].con)
    assert builds == ["panel.zip"]
    assert cons[0] is cons[1] is cons[2]


# ---- what cannot be opened ---------------------------------------------------------------------
NOT_STORED = (
    "The panel's extraction this link names is not in this server's dataset store (it was never "
    "stored there, or was removed to make room for newer ones); showing the shipped data."
)


def test_an_unknown_or_evicted_id_gives_a_notice_and_the_shipped_data(
    store: datasets.DatasetStore, app: AppTest
) -> None:
    dataset_id, packed = _fixture_zip()
    app.query_params.update({"data": dataset_id, "exclude": "Strati2020"})
    app.run()  # never stored
    assert not app.exception, [e.value for e in app.exception]
    assert NOT_STORED in _infos(app) and not _warnings(app)
    assert "data" not in app.query_params  # the link now names what is shown
    assert app.session_state["slice"].exclude == ("Strati2020",)
    store.put(dataset_id, "panel.zip", packed)
    store.max_bytes = 1
    assert store.evict() == [dataset_id]  # removed to make room
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    again.query_params["data"] = dataset_id
    again.run()
    assert NOT_STORED in _infos(again)


def test_a_damaged_stored_file_gives_a_notice(store: datasets.DatasetStore, app: AppTest) -> None:
    dataset_id, packed = _fixture_zip()
    store.put(dataset_id, "panel.zip", packed)
    (Path(store.root) / f"{dataset_id}.zip").write_bytes(b"damaged on the volume")
    app.query_params["data"] = dataset_id
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    (notice,) = _infos(app)
    assert notice.startswith("The panel's extraction this link names could not be opened")
    assert "is damaged" in notice and notice.endswith("showing the shipped data.")


def test_with_sharing_off_uploads_stay_in_the_session(
    fixture_db_path: Path, shipped_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datasets.STORE_ENV, "off")
    st.cache_resource.clear()
    at = _uploaded(fixture_db_path, monkeypatch)
    assert _texts(at)["label"] == "your upload “panel.zip”"
    at.run()
    assert at.query_params["data"] == "upload"
    assert "in this browser session only" in _warnings(at)
    dataset_id, _ = _fixture_zip()
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    link = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    link.query_params["data"] = dataset_id
    link.run()
    assert any("its host turned sharing off" in i for i in _infos(link))


def test_a_store_that_cannot_take_the_upload_keeps_it_in_the_session(
    tmp_path: Path, fixture_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("where the store's folder should be")
    monkeypatch.setenv(datasets.STORE_ENV, str(blocker / "datasets"))
    st.cache_resource.clear()
    at = _uploaded(fixture_db_path, monkeypatch)
    assert _texts(at) == {"problems": "0", "label": "your upload “panel.zip”"}
    at.run()
    assert at.query_params["data"] == "upload"
    warning = _warnings(at)
    assert "in this browser session only" in warning
    assert "could not be stored for sharing by link (the server's dataset store cannot be " in (
        warning
    )
    assert not (blocker / "datasets").exists()


def test_a_full_disk_on_upload_says_so_and_keeps_nothing(
    store: datasets.DatasetStore, fixture_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while the upload is written (its sync fails, as a full disk's does)."""

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    at = _uploaded(fixture_db_path, monkeypatch)
    assert _texts(at) == {"problems": "0", "label": "your upload “panel.zip”"}
    at.run()
    assert at.query_params["data"] == "upload"  # no dataset id in the link: nothing to share
    warning = _warnings(at)
    assert "the server's dataset store is full (no space left on its disk)" in warning
    assert "in this browser session only" in warning
    assert store.ids() == [] and sorted(p.name for p in Path(store.root).iterdir()) == []
