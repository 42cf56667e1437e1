"""Start the dashboard as a real server, and the flags to drive Debian's Chromium with.

Shared by the browser tests and the app benchmark. Chromium runs headless with the flags this
machine needs (no sandbox as root, no background networking on a closed network).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_healthy(
    base_url: str, timeout: float = 60, process: subprocess.Popen | None = None
) -> float:
    """Wait until /_stcore/health answers ok; return that moment (time.perf_counter()).

    Polls often (the benchmark times the start from it) and gives up at once if `process` has
    exited.
    """
    start = time.perf_counter()
    while not _answers(base_url):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{base_url}: the server exited with {process.returncode}")
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{base_url} did not become healthy in {timeout} s")
        time.sleep(0.02)
    return time.perf_counter()


def streamlit_command(script: str, port: int) -> list[str]:
    """`streamlit run` on loopback only, headless, without usage statistics."""
    return [
        sys.executable, "-m", "streamlit", "run", script,
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


@contextmanager
def streamlit_process(
    script: str = "app.py",
    env: dict[str, str] | None = None,
    port: int | None = None,
    log_prefix: str = "streamlit",
) -> Iterator[tuple[str, float, float]]:
    """Run `streamlit run script` on a free loopback port until it answers; yield its base URL,
    the moment it was spawned and the moment it was healthy (time.perf_counter() values). The
    process is always stopped on exit; its output goes to artifacts/<log_prefix>-<port>.log."""
    port = port or free_port()
    command = streamlit_command(script, port)
    (ROOT / "artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "artifacts" / f"{log_prefix}-{port}.log", "w")  # noqa: SIM115 - closed below
    base = f"http://127.0.0.1:{port}"
    spawned = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        healthy = wait_healthy(base, process=process)
        yield base, spawned, healthy
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@contextmanager
def streamlit_server(
    script: str = "app.py", env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """Run `streamlit run script` on a free loopback port; yield its base URL."""
    with streamlit_process(script, env, port) as (base, _, _):
        yield base
