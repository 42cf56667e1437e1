"""The dataset store: a panel's checked extraction kept by the SHA-256 of its sheets, so that a
link carrying that identifier (`data=<64 hex digits>`) opens the same data on any server process
that reads the same store, after a reload, in another browser or on another replica.

    store = DatasetStore.from_environment()        # None when the host turned sharing off
    stored = store.put(sheets_sha256, "panel.xlsx", build.sheets_zip(raw))
    found = store.get(sheets_sha256)               # a Dataset, or None (unknown or evicted)

**What is kept.** One file per dataset, `<id>.zip`: the checked sheets as `build.sheets_zip`
writes them (a zip of `<sheet>.csv`, the same bytes for the same sheets) with the name the panel
uploaded them under in the archive's comment. The id is `build.sheets_checksum` of the sheets,
the data version the build records in build_info: `put` refuses a file whose sheets hash to
another id, and whoever builds from a stored file checks it again (`build.from_sheets_zip`).

**Atomic, immutable.** A file is written under a temporary name (`.incoming-<id>-<random>`),
synced, then moved onto `<id>.zip` (a rename on a local or shared file system, a single object
written on an object store): a reader sees the whole file or none, a failed write (full disk,
unwritable store) leaves no file under the dataset's name and its temporary file is removed. A
stored id is never written again: the same sheets give the same bytes, so two servers storing
one upload at once leave one file either way (the panel's file name is the one of whichever
finished last).

**Size cap, least recently used first.** The store holds at most `max_bytes` (ANAKINRA_DATASETS_MB,
200 MB by default: a panel's extraction is tens to hundreds of KB). Each read records the
dataset's use in a marker file (`<id>.used`, at most once every TOUCH_SECONDS per process); when
a new dataset takes the store past its cap, the datasets used longest ago are removed until it
fits. A link to a removed dataset then opens the shipped data with a notice, as an unknown one
does. Temporary files a crashed writer left are removed after STALE_TEMP_SECONDS.

**Where.** ANAKINRA_DATASETS names the store: a folder (default `data/datasets`), or any URL
fsspec reads and writes (`file:///srv/datasets`, a shared volume's mount; `s3://bucket/prefix`
with the s3fs package installed; `memory://` for tests). Every store goes through the same code,
fsspec's file system interface. `ANAKINRA_DATASETS=off` turns sharing off: uploads then live in
the browser session only.

No Streamlit here: the app reaches the store through `evidence.ui.data`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO

import fsspec
from fsspec.core import url_to_fs

from evidence.extraction import build
from evidence.extraction.upload import UploadError

STORE_ENV = "ANAKINRA_DATASETS"
CAP_ENV = "ANAKINRA_DATASETS_MB"
OFF = frozenset({"off", "none", "no", "false", "0"})
DEFAULT_STORE = build.ROOT / "data" / "datasets"
DEFAULT_CAP_MB = 200
TOUCH_SECONDS = 300.0
STALE_TEMP_SECONDS = 3600.0
MAX_NAME_CHARS = 200
SUFFIX, USED, TEMP_PREFIX = ".zip", ".used", ".incoming-"
_ID = re.compile(r"[0-9a-f]{64}")


def is_id(text: str) -> bool:
    """Whether `text` has the form of a dataset id (a SHA-256 in lowercase hex)."""
    return bool(_ID.fullmatch(text))


class StoreError(Exception):
    """A dataset could not be stored; `reason` is "full", "unwritable" or "too large", and the
    message says it in words for the person who uploaded it."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Dataset:
    """A stored dataset: its id, the name it was uploaded under, its file (`build.sheets_zip`
    with the name in the archive's comment)."""

    id: str
    name: str
    sheets_zip: bytes


def sheets_id(sheets_zip: bytes) -> str:
    """The id of the sheets a `build.sheets_zip` file holds (their `build.sheets_checksum`);
    UploadError when it is not such a file."""
    return build.sheets_checksum(build.read_sheets_zip("dataset", sheets_zip))


def _named(sheets_zip: bytes, name: str) -> bytes:
    """The file with `name` in its archive comment (only the archive's directory is written
    again; the members stay as they are)."""
    buffer = BytesIO(sheets_zip)
    with zipfile.ZipFile(buffer, "a") as zf:
        zf.comment = json.dumps({"name": name[:MAX_NAME_CHARS]}).encode("utf-8")
    return buffer.getvalue()


