"""Run one piece of work on an upload in a separate, bounded process, and bring back its bytes.

A panel's upload is checked on the same server that answers everyone's filter changes. Checking
it in the server's own process would let one file hold the interpreter (every other session
waits for it) and keep whatever memory the check needed. So `run` does the work in a child
process and takes back only bytes:

- **Process.** The child is forked from a `forkserver` process that has imported the modules
  named with `preload` once (openpyxl, pyarrow, the validator), so a check starts in about ten
  milliseconds without forking the threaded server itself (nor running the app's script again,
  as multiprocessing would), and it runs at a lower CPU priority (nice +10) than the server: on
  a busy machine the server's sessions go first.
- **Memory.** The child limits its own address space (`RLIMIT_AS`) to what it had at start plus
  `memory_mb`; an allocation past that fails inside the child (MemoryError), never in the server,
  and the child's memory goes back to the system when it exits.
- **Time.** The server waits at most `seconds` for the answer, then kills the child (SIGKILL);
  `RLIMIT_CPU` backs that up from inside.
- **Concurrency.** At most `concurrent` children run at once (a process-wide semaphore); a
  further upload waits up to `wait_seconds` for a slot and is then told the server is busy.
- **What crosses back.** The child sends byte strings, read with a size cap: nothing the child
  sends is unpickled by the server.

For an upload (`build.from_upload`) the child reads the file, validates every sheet and sends
back either the problems (JSON) or the database's rows, one Arrow IPC stream a table; the server
creates a fresh in-memory DuckDB (one thread, 128 MB) with the schema and inserts them, which
takes milliseconds and checks the schema's constraints again. The rows are small (at most the
sheets' text: 8 MB a sheet) and plain data. The child builds no DuckDB itself: DuckDB reserves
about 1.5 GB of address space as it opens and writes, which is what RLIMIT_AS limits; and a
database file written by the child would put an upload on disk.

The limits come from environment variables (`ANAKINRA_UPLOAD_SECONDS`,
`ANAKINRA_UPLOAD_MEMORY_MB`, `ANAKINRA_UPLOAD_WORKERS`, `ANAKINRA_UPLOAD_WAIT_SECONDS`), read
once at import; README.md's "Hosting" section lists them. Nothing here knows about sheets:
`build.from_upload` says what runs in the child and what comes back.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.context
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import popen_forkserver, spawn
from multiprocessing.connection import Connection
from typing import Any

# Lower than the server (0): a check yields the CPU to the sessions it shares the machine with.
CHILD_NICENESS = 10


def _setting(name: str, default: float) -> float:
    """A positive number from the environment, or `default` when unset or not a positive number."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


@dataclass(frozen=True)
class Limits:
    """How much one check may take, and how many may run at once."""

    seconds: float = 30.0
    memory_mb: int = 512
    concurrent: int = 2
    wait_seconds: float = 10.0
    result_mb: int = 96  # the most bytes one answer may carry back

    @classmethod
    def from_environment(cls) -> Limits:
        default = cls()
        return cls(
            seconds=_setting("ANAKINRA_UPLOAD_SECONDS", default.seconds),
            memory_mb=int(_setting("ANAKINRA_UPLOAD_MEMORY_MB", default.memory_mb)),
            concurrent=int(_setting("ANAKINRA_UPLOAD_WORKERS", default.concurrent)),
            wait_seconds=_setting("ANAKINRA_UPLOAD_WAIT_SECONDS", default.wait_seconds),
        )


LIMITS = Limits.from_environment()


