"""Several dashboard processes behind Debian's nginx on this machine: `make serve`, and the tests
and load benchmark that need a real proxy in front of real replicas.

    python -m harness.cluster serve --replicas 2 --port 8501   # what `make serve` runs
    python -m harness.cluster nginx-conf --listen 8080 --upstream app-1:8501 --upstream app-2:8501

Each replica is `streamlit run app.py` (`replica_args`, the same arguments as compose.yaml's and
the Kubernetes Deployment's) on a loopback port, reading its own read-only copy of the database
(ANAKINRA_DB) and the one dataset store all replicas share (ANAKINRA_DATASETS). nginx runs
docs/hosting.md's two blocks as they are written there (the upstream's `server` lines replaced by
the replicas'): WebSocket upgrades, session affinity by cookie, the security headers.

`cluster(...)` is a context manager for tests and benchmarks; `serve` supervises the processes
until Ctrl-C or SIGTERM (a replica that exits is started again), then stops them all.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.server import ROOT, free_port, wait_healthy

HOSTING = ROOT / "docs" / "hosting.md"
NGINX = os.environ.get("NGINX", shutil.which("nginx") or "/usr/sbin/nginx")
REPLICA_HEADER = "X-Anakinra-Replica"
AFFINITY_COOKIE = "anakinra_replica"
RESTARTS_PER_MINUTE = 5


def replica_args(port: int, address: str) -> list[str]:
    """The arguments of `streamlit` for one replica (after the program: `streamlit ARGS` in a
    container, `python -m streamlit ARGS` here). Everything else comes from
    .streamlit/config.toml and the environment."""
    return ["run", "app.py", "--server.port", str(port), "--server.address", address]


def replica_command(port: int, address: str = "127.0.0.1") -> list[str]:
    return [sys.executable, "-m", "streamlit", *replica_args(port, address)]


# ---- nginx's configuration, from docs/hosting.md ----------------------------------------------
def hosting_blocks() -> tuple[str, str]:
    """docs/hosting.md's upstream block (http level) and its rules for the server block."""
    blocks = re.findall(r"```nginx\n(.*?)```", HOSTING.read_text(encoding="utf-8"), re.S)
    return blocks[0], blocks[1]


def upstream_block(upstreams: list[str]) -> str:
    """docs/hosting.md's upstream block with one `server` line per address (host:port)."""
    block, _ = hosting_blocks()
    lines = block.splitlines()
    servers = [i for i, line in enumerate(lines) if line.strip().startswith("server ")]
    template = lines[servers[0]]
    indent = template[: len(template) - len(template.lstrip())]
    options = template.strip().split(None, 2)[2]  # "max_fails=1 fail_timeout=10s;"
    new = [f"{indent}server {address} {options}" for address in upstreams]
    return "\n".join([*lines[: servers[0]], *new, *lines[servers[-1] + 1 :]]) + "\n"


def server_rules(replica_header: bool = False) -> str:
    """docs/hosting.md's rules for the server block; with `replica_header`, each response also
    names the replica that answered (REPLICA_HEADER), for tests and `make serve`."""
    _, rules = hosting_blocks()
    if replica_header:
        rules += f"add_header {REPLICA_HEADER} $upstream_addr always;\n"
    return rules


def nginx_conf(
    folder: Path,
    listen: str,
    upstreams: list[str],
    replica_header: bool = True,
    foreground: bool = True,
) -> Path:
    """A whole nginx.conf in `folder` around docs/hosting.md's blocks (plain HTTP on `listen`,
    e.g. "127.0.0.1:8501"; every path nginx writes inside `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "anakinra-upstream.conf").write_text(upstream_block(upstreams), encoding="utf-8")
    (folder / "anakinra.conf").write_text(server_rules(replica_header), encoding="utf-8")
    conf = folder / "nginx.conf"
    conf.write_text(
        _main_conf(folder, listen, foreground, user=os.geteuid() == 0), encoding="utf-8"
    )
    return conf


def _main_conf(folder: Path, listen: str, foreground: bool, user: bool) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        ("user root;\n" if user else "")
        + ("daemon off;\n" if foreground else "")
        + f"worker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        f"{temp}\n"
        f"    include {folder / 'anakinra-upstream.conf'};\n"
        f"    server {{\n        listen {listen};\n        include {folder / 'anakinra.conf'};\n"
        "    }\n}\n"
    )


def container_conf(listen: int, upstreams: list[str]) -> str:
    """The proxy's nginx.conf for compose.yaml (deploy/nginx.conf): the same blocks, in the
    layout of Debian's nginx package (run in the foreground, as its container's process)."""
    return (
        "# Generated by `python -m harness.cluster nginx-conf` from docs/hosting.md: edit that.\n"
        "user www-data;\ndaemon off;\nworker_processes auto;\npid /run/nginx.pid;\n"
        "error_log /dev/stderr warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n    access_log /dev/stdout;\n"
        + _indent(upstream_block(upstreams), 4)
        + f"    server {{\n        listen {listen};\n"
        + _indent(server_rules(replica_header=False), 8)
        + "    }\n}\n"
    )


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


# ---- processes ----------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """In a child, before exec: its own session (a terminal's Ctrl-C reaches the supervisor, which
    stops the children in order), and SIGTERM when the supervisor dies (Linux)."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(process: subprocess.Popen | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@dataclass