def _name_of(stored: bytes) -> str:
    try:
        with zipfile.ZipFile(BytesIO(stored)) as zf:
            name = json.loads(zf.comment.decode("utf-8"))["name"]
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError):
        return "an extraction"
    return str(name)[:MAX_NAME_CHARS] if name else "an extraction"


class DatasetStore:
    """Datasets by id in one folder of a file system fsspec reaches (see the module's text)."""

    def __init__(self, url: str, max_bytes: int, fs: fsspec.AbstractFileSystem | None = None):
        if fs is None:
            fs, root = url_to_fs(url)
        else:
            root = url
        self.url = url
        self.fs = fs
        self.root = root.rstrip("/")
        self.max_bytes = max_bytes
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> DatasetStore | None:
        """The store ANAKINRA_DATASETS names (a folder or a URL; default data/datasets) with the
        cap ANAKINRA_DATASETS_MB; None when the variable says sharing is off."""
        environ = os.environ if environ is None else environ
        url = environ.get(STORE_ENV, "").strip() or str(DEFAULT_STORE)
        if url.lower() in OFF:
            return None
        try:
            cap_mb = float(environ.get(CAP_ENV, DEFAULT_CAP_MB))
        except ValueError:
            cap_mb = DEFAULT_CAP_MB
        if not cap_mb > 0:
            cap_mb = DEFAULT_CAP_MB
        return cls(url, int(cap_mb * 1024 * 1024))

    def __repr__(self) -> str:
        return f"DatasetStore({self.url!r}, max_bytes={self.max_bytes})"

    # ---- paths ---------------------------------------------------------------------------
    def _path(self, dataset_id: str, suffix: str = SUFFIX) -> str:
        return f"{self.root}/{dataset_id}{suffix}"

    # ---- reading -------------------------------------------------------------------------
    def get(self, dataset_id: str) -> Dataset | None:
        """The dataset stored under `dataset_id`, or None when there is none (never stored, or
        removed to make room). Its use is recorded for the eviction order. The file's sheets
        are not checked here: whoever builds from them does (`build.from_sheets_zip`)."""
        if not is_id(dataset_id):
            return None
        path = self._path(dataset_id)
        try:
            size = self.fs.size(path)
            if size is None or size > self.max_bytes:
                return None
            stored = self.fs.cat_file(path)
        except (FileNotFoundError, OSError):
            return None
        self._touch(dataset_id)
        return Dataset(dataset_id, _name_of(stored), stored)

    def ids(self) -> list[str]:
        """Every stored dataset's id."""
        return sorted(self._entries())

    def total_bytes(self) -> int:
        return sum(self._entries().values())

    def _entries(self) -> dict[str, int]:
        """{id: size} of every stored dataset."""
        try:
            listed = self.fs.ls(self.root, detail=True)
        except OSError:  # not created yet, or not a folder
            return {}
        found = {}
        for entry in listed:
            base = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            stem = base.removesuffix(SUFFIX)
            if base.endswith(SUFFIX) and is_id(stem) and entry.get("type") == "file":
                found[stem] = int(entry.get("size") or 0)
        return found

    def last_used(self, dataset_id: str) -> float:
        """When the dataset was last read or stored (seconds since the epoch): its marker's time,
        else its file's."""
        for path in (self._path(dataset_id, USED), self._path(dataset_id)):
            try:
                return self.fs.modified(path).timestamp()
            except (FileNotFoundError, OSError, NotImplementedError):
                continue
        return 0.0

    def _touch(self, dataset_id: str, force: bool = False) -> None:
        """Record a use (at most once every TOUCH_SECONDS per process, unless `force`); a store
        that cannot be written is still read."""
        now = time.monotonic()
        with self._lock:
            if not force and now - self._touched.get(dataset_id, -TOUCH_SECONDS) < TOUCH_SECONDS:
                return
            self._touched[dataset_id] = now
        with contextlib.suppress(OSError):
            self.fs.touch(self._path(dataset_id, USED), truncate=True)

    # ---- writing -------------------------------------------------------------------------
    def put(self, dataset_id: str, name: str, sheets_zip: bytes) -> Dataset:
        """Store the sheets (`build.sheets_zip`) under `dataset_id`, their SHA-256, with the file
        name they were uploaded under; the stored Dataset. Nothing is rewritten when the id is
        already stored (its use is recorded). Raises ValueError when the sheets are not the ones
        `dataset_id` names, StoreError when the store is full, cannot be written or the dataset
        is larger than the store's cap (nothing is left under the dataset's name then)."""
        if not is_id(dataset_id):
            raise ValueError(f"not a dataset id: {dataset_id[:80]!r}")
        try:
            if sheets_id(sheets_zip) != dataset_id:
                raise ValueError("the sheets do not hash to the dataset id they are stored under")
        except UploadError as err:
            raise ValueError(f"not a file of checked sheets: {err.problems[0].message}") from err
        stored = _named(sheets_zip, name)
        path = self._path(dataset_id)
        if len(stored) > self.max_bytes:
            raise StoreError(
                "too large",
                f"it takes {len(stored) / 1e6:.1f} MB, more than the "
                f"{self.max_bytes / 1e6:.0f} MB the server's dataset store may hold",
            )
        if self._exists(path):
            self._touch(dataset_id, force=True)
            with contextlib.suppress(OSError):
                kept = self.fs.cat_file(path)
                return Dataset(dataset_id, _name_of(kept), kept)
        self._write(path, stored, dataset_id)
        self._touch(dataset_id, force=True)
        self._clean_temporary()
        self.evict(keep=dataset_id)
        return Dataset(dataset_id, _name_of(stored), stored)

    def _exists(self, path: str) -> bool:
        try:
            return bool(self.fs.exists(path))
        except OSError:
            return False

    def _write(self, path: str, data: bytes, dataset_id: str) -> None:
        """Write to a temporary name, sync, move onto `path`; on failure remove what was
        written and raise StoreError."""
        temporary = f"{self.root}/{TEMP_PREFIX}{dataset_id}-{uuid.uuid4().hex}"
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            with self.fs.open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                _sync(handle)
            self.fs.mv(temporary, path)
        except OSError as err:
            with contextlib.suppress(OSError):
                self.fs.rm(temporary)
            raise _store_error(err) from err

    def _clean_temporary(self) -> None:
        """Remove temporary files older than STALE_TEMP_SECONDS (a writer that crashed)."""
        try:
            listed = self.fs.ls(self.root, detail=False)
        except OSError:
            return
        for name in listed:
            if name.rstrip("/").rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
                with contextlib.suppress(OSError, NotImplementedError):
                    if time.time() - self.fs.modified(name).timestamp() > STALE_TEMP_SECONDS:
                        self.fs.rm(name)

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove the datasets used longest ago until the store is within its cap (never
        `keep`, the one just stored); the ids removed."""
        entries = self._entries()
        total = sum(entries.values())
        removed: list[str] = []
        if total <= self.max_bytes:
            return removed
        for dataset_id in sorted(entries, key=self.last_used):
            if total <= self.max_bytes:
                break
            if dataset_id == keep:
                continue
            try:
                self.fs.rm(self._path(dataset_id))
            except FileNotFoundError:
                pass  # another server removed it first
            except OSError:
                continue
            with contextlib.suppress(OSError):
                self.fs.rm(self._path(dataset_id, USED))
            total -= entries[dataset_id]
            removed.append(dataset_id)
        return removed


def _sync(handle: object) -> None:
    """Make a local or mounted file's bytes durable before it is renamed into place. A full disk
    often shows only here (delayed allocation, a network file system's write-back), so its error
    is raised, not ignored: a file whose bytes never reached the disk must not get the dataset's
    name. Only a handle without a descriptor (an object store's buffer, written whole when
    closed) or a file system that cannot sync is passed over."""
    try:
        descriptor = handle.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return
    try:
        os.fsync(descriptor)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise


def _store_error(err: OSError) -> StoreError:
    """A write's failure in words for the person who uploaded the file."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError("full", "the server's dataset store is full (no space left on its disk)")
    detail = err.strerror or type(err).__name__
    return StoreError("unwritable", f"the server's dataset store cannot be written ({detail})")
