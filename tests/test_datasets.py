"""The dataset store (evidence.datasets): content addressing, atomic writes, least-recently-used
eviction within a size cap, unknown ids, a full or unwritable store, concurrent writers, and the
same code on a URL (fsspec's memory file system) as on a folder."""

from __future__ import annotations

import errno
import multiprocessing
import os
import threading
import time
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from evidence import datasets
from evidence.datasets import DatasetStore, StoreError
from evidence.extraction import build

FIXTURE = Path(__file__).parent / "fixtures" / "good"


def _sheets(variant: int = 0) -> dict[str, bytes]:
    """The fixture's sheets; a variant differs by a trailing comment line in one sheet (the store
    does not validate, so any bytes do)."""
    raw = build.read_sheet_dir(FIXTURE)
    if variant:
        raw["quality"] = raw["quality"] + f"\n# variant {variant}\n".encode()
    return raw


def _packed(variant: int = 0) -> tuple[str, bytes]:
    raw = _sheets(variant)
    return build.sheets_checksum(raw), build.sheets_zip(raw)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore(str(tmp_path / "store"), 10 * 1024 * 1024)


# ---- content addressing ---------------------------------------------------------------------
def test_a_dataset_is_stored_under_the_sha256_of_its_sheets(store: DatasetStore) -> None:
    raw = _sheets()
    dataset_id = build.sheets_checksum(raw)
    stored = store.put(dataset_id, "panel.xlsx", build.sheets_zip(raw))
    assert stored.id == dataset_id and datasets.is_id(dataset_id)
    assert _files(Path(store.root)) == [f"{dataset_id}.used", f"{dataset_id}.zip"]
    found = store.get(dataset_id)
    assert found is not None and found.name == "panel.xlsx"
    # The file is the sheets byte for byte: the id is what the build records as sheets_sha256.
    assert build.read_sheets_zip("x", found.sheets_zip) == raw
    assert datasets.sheets_id(found.sheets_zip) == dataset_id
    con, problems = build.from_sheets_zip(found.name, found.sheets_zip, dataset_id)
    assert not problems
    info = dict(con.execute("SELECT key, value FROM build_info").fetchall())
    assert info["sheets_sha256"] == dataset_id and info["origin"] == "panel.xlsx"
    con.close()


def test_the_same_sheets_give_the_same_file_and_are_stored_once(store: DatasetStore) -> None:
    dataset_id, packed = _packed()
    assert build.sheets_zip(_sheets()) == packed  # deterministic: no time, fixed order
    store.put(dataset_id, "panel.xlsx", packed)
    before = (Path(store.root) / f"{dataset_id}.zip").read_bytes()
    store.put(dataset_id, "renamed.xlsx", packed)  # a second upload of the same sheets
    assert (Path(store.root) / f"{dataset_id}.zip").read_bytes() == before  # never rewritten
    assert store.ids() == [dataset_id] and store.get(dataset_id).name == "panel.xlsx"
    other_id, other = _packed(1)
    assert other_id != dataset_id
    store.put(other_id, "other.xlsx", other)
    assert store.ids() == sorted([dataset_id, other_id])


def test_sheets_stored_under_another_id_are_refused(store: DatasetStore) -> None:
    dataset_id, packed = _packed()
    other_id, _ = _packed(1)
    with pytest.raises(ValueError, match="do not hash"):
        store.put(other_id, "panel.xlsx", packed)
    with pytest.raises(ValueError, match="not a dataset id"):
        store.put("../../etc/passwd", "panel.xlsx", packed)
    with pytest.raises(ValueError, match="not a file of checked sheets"):
        store.put(dataset_id, "panel.xlsx", b"not a zip")
    assert store.ids() == []


def test_an_unknown_or_malformed_id_is_none(store: DatasetStore) -> None:
    assert store.get("0" * 64) is None
    for text in ("upload", "../" + "0" * 61, "A" * 64, "0" * 63, ""):
        assert not datasets.is_id(text)
        assert store.get(text) is None


def test_a_damaged_stored_file_is_refused_when_built(store: DatasetStore) -> None:
    dataset_id, packed = _packed()
    store.put(dataset_id, "panel.xlsx", packed)
    path = Path(store.root) / f"{dataset_id}.zip"
    _, other = _packed(1)
    path.write_bytes(other)  # changed on the volume behind the store's back
    found = store.get(dataset_id)
    con, problems = build.from_sheets_zip(found.name, found.sheets_zip, dataset_id)
    assert con is None and "does not hold the sheets its identifier names" in problems[0].message
    path.write_bytes(b"garbage" * 100)
    con, problems = build.from_sheets_zip("panel.xlsx", path.read_bytes(), dataset_id)
    assert con is None and "is damaged" in problems[0].message


