"""What one browser session may hold on the server, and when it is let go.

A session's uploaded extraction is an in-memory DuckDB database. Each is bounded (one thread, a
small memory limit) and held here by session id, at most one per session, and closed:

- when the session loads another upload (the first one's connection is closed);
- when it goes back to the shipped data, or clears its state ("Clear cache");
- when the session ends. Streamlit 1.67 has no session-end hook for this: a closed tab's session
  is kept for the reconnect window (`server.disconnectedSessionTTL`) and then simply dropped
  from its storage, without `AppSession.shutdown`. So `sweep` closes every held connection whose
  session the runtime no longer lists (`SessionManager.list_sessions()`: the connected sessions
  and those still inside their reconnect window). It runs on the runtime's event loop (where the
  session manager may be read) at the start of every script run and every SWEEP_SECONDS in a
  daemon thread, which starts with the first upload.

Nothing here reads session state: the registry is process-wide, keyed by session id.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Collection

import duckdb
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from evidence.extraction.build import UPLOAD_DATABASE_CONFIG

# The bounds the upload's database was built with (evidence.extraction.build), set again here
# so a connection handed in from anywhere is bounded alike.
UPLOAD_THREADS = UPLOAD_DATABASE_CONFIG["threads"]
UPLOAD_MEMORY_LIMIT = UPLOAD_DATABASE_CONFIG["memory_limit"]
SWEEP_SECONDS = 60.0

_lock = threading.Lock()
_uploads: dict[str, duckdb.DuckDBPyConnection] = {}
_sweeper: threading.Thread | None = None


def current_id() -> str | None:
    """The id of the session running this script (None outside a run)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else None


def bound(con: duckdb.DuckDBPyConnection) -> None:
    """One thread and a small memory limit for an upload's database (both are settings of the
    whole database, so every cursor of it inherits them)."""
    with con.cursor() as cursor:
        cursor.execute(f"SET threads = {UPLOAD_THREADS}")
        cursor.execute(f"SET memory_limit = '{UPLOAD_MEMORY_LIMIT}'")


def hold(session_id: str, con: duckdb.DuckDBPyConnection) -> None:
    """Make `con` the one upload `session_id` holds; the one it held before is closed."""
    with _lock:
        previous = _uploads.get(session_id)
        _uploads[session_id] = con
    if previous is not None and previous is not con:
        _close(previous)
    _start_sweeper()


def release(session_id: str | None) -> bool:
    """Close the upload `session_id` holds, if any; whether there was one."""
    with _lock:
        con = _uploads.pop(session_id, None) if session_id is not None else None
    if con is None:
        return False
    _close(con)
    return True


def held() -> dict[str, duckdb.DuckDBPyConnection]:
    """Every session's upload, by session id (a copy)."""
    with _lock:
        return dict(_uploads)


def sweep(live: Collection[str]) -> list[str]:
    """Close the uploads of every session not in `live`; the ids of those closed."""
    with _lock:
        ended = [session_id for session_id in _uploads if session_id not in live]
        closing = [_uploads.pop(session_id) for session_id in ended]
    for con in closing:
        _close(con)
    for session_id in ended:
        print(f"closed the uploaded extraction of ended session {session_id}", file=sys.stderr)
    return ended


def sweep_ended() -> None:
    """Schedule `sweep` with the runtime's live sessions on its event loop (nothing to do when
    no session holds an upload, or outside a running server)."""
    if not held() or not Runtime.exists():
        return
    runtime = Runtime.instance()
    try:
        loop = runtime._get_async_objs().eventloop
    except RuntimeError:  # not started yet, or stopping
        return
    if not loop.is_closed():
        loop.call_soon_threadsafe(_sweep_runtime, runtime)


def _sweep_runtime(runtime: Runtime) -> None:
    """On the event loop: the sessions the runtime still has (connected or in their reconnect
    window), then `sweep`."""
    live = {info.session.id for info in runtime._session_mgr.list_sessions()}
    sweep(live)


def _start_sweeper() -> None:
    global _sweeper
    with _lock:
        if _sweeper is not None:
            return
        _sweeper = threading.Thread(target=_sweep_forever, name="upload-sweeper", daemon=True)
    _sweeper.start()


def _sweep_forever() -> None:
    while True:
        time.sleep(SWEEP_SECONDS)
        try:
            sweep_ended()
        except Exception as err:  # the sweeper must outlive any one failure
            print(f"upload sweep failed: {type(err).__name__}: {err}", file=sys.stderr)


def _close(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # already closed
        con.close()