class Replica:
    """One `streamlit run` process on a loopback port, with its own copy of the database."""

    index: int
    port: int
    folder: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log: Path | None = None
    starts: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait: bool = True) -> None:
        self.log = self.folder / "streamlit.log"
        with open(self.log, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                replica_command(self.port),
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # before exec only
            )
        self.starts.append(time.monotonic())
        if wait:
            wait_healthy(self.url, timeout=120, process=self.process)

    def kill(self) -> None:
        """SIGKILL, as a crash or an out-of-memory kill: no chance to close anything."""
        if self.running():
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class Cluster:
    """nginx on `port` in front of `replicas`."""

    port: int
    replicas: list[Replica]
    folder: Path
    nginx: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def replica_at(self, address: str) -> Replica:
        """The replica behind an upstream address as nginx names it (REPLICA_HEADER)."""
        last = address.split(",")[-1].strip()  # "a, b" when nginx tried a first
        return next(r for r in self.replicas if r.address == last)

    def replica_of(self, cookie: str | None) -> Replica:
        """The replica the proxy sends a request with this Cookie header to."""
        request = urllib.request.Request(
            f"{self.url}/_stcore/health", headers={"Cookie": cookie} if cookie else {}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return self.replica_at(response.headers[REPLICA_HEADER])

    def cookie_for(self, replica: Replica) -> str:
        """An affinity cookie that the proxy's hash sends to `replica` (found by asking it)."""
        for attempt in range(500):
            cookie = f"{AFFINITY_COOKIE}=probe{attempt}"
            if self.replica_of(cookie) is replica:
                return cookie
        raise LookupError(f"no cookie reaches {replica.address}")

    def start_nginx(self, listen: str) -> None:
        conf = nginx_conf(self.folder / "nginx", listen, [r.address for r in self.replicas])
        check = subprocess.run(
            [NGINX, "-t", "-q", "-c", str(conf), "-p", str(conf.parent)],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused its configuration: {check.stderr.strip()}")
        self.nginx = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(conf.parent)], preexec_fn=_die_with_parent
        )
        _wait_proxy(self.url, self.nginx)

    def stop(self) -> None:
        _stop(self.nginx)
        for replica in self.replicas:
            replica.stop()


def _wait_proxy(url: str, nginx: subprocess.Popen, timeout: float = 30) -> None:
    start = time.monotonic()
    while True:
        if nginx.poll() is not None:
            raise RuntimeError(f"nginx exited with {nginx.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{url} did not answer through nginx in {timeout} s")
        time.sleep(0.05)


def nginx_available() -> bool:
    return Path(NGINX).exists()


def replica_database(source: Path, folder: Path) -> Path:
    """A read-only copy of the built database (and its checksum) in the replica's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    for path, name in ((source, target.name), (Path(f"{source}.sha256"), f"{target.name}.sha256")):
        copy = folder / name
        if copy.exists():
            copy.chmod(0o644)
        if path.exists():
            shutil.copyfile(path, copy)
            copy.chmod(0o444)
    return target


def make_cluster(
    folder: Path,
    replicas: int,
    database: Path,
    port: int | None = None,
    replica_ports: list[int] | None = None,
    env: dict[str, str] | None = None,
) -> Cluster:
    """The replicas' folders, database copies and environment (nothing started yet)."""
    ports = replica_ports or [free_port() for _ in range(replicas)]
    made = []
    for index, replica_port in enumerate(ports, start=1):
        home = folder / f"replica-{index}"
        copy = replica_database(database, home)
        made.append(Replica(index, replica_port, home, {**(env or {}), "ANAKINRA_DB": str(copy)}))
    return Cluster(port or free_port(), made, folder)