# ---- atomic writes, full and unwritable stores ---------------------------------------------
class _Full:
    """A file handle that takes `room` bytes and then fails as a full disk does."""

    def __init__(self, handle: object, room: int):
        self.handle, self.room = handle, room

    def __enter__(self) -> _Full:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def write(self, data: bytes) -> int:
        self.handle.write(data[: self.room])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> object:
        return getattr(self.handle, name)


def test_a_full_disk_leaves_nothing_half_written(
    store: DatasetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id, packed = _packed()
    opened = store.fs.open

    def full(path: str, mode: str = "rb", **kwargs: object) -> _Full:
        return _Full(opened(path, mode), 100)

    monkeypatch.setattr(store.fs, "open", full)
    with pytest.raises(StoreError, match="full") as caught:
        store.put(dataset_id, "panel.xlsx", packed)
    assert caught.value.reason == "full"
    assert _files(Path(store.root)) == []  # no file under its name, no temporary file left
    assert store.get(dataset_id) is None
    monkeypatch.undo()
    store.put(dataset_id, "panel.xlsx", packed)  # room again: stored whole
    assert store.get(dataset_id).sheets_zip.startswith(packed[:100])


def test_a_full_disk_found_only_when_syncing_leaves_nothing_half_written(
    store: DatasetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delayed allocation, or a network file system's write-back, reports a full disk at fsync:
    the written bytes may not be on disk, so the file must not get the dataset's name."""
    dataset_id, packed = _packed()

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StoreError, match="full") as caught:
        store.put(dataset_id, "panel.xlsx", packed)
    assert caught.value.reason == "full"
    assert _files(Path(store.root)) == []
    assert store.get(dataset_id) is None


def test_a_failure_before_the_rename_leaves_nothing_under_the_datasets_name(
    store: DatasetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id, packed = _packed()

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store.fs, "mv", refuse)
    with pytest.raises(StoreError, match="cannot be written"):
        store.put(dataset_id, "panel.xlsx", packed)
    assert _files(Path(store.root)) == []


def test_an_unwritable_store_says_so_and_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id, packed = _packed()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    unwritable = DatasetStore(str(blocker / "store"), 10 * 1024 * 1024)
    with pytest.raises(StoreError, match="cannot be written") as caught:
        unwritable.put(dataset_id, "panel.xlsx", packed)
    assert caught.value.reason == "unwritable"
    assert unwritable.get(dataset_id) is None and unwritable.ids() == []
    # A store whose files can be read but whose use cannot be recorded still serves them.
    readable = DatasetStore(str(tmp_path / "store"), 10 * 1024 * 1024)
    readable.put(dataset_id, "panel.xlsx", packed)
    readable._touched.clear()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(readable.fs, "touch", refuse)  # fsspec shares one local file system
    assert readable.get(dataset_id).name == "panel.xlsx"


def test_a_reader_never_sees_a_partial_file(store: DatasetStore) -> None:
    """While writers store datasets, a reader polling their ids finds each whole or not at all."""
    packed = [_packed(variant) for variant in range(1, 9)]
    seen: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for dataset_id, _ in packed:
                found = store.get(dataset_id)
                if found is not None:
                    assert datasets.sheets_id(found.sheets_zip) == dataset_id
                    seen.append(dataset_id)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for dataset_id, data in packed:
            store.put(dataset_id, "panel.xlsx", data)
    finally:
        stop.set()
        reader.join()
    assert store.ids() == sorted(dataset_id for dataset_id, _ in packed)


def test_a_crashed_writers_temporary_file_is_removed_later(store: DatasetStore) -> None:
    folder = Path(store.root)
    folder.mkdir(parents=True)
    stale = folder / f"{datasets.TEMP_PREFIX}{'0' * 64}-dead"
    stale.write_bytes(b"half a zip")
    fresh = folder / f"{datasets.TEMP_PREFIX}{'1' * 64}-writing"
    fresh.write_bytes(b"another writer, now")
    old = time.time() - datasets.STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    dataset_id, packed = _packed()
    store.put(dataset_id, "panel.xlsx", packed)
    assert not stale.exists() and fresh.exists()
    assert store.ids() == [dataset_id]  # temporary files are never taken for datasets


# ---- the size cap ----------------------------------------------------------------------------
def _set_used(store: DatasetStore, dataset_id: str, when: float) -> None:
    os.utime(Path(store.root) / f"{dataset_id}.used", (when, when))


def test_the_least_recently_used_datasets_are_evicted_past_the_cap(tmp_path: Path) -> None:
    packed = [_packed(variant) for variant in range(1, 5)]
    size = max(len(data) for _, data in packed) + 200
    store = DatasetStore(str(tmp_path / "store"), 3 * size)
    (a, _), (b, _), (c, _), (d, d_zip) = packed
    now = time.time()
    for age, (dataset_id, data) in zip((300, 200, 100), packed[:3], strict=True):
        store.put(dataset_id, "panel.xlsx", data)
        _set_used(store, dataset_id, now - age)
    # A is the oldest stored but was just read: B is now the least recently used.
    store._touched.clear()
    assert store.get(a) is not None
    assert store.last_used(a) > store.last_used(c) > store.last_used(b)
    store.put(d, "panel.xlsx", d_zip)
    assert store.ids() == sorted([a, c, d])
    assert store.get(b) is None  # evicted: unknown from now on
    assert not (Path(store.root) / f"{b}.used").exists()
    assert store.total_bytes() <= store.max_bytes


def test_reads_are_recorded_at_most_once_per_interval(store: DatasetStore) -> None:
    dataset_id, packed = _packed()
    store.put(dataset_id, "panel.xlsx", packed)
    _set_used(store, dataset_id, 1_000_000)
    store.get(dataset_id)  # recorded at the put, moments ago: not again
    assert store.last_used(dataset_id) == 1_000_000
    store._touched.clear()
    store.get(dataset_id)
    assert store.last_used(dataset_id) > time.time() - 60


def test_a_dataset_larger_than_the_cap_is_refused(tmp_path: Path) -> None:
    dataset_id, packed = _packed()
    store = DatasetStore(str(tmp_path / "store"), len(packed) // 2)
    with pytest.raises(StoreError, match="more than") as caught:
        store.put(dataset_id, "panel.xlsx", packed)
    assert caught.value.reason == "too large"
    assert store.ids() == []


# ---- concurrent writers ----------------------------------------------------------------------
def _store_once(root: str, barrier: object, name: str) -> None:
    dataset_id, packed = _packed()
    barrier.wait()
    DatasetStore(root, 10 * 1024 * 1024).put(dataset_id, name, packed)


def test_processes_storing_the_same_upload_at_once_leave_one_whole_file(tmp_path: Path) -> None:
    """As two replicas do when a dataset is uploaded through each at the same moment."""
    root = str(tmp_path / "store")
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(6)
    writers = [
        context.Process(target=_store_once, args=(root, barrier, f"panel-{i}.xlsx"))
        for i in range(6)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    dataset_id, _ = _packed()
    assert _files(Path(root)) == [f"{dataset_id}.used", f"{dataset_id}.zip"]
    found = DatasetStore(root, 10 * 1024 * 1024).get(dataset_id)
    assert datasets.sheets_id(found.sheets_zip) == dataset_id
    assert found.name in {f"panel-{i}.xlsx" for i in range(6)}
    with zipfile.ZipFile(BytesIO(found.sheets_zip)) as zf:
        assert zf.testzip() is None


def test_threads_storing_at_once_within_a_small_cap_keep_the_store_consistent(
    tmp_path: Path,
) -> None:
    packed = [_packed(variant) for variant in range(1, 13)]
    size = max(len(data) for _, data in packed) + 200
    store = DatasetStore(str(tmp_path / "store"), 4 * size)
    errors: list[BaseException] = []

    def write(items: list[tuple[str, bytes]]) -> None:
        try:
            for dataset_id, data in items:
                store.put(dataset_id, "panel.xlsx", data)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(packed[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for dataset_id in store.ids():
        assert datasets.sheets_id(store.get(dataset_id).sheets_zip) == dataset_id
    assert not [n for n in _files(Path(store.root)) if n.startswith(datasets.TEMP_PREFIX)]
    assert store.total_bytes() <= store.max_bytes + size  # a racing writer may overshoot by one


# ---- where the store is ----------------------------------------------------------------------
def test_a_url_store_runs_the_same_code() -> None:
    store = DatasetStore(f"memory://datasets-{os.getpid()}-{time.time_ns()}", 10 * 1024 * 1024)
    dataset_id, packed = _packed()
    store.put(dataset_id, "panel.xlsx", packed)
    assert store.ids() == [dataset_id]
    assert store.get(dataset_id).name == "panel.xlsx"
    assert store.get("0" * 64) is None
    store.max_bytes = 1
    other_id, other = _packed(1)
    store.max_bytes = len(other) + 200
    store.put(other_id, "other.xlsx", other)
    assert store.ids() == [other_id]  # the older one evicted


def test_the_environment_names_the_store_and_turns_sharing_off(tmp_path: Path) -> None:
    default = DatasetStore.from_environment({})
    assert default is not None and Path(default.root) == datasets.DEFAULT_STORE
    assert default.max_bytes == datasets.DEFAULT_CAP_MB * 1024 * 1024
    named = DatasetStore.from_environment(
        {datasets.STORE_ENV: str(tmp_path), datasets.CAP_ENV: "1.5"}
    )
    assert named.root == str(tmp_path) and named.max_bytes == int(1.5 * 1024 * 1024)
    assert DatasetStore.from_environment({datasets.CAP_ENV: "-3"}).max_bytes == (
        datasets.DEFAULT_CAP_MB * 1024 * 1024
    )
    for off in ("off", "OFF", "none", "0", "false"):
        assert DatasetStore.from_environment({datasets.STORE_ENV: off}) is None
