"""The load test: many people on the dashboard at once, through Streamlit's websocket protocol.

    .venv/bin/python bench/load.py --replicas 1 --sessions 20,50,100
    .venv/bin/python bench/load.py --replicas 2 --sessions 20,50,100 \
        --out artifacts/bench/load-2.json
    .venv/bin/python bench/load.py --replicas 2 --sessions 50 --kill-at 30    # a replica dies

For each number of sessions it starts a fresh cluster on loopback (harness/cluster.py: nginx from
Debian in front of N `streamlit run` processes, as `make serve` runs them; with one replica the
same proxy and one process), then:

1. stores a panel's extraction in the cluster's dataset store (the shipped sheets under the name
   panel-extraction.xlsx) unless `--data shipped`: every session opens the chair's link to it,
   `/?data=<id>`, as the meeting in the issue does;
2. warms every replica: one session opens each page once (the processes' imports and caches of
   the link's data, which the first visitor pays once);
3. **alone, cold**: one session alone makes `--baseline-actions` actions (filter changes and
   page visits) with short pauses, on caches only the warm-up filled;
4. **load**: N sessions, started over the first 10 s (a third of a shorter run; each loads the
   page over HTTP for its affinity cookie and connects, as a browser does), each repeating
   until `--duration` ends: a pause drawn uniformly from `--think` (the time a person reads),
   then a filter change (65%: the sidebar's study exclusion, indication or pooling method, always
   to a new value, as the frontend sends a widget change) or a page visit (35%: one of the
   pages, as the navigation sends it). Each is timed from the message sent to the end of the run
   it started (`script_finished`): the server's part of a change, without the browser's drawing
   (bench_app.py measures that);
5. **baseline**: closes every session, and one session alone makes the same actions again, on
   the caches the load left (as the load's changes mostly found their slice computed): the
   single-session figures the targets compare against, measured in the same run;
6. waits for Streamlit to drop the closed sessions (`--ttl`, the reconnect window set for the
   run) and samples the replicas' memory again.

Errors are exceptions drawn, pages not found, runs that do not end in 60 s, and sessions whose
socket closed or that could not connect; with `--kill-at`, replica 1 is killed (SIGKILL) that
many seconds into the load, and its sessions reconnect as the frontend does (the same cookie,
the URL they showed): a reconnect that fails, or that does not restore the URL's view and the
link's data, is an error. Every replica's memory (VmRSS of its process and its children, from
/proc) is sampled each second throughout.

`--rounds N` runs the same load N times on the same servers and samples memory after each
round (the figures are the first round's): memory that grows round after round is held by
something, memory that comes back to the same level is caches and the allocator's high-water
mark.

Bounded: at most 200 sessions, 600 s of load per round and 5 rounds per step, and no step starts
after an hour; on loopback only (it starts its own servers and sends nothing elsewhere). It
prints p50/p95/p99 per change, errors and memory over time, and writes them as JSON (`--out`,
default artifacts/bench/load.json); bench/render.py puts artifacts/bench/load-1.json, load-2.json
and load-kill.json into docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evidence import datasets  # noqa: E402
from evidence.extraction import build  # noqa: E402
from harness import cluster  # noqa: E402
from harness.protocol import Tab  # noqa: E402

MAX_SESSIONS = 200
MAX_DURATION = 600.0
MAX_TOTAL_SECONDS = 3600.0
RAMP_SECONDS = 10.0
PAGES = ["", "treatment", "prophylaxis", "dose", "safety", "studies", "sof"]
PANEL_NAME = "panel-extraction.xlsx"
SHARED = f"the panel's extraction “{PANEL_NAME}”, shared by link"
TIMEOUT = 60.0


# ---- memory ------------------------------------------------------------------------------------
def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """A process and its descendants (the upload checkers' fork server and its children)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as children:
                    stack.extend(int(c) for c in children.read().split())
        except OSError:
            continue
    return found


class Memory(threading.Thread):
    """Every replica's RSS (its process tree) once a second, in MiB, while the run lasts."""

    def __init__(self, running: cluster.Cluster, start: float):
        super().__init__(daemon=True)
        self.running, self.start_time = running, start
        self.samples: list[tuple[float, list[float]]] = []
        self.stop = threading.Event()

    def now(self) -> list[float]:
        return [
            round(sum(_rss(p) for p in _tree(r.pid)) / 2**20, 1) if r.running() else 0.0
            for r in self.running.replicas
        ]

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((round(time.monotonic() - self.start_time, 1), self.now()))
            self.stop.wait(1.0)


# ---- one person --------------------------------------------------------------------------------
@dataclass
class Record:
    kind: str  # "open", "change", "visit", "reconnect"
    seconds: float
    at: float
    errors: list[str] = field(default_factory=list)


class Person:
    """One session: opens the link, then pauses and acts until the end."""

    def __init__(self, url: str, query: str, seed: int, think: tuple[float, float], shared: bool):
        self.tab = Tab(url, "", query, timeout=TIMEOUT)
        self.random = random.Random(seed)
        self.think = think
        self.shared = shared
        self.records: list[Record] = []
        self.reconnects = 0
        self.first_replica = ""  # the replica the proxy sent its first socket to

    def _record(self, kind: str, run: Any, clock: float) -> None:
        self.records.append(Record(kind, run.seconds, round(clock, 2), list(run.errors)))

    def _failed(self, kind: str, error: BaseException, clock: float) -> None:
        message = f"{type(error).__name__}: {error}"
        self.records.append(Record(kind, 0.0, round(clock, 2), [message]))

    async def open(self, clock0: float) -> bool:
        try:
            run = await self.tab.open()
        except Exception as err:
            self._failed("open", err, time.monotonic() - clock0)
            return False
        self._record("open", run, time.monotonic() - clock0)
        self.first_replica = (self.tab.replica or "").split(",")[-1].strip()
        return not run.errors

    def _value(self, key: str) -> Any:
        """A sidebar widget's value as this tab holds it (filters and view settings alike)."""
        widgets = self.tab.widgets
        return (widgets.get(f"filter_{key}") or widgets[f"view_{key}"]).value

    def _action(self) -> tuple[str, Any]:
        """A filter change (65%) or a page visit (35%), as a person in a meeting does."""
        tab = self.tab
        if self.random.random() < 0.35:
            return "visit", self.random.choice([p for p in PAGES if p != tab.page])
        which = self.random.random()
        if which < 0.5:
            studies = tab.options("exclude")[:3]
            current = list(self._value("exclude") or [])
            study = self.random.choice(studies)
            chosen = [s for s in current if s != study] if study in current else [*current, study]
            return "change", ("exclude", chosen)
        if which < 0.8:  # always a different value: the frontend sends no rerun for the same
            labels = tab.options("indication")[:2]
            current = list(self._value("indication") or [])
            choices = [c for c in ([], [labels[0]], [labels[1]]) if c != current]
            return "change", ("indication", self.random.choice(choices))
        current = self._value("method")
        methods = [m for m in tab.options("method")[:2] if m != current]
        return "change", ("method", self.random.choice(methods))

    async def act(self, clock0: float, until: float) -> None:
        while True:
            pause = self.random.uniform(*self.think)
            if time.monotonic() + pause >= until:
                return
            await asyncio.sleep(pause)
            kind, what = self._action()
            clock = time.monotonic() - clock0
            try:
                run = await (self.tab.visit(what) if kind == "visit" else self.tab.choose(*what))
            except Exception as err:  # the socket closed (a replica killed): reconnect
                if not await self._reconnect(clock0, err):
                    return
                continue
            self._record(kind, run, clock)

    async def _reconnect(self, clock0: float, cause: BaseException) -> bool:
        """What the frontend does when its socket closes; an error unless the view is back."""
        shown = self.tab.query
        clock = time.monotonic() - clock0
        self.reconnects += 1
        try:
            run = await self.tab.reconnect()
        except Exception as err:
            self._failed("reconnect", err, clock)
            return False
        record = Record("reconnect", run.seconds, round(clock, 2), list(run.errors))
        if self.tab.query != shown:
            record.errors.append(f"view not restored: {shown!r} became {self.tab.query!r}")
        if self.shared and not any(SHARED in text for text in run.texts):
            record.errors.append("the link's data was not restored")
        self.records.append(record)
        return not record.errors

    async def close(self) -> None:
        await self.tab.close()


# ---- one step: a fresh cluster, N sessions ------------------------------------------------------
def percentile(values: list[float], share: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-share * len(ordered) // 1)) - 1))]


def figures(records: list[Record], kinds: tuple[str, ...]) -> dict[str, Any]:
    times = [r.seconds * 1000 for r in records if r.kind in kinds and not r.errors]
    return {
        "count": len(times),
        "p50_ms": percentile(times, 0.50),
        "p95_ms": percentile(times, 0.95),
        "p99_ms": percentile(times, 0.99),
        "max_ms": max(times) if times else None,
    }


def _errors(records: list[Record]) -> list[str]:
    return [f"{r.kind} at {r.at:.1f} s: {e}" for r in records for e in r.errors]


async def _baseline(url: str, query: str, actions: int, shared: bool) -> list[Record]:
    person = Person(url, query, 0, (0.3, 0.8), shared)
    clock0 = time.monotonic()
    if not await person.open(clock0):
        return person.records
    for _ in range(actions):
        await asyncio.sleep(person.random.uniform(0.3, 0.8))
        kind, what = person._action()
        tab = person.tab
        run = await (tab.visit(what) if kind == "visit" else tab.choose(*what))
        person._record(kind, run, time.monotonic() - clock0)
    await person.close()
    return person.records


async def _warm(running: cluster.Cluster, query: str) -> None:
    """Each replica's first visitor: every page once (imports, the link's data built)."""
    for replica in running.replicas:
        tab = Tab(running.url, "", query, timeout=TIMEOUT)
        tab.cookie = await asyncio.to_thread(running.cookie_for, replica)
        await tab.open()
        for page in PAGES[1:]:
            await tab.visit(page)
        await tab.close()


async def _load(
    running: cluster.Cluster,
    query: str,
    sessions: int,
    duration: float,
    think: tuple[float, float],
    shared: bool,
    kill_at: float | None,
    seed: int = 1000,
) -> tuple[list[Person], float | None]:
    clock0 = time.monotonic()
    until = clock0 + duration
    people = [Person(running.url, query, seed + i, think, shared) for i in range(sessions)]
    killed: list[float] = []

    async def life(index: int, person: Person) -> None:
        await asyncio.sleep(min(RAMP_SECONDS, duration / 3) * index / max(1, sessions))
        if await person.open(clock0):
            await person.act(clock0, until)

    async def killer() -> None:
        if kill_at is None or len(running.replicas) < 2:
            return
        await asyncio.sleep(kill_at)
        await asyncio.to_thread(running.replicas[0].kill)
        killed.append(round(time.monotonic() - clock0, 1))
        print(f"  killed replica 1 at {killed[0]} s", flush=True)

    await asyncio.gather(killer(), *(life(i, p) for i, p in enumerate(people)))
    for person in people:
        await person.close()
    return people, (killed[0] if killed else None)


def run_step(
    replicas: int,
    sessions: int,
    args: argparse.Namespace,
    database: Path,
    started: float,
) -> dict[str, Any]:
    env = {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(args.ttl)}
    with tempfile.TemporaryDirectory(prefix="anakinra-load-") as folder:
        store = Path(folder) / "datasets"
        env["ANAKINRA_DATASETS"] = str(store)
        query = ""
        if args.data == "link":
            raw = build.read_sheet_dir(build.SHEETS_DIR)
            dataset_id = build.sheets_checksum(raw)
            datasets.DatasetStore(str(store), 10 * 1024 * 1024).put(
                dataset_id, PANEL_NAME, build.sheets_zip(raw)
            )
            query = f"data={dataset_id}"
        shared = bool(query)
        with cluster.cluster(Path(folder) / "cluster", replicas, database, env) as running:
            memory = Memory(running, time.monotonic())
            memory.start()
            try:
                asyncio.run(_warm(running, query))
                cold = asyncio.run(_baseline(running.url, query, args.baseline_actions, shared))
                time.sleep(2)
                before = memory.now()
                phase = {"load_start": memory.samples[-1][0] if memory.samples else 0.0}
                people, killed = asyncio.run(
                    _load(running, query, sessions, args.duration, args.think, shared, args.kill_at)
                )
                phase["load_end"] = round(time.monotonic() - memory.start_time, 1)
                peak = [max(s[1][i] for s in memory.samples) for i in range(replicas)]
                # One session alone again, on the caches the load left: the load's changes
                # mostly find their slice computed, and so does this baseline, so the ratio
                # of the two compares like with like (the cold one above would flatter it).
                baseline = asyncio.run(_baseline(running.url, query, args.baseline_actions, shared))
                # Streamlit keeps a closed tab's session for the reconnect window, and drops it
                # when the session manager is next used: wait, then one short visit.
                time.sleep(args.ttl + 3)
                asyncio.run(_warm_one(running, query))
                time.sleep(args.ttl + 3)
                after = memory.now()
                # The same load again on the same servers (memory only): memory that grows
                # round after round is held by something; memory that comes back to the same
                # level is caches and the allocator's high-water mark.
                after_rounds, later_errors = [after], []
                for round_ in range(1, args.rounds):
                    again, _ = asyncio.run(
                        _load(
                            running,
                            query,
                            sessions,
                            args.duration,
                            args.think,
                            shared,
                            None,
                            seed=1000 + round_ * MAX_SESSIONS,
                        )
                    )
                    later_errors += _errors([r for p in again for r in p.records])
                    time.sleep(args.ttl + 3)
                    asyncio.run(_warm_one(running, query))
                    time.sleep(args.ttl + 3)
                    after_rounds.append(memory.now())
            finally:
                memory.stop.set()
                memory.join()
    records = [r for p in people for r in p.records]
    hit = running.replicas[0].address if killed is not None else None
    on_killed = [p for p in people if hit is not None and p.first_replica == hit]
    others = [p for p in people if p not in on_killed]
    load_average = [round(x, 2) for x in os.getloadavg()]
    step = {
        "replicas": replicas,
        "sessions": sessions,
        "think_s": list(args.think),
        "duration_s": args.duration,
        "data": args.data,
        "killed_replica_at_s": killed,
        "baseline": {
            "change": figures(baseline, ("change",)),
            "visit": figures(baseline, ("visit",)),
            "errors": _errors(baseline),
        },
        "baseline_cold": {
            "change": figures(cold, ("change",)),
            "visit": figures(cold, ("visit",)),
            "errors": _errors(cold),
        },
        "load": {
            "open": figures(records, ("open",)),
            "change": figures(records, ("change",)),
            "visit": figures(records, ("visit",)),
            "reconnect": figures(records, ("reconnect",)),
            "actions": sum(1 for r in records if r.kind in ("change", "visit")),
            "reconnects": sum(p.reconnects for p in people),
            "errors": _errors(records),
            "later_rounds_errors": later_errors,
        },
        "kill": None
        if killed is None
        else {
            "sessions_on_killed_replica": len(on_killed),
            "restored_from_link": sum(
                1
                for p in on_killed
                if any(r.kind == "reconnect" for r in p.records)
                and not any(r.kind == "reconnect" and r.errors for r in p.records)
            ),
            "errors_on_killed_replica": _errors([r for p in on_killed for r in p.records]),
            "other_sessions": len(others),
            "other_reconnects": sum(p.reconnects for p in others),
            "other_errors": _errors([r for p in others for r in p.records]),
            "other_change": figures([r for p in others for r in p.records], ("change",)),
        },
        "memory_mib": {
            "before": before,
            "peak": peak,
            "after": after,
            "after_each_round": after_rounds,
            "samples": memory.samples,
            **phase,
        },
        "load_average_at_end": load_average,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    _print_step(step)
    return step


async def _warm_one(running: cluster.Cluster, query: str) -> None:
    """One short session per replica (it makes Streamlit drop the expired ones)."""
    for replica in running.replicas:
        if not replica.running():
            continue
        tab = Tab(running.url, "", query, timeout=TIMEOUT)
        tab.cookie = await asyncio.to_thread(running.cookie_for, replica)
        await tab.open()
        await tab.close()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _print_step(step: dict[str, Any]) -> None:
    load, base, memory = step["load"], step["baseline"], step["memory_mib"]
    print(
        f"\n{step['sessions']} sessions on {step['replicas']} replica(s): {load['actions']} "
        f"actions, {len(load['errors'])} errors, {load['reconnects']} reconnects; load average "
        f"{step['load_average_at_end'][0]:.1f}"
    )
    print("  kind            count   p50   p95   p99   max (ms)")
    for name, row in (
        ("alone, cold", step["baseline_cold"]["change"]),
        ("alone, after", base["change"]),
        ("change", load["change"]),
        ("visit", load["visit"]),
        ("open", load["open"]),
        ("reconnect", load["reconnect"]),
    ):
        print(
            f"  {name:<15} {row['count']:>5} {_ms(row['p50_ms']):>5} {_ms(row['p95_ms']):>5} "
            f"{_ms(row['p99_ms']):>5} {_ms(row['max_ms']):>5}"
        )
    print(
        f"  memory (MiB per replica): before {memory['before']}, peak {memory['peak']}, "
        f"after the sessions closed {memory['after']}"
    )
    if len(memory["after_each_round"]) > 1:
        print(
            f"  after each round of the same load: {memory['after_each_round']}; "
            f"{len(load['later_rounds_errors'])} errors in the later rounds"
        )
    if step["kill"] is not None:
        kill = step["kill"]
        print(
            f"  replica 1 killed at {step['killed_replica_at_s']} s: "
            f"{kill['restored_from_link']} of its {kill['sessions_on_killed_replica']} sessions "
            f"restored from their links, {len(kill['errors_on_killed_replica'])} errors; the "
            f"other {kill['other_sessions']} sessions: {kill['other_reconnects']} reconnects, "
            f"{len(kill['other_errors'])} errors, change p95 "
            f"{_ms(kill['other_change']['p95_ms'])} ms"
        )
    timeline = memory["samples"][:: max(1, len(memory["samples"]) // 20)]
    print("  over time (s: MiB): " + ", ".join(f"{t:.0f}: {sum(m):.0f}" for t, m in timeline))
    for error in load["errors"][:10]:
        print(f"  error: {error}")


# ---- the run ------------------------------------------------------------------------------------
def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def _allocator() -> str:
    """glibc's arena setting when the run sets it (the replicas inherit the environment)."""
    value = os.environ.get("MALLOC_ARENA_MAX")
    return f"MALLOC_ARENA_MAX={value} " if value else ""


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def _nginx_version() -> str:
    """The proxy's version as `nginx -v` gives it ("nginx version: nginx/1.22.1")."""
    try:
        said = subprocess.run([cluster.NGINX, "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return said.stderr.strip().rsplit("/", 1)[-1]


def _pair(text: str) -> tuple[float, float]:
    low, high = (float(x) for x in text.split(","))
    if not 0 <= low <= high <= 120:
        raise argparse.ArgumentTypeError("two seconds, low,high, at most 120")
    return low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=1, help="dashboard processes (1-8)")
    parser.add_argument("--sessions", default="20,50,100", help="sessions per step, e.g. 20,50")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load per step")
    parser.add_argument("--think", type=_pair, default=(3.0, 12.0), help="pause range, s (3,12)")
    parser.add_argument("--baseline-actions", type=int, default=40)
    parser.add_argument("--data", choices=("link", "shipped"), default="link")
    parser.add_argument("--kill-at", type=float, default=None, help="kill replica 1 at T s")
    parser.add_argument(
        "--rounds", type=int, default=1, help="the load again on the same servers, for memory"
    )
    parser.add_argument("--ttl", type=int, default=10, help="disconnected session TTL, s")
    parser.add_argument("--database", type=Path, default=build.DATABASE, help="a built database")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench" / "load.json")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.sessions.split(",")]
    if not 1 <= args.replicas <= 8:
        parser.error("--replicas: 1 to 8")
    if not all(1 <= n <= MAX_SESSIONS for n in counts):
        parser.error(f"--sessions: 1 to {MAX_SESSIONS} each")
    if not 1 <= args.rounds <= 5:
        parser.error("--rounds: 1 to 5")
    if not 5 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration: 5 to {MAX_DURATION:g} s")
    if not cluster.nginx_available():
        print("nginx is missing: make system-deps", file=sys.stderr)
        return 1
    database = args.database
    problem = build.verify(database)
    if problem is not None:
        print(f"{database} {problem}: run make data", file=sys.stderr)
        return 1
    command = "bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.monotonic()
    about = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "command": f"{_allocator()}.venv/bin/python {command.strip()}",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "streamlit": _version("streamlit"),
            "nginx": _nginx_version(),
            "load_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "steps": [],
    }
    print(
        f"{args.replicas} replica(s), sessions {counts}, {args.duration:g} s each, think "
        f"{args.think[0]:g}-{args.think[1]:g} s, data: {args.data}; load average "
        "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        flush=True,
    )
    for count in counts:
        if time.monotonic() - started > MAX_TOTAL_SECONDS:
            print("stopping: the run's time bound is reached", file=sys.stderr)
            break
        about["steps"].append(run_step(args.replicas, count, args, database, started))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(about, indent=1), encoding="utf-8")
    about["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(about, indent=1), encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