@contextlib.contextmanager
def cluster(
    folder: Path,
    replicas: int = 2,
    database: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """nginx and `replicas` dashboard processes on free loopback ports, for a test or benchmark:
    yields the running cluster (its `url` is the proxy's) and stops everything on exit. The
    processes' output goes to `folder`/replica-N/streamlit.log and `folder`/nginx/error.log."""
    if not nginx_available():
        raise FileNotFoundError(f"{NGINX} is missing: install Debian's nginx (make system-deps)")
    from evidence.extraction import build

    made = make_cluster(folder, replicas, database or build.DATABASE, env=env)
    try:
        for replica in made.replicas:
            replica.start(wait=False)
        for replica in made.replicas:
            wait_healthy(replica.url, timeout=120, process=replica.process)
        made.start_nginx(f"127.0.0.1:{made.port}")
        yield made
    finally:
        made.stop()


# ---- make serve -------------------------------------------------------------------------------
class _Stopping(Exception):
    pass


def serve(replicas: int, port: int, host: str) -> int:
    """Start the replicas and nginx, keep the replicas running, stop all on SIGINT or SIGTERM."""
    from evidence.extraction import build

    if not nginx_available():
        print(f"{NGINX} is missing: run `make system-deps` (Debian's nginx)", file=sys.stderr)
        return 1
    problem = build.verify(build.DATABASE)
    if problem is not None:
        print(f"{build.DATABASE} {problem}: run `make data`", file=sys.stderr)
        return 1
    ports = [port + i for i in range(1, replicas + 1)]
    taken = [p for p in (port, *ports) if not _port_free(host if p == port else "127.0.0.1", p)]
    if taken:
        print(f"port {taken[0]} is in use: choose another PORT", file=sys.stderr)
        return 1

    def stop(signum: int, frame: object) -> None:
        raise _Stopping

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # make's end is ours
    made = make_cluster(ROOT / "artifacts" / "serve", replicas, build.DATABASE, port, ports)
    store = os.environ.get("ANAKINRA_DATASETS") or "data/datasets"
    try:
        for replica in made.replicas:
            replica.start(wait=False)
        for replica in made.replicas:
            wait_healthy(replica.url, timeout=120, process=replica.process)
            print(f"replica {replica.index}: {replica.url} (pid {replica.pid}, {replica.log})")
        made.start_nginx(f"{host}:{port}")
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        print(
            f"nginx: http://{shown}:{port} -> {replicas} replica(s), affinity by cookie; "
            f"datasets shared by link in {store}. Ctrl-C stops them all.",
            flush=True,
        )
        while True:
            time.sleep(1)
            if made.nginx is not None and made.nginx.poll() is not None:
                print(f"nginx exited with {made.nginx.returncode}: stopping", file=sys.stderr)
                return 1
            for replica in made.replicas:
                if not replica.running():
                    _restart(replica)
    except _Stopping:
        print("stopping nginx and the replicas", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        made.stop()


def _restart(replica: Replica) -> None:
    code = replica.process.returncode if replica.process is not None else None
    recent = [t for t in replica.starts if time.monotonic() - t < 60]
    if len(recent) >= RESTARTS_PER_MINUTE:
        return  # it keeps failing: leave it stopped (nginx sends its browsers to the others)
    print(f"replica {replica.index} exited ({code}): starting it again", file=sys.stderr)
    replica.start(wait=False)


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.cluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="replicas behind nginx until Ctrl-C or SIGTERM")
    run.add_argument("--replicas", type=int, default=2)
    run.add_argument("--port", type=int, default=8501)
    run.add_argument("--host", default="127.0.0.1", help="the proxy's address (0.0.0.0: all)")
    conf = commands.add_parser("nginx-conf", help="print the proxy's nginx.conf for containers")
    conf.add_argument("--listen", type=int, default=8080)
    conf.add_argument("--upstream", action="append", required=True, help="host:port, repeated")
    args = parser.parse_args(argv)
    if args.command == "nginx-conf":
        sys.stdout.write(container_conf(args.listen, args.upstream))
        return 0
    if not 1 <= args.replicas <= 16:
        parser.error("--replicas: from 1 to 16")
    return serve(args.replicas, args.port, args.host)


if __name__ == "__main__":
    sys.exit(main())