class Refused(Exception):
    """The work did not finish: `reason` is busy, time, memory or failed (with `detail`)."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


_slots = threading.BoundedSemaphore(LIMITS.concurrent)
_lock = threading.Lock()
# What the fork server imports once, before it forks any child.
_PRELOAD: list[str] = []


def preload(*modules: str) -> None:
    """Have the fork server import `modules` once, so that a child starts with them loaded.

    Takes effect if called before the first `run` (the first child starts the server), as a
    module that uses `run` does when it is imported. The server imports them from its working
    directory: started from the repository (as `make run`, the Dockerfile and the harness do),
    `evidence` is found; elsewhere each child imports what it needs itself (slower, not wrong).
    """
    with _lock:
        _PRELOAD.extend(m for m in modules if m not in _PRELOAD)


class _Popen(popen_forkserver.Popen):
    """The forkserver's launcher, minus one step: the child does not import the parent's
    `__main__` again.

    multiprocessing has every child (and the fork server) re-import the parent's main module
    so that functions defined there can be found. In a Streamlit server that module is the
    script being run (app.py, swapped into sys.modules["__main__"] for each run): a child would
    run the whole app before its check. The work here is always a function of an importable
    module, so the main module is left out of what the child is told to prepare.
    """

    def _launch(self, process_obj: Any) -> None:
        with _lock:
            real = spawn.get_preparation_data

            def without_main(name: str) -> dict[str, Any]:
                data = real(name)
                data.pop("init_main_from_name", None)
                data.pop("init_main_from_path", None)
                data.pop("main_path", None)
                return data

            spawn.get_preparation_data = without_main
            try:
                multiprocessing.set_forkserver_preload(list(_PRELOAD))
                super()._launch(process_obj)
            finally:
                spawn.get_preparation_data = real


class _Process(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


def _address_space() -> int:
    """This process's current virtual size in bytes (Linux), or 0 when it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _bound_self(memory_bytes: int, seconds: float) -> None:
    """In the child: lower priority, cap the address space and the CPU time."""
    import resource

    os.nice(CHILD_NICENESS)
    start = _address_space()
    if start:
        limit = start + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = math.ceil(seconds) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _child(
    send: Connection,
    receive: Connection,
    target: Callable[..., list[bytes]],
    args: tuple[Any, ...],
    memory_bytes: int,
    seconds: float,
) -> None:
    """The child's whole life: bound itself, read its data, do the work, send `ok <n>` and n
    byte strings (or `memory` / `error <type>`)."""
    try:
        _bound_self(memory_bytes, seconds)
        data = receive.recv_bytes()
        receive.close()
        parts = target(*args, data)
        send.send_bytes(b"ok %d" % len(parts))
        for part in parts:
            send.send_bytes(part)
    except MemoryError:
        send.send_bytes(b"memory")
    except Exception as err:  # the server is told the kind, never the traceback
        send.send_bytes(b"error " + type(err).__name__.encode("ascii", "replace"))
    finally:
        send.close()


def _receive(receive: Connection, deadline: float, limit: int) -> bytes:
    if not receive.poll(max(0.0, deadline - time.monotonic())):
        raise Refused("time")
    try:
        return receive.recv_bytes(limit)
    except EOFError:
        raise Refused("failed", "the checking process ended without an answer") from None
    except OSError as err:  # longer than `limit`
        raise Refused("failed", f"its answer was too large ({err})") from None


def _answer(receive: Connection, deadline: float, cap: int) -> list[bytes]:
    """The child's byte strings, read by `deadline` and `cap` bytes in all."""
    header = _receive(receive, deadline, 64).decode("ascii", "replace")
    if header == "memory":
        raise Refused("memory")
    if header.startswith("error "):
        raise Refused("failed", header.removeprefix("error "))
    count = int(header.removeprefix("ok ")) if header.startswith("ok ") else -1
    if not 0 <= count <= 64:
        raise Refused("failed", "it sent an answer that could not be read")
    parts: list[bytes] = []
    for _ in range(count):
        parts.append(_receive(receive, deadline, max(cap, 1)))
        cap -= len(parts[-1])
    return parts


def _send(connection: Connection, data: bytes) -> None:
    """Write `data` to the child from the buffer itself (no copy), then close; a child that is
    gone (killed, crashed) ends it."""
    try:
        connection.send_bytes(data)
    except OSError:
        pass
    finally:
        connection.close()


def run(
    target: Callable[..., list[bytes]],
    args: tuple[Any, ...],
    data: bytes = b"",
    limits: Limits | None = None,
    slots: threading.BoundedSemaphore | None = None,
) -> list[bytes]:
    """`target(*args, data)` in a bounded child process; the byte strings it returned.

    `target` must be a module-level function (the child imports it by name). `data` (an
    upload's bytes) goes to the child through a pipe, written from the buffer itself by a helper
    thread: pickled with the arguments it would be copied, twice, in the server. Raises
    `Refused` when no slot freed up in time (busy), the child ran out of time or memory, or it
    failed. `limits` and `slots` default to the module's, read when called.
    """
    limits = LIMITS if limits is None else limits
    slots = _slots if slots is None else slots
    if not slots.acquire(timeout=limits.wait_seconds):
        raise Refused("busy")
    try:
        receive, send = multiprocessing.Pipe(duplex=False)
        data_in, data_out = multiprocessing.Pipe(duplex=False)
        process = _Process(
            target=_child,
            args=(send, data_in, target, args, limits.memory_mb * 1024 * 1024, limits.seconds),
            daemon=True,
        )
        deadline = time.monotonic() + limits.seconds
        process.start()
        send.close()
        data_in.close()
        threading.Thread(target=_send, args=(data_out, data), daemon=True).start()
        answered = False
        try:
            parts = _answer(receive, deadline, limits.result_mb * 1024 * 1024)
            answered = True
            return parts
        except Refused as refused:
            if refused.reason == "failed":
                process.join(timeout=1.0)
                if process.exitcode == -signal.SIGXCPU:  # its own CPU limit ended it
                    raise Refused("time") from None
            raise
        finally:
            receive.close()
            process.join(timeout=1.0 if answered else 0)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
    finally:
        slots.release()
