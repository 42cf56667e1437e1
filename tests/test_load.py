"""bench/load.py runs end to end at a tiny size: two replicas behind nginx, six sessions on a
panel's data link for a few seconds, one replica killed under them. What a host reading its
report relies on: actions were made and timed, the killed replica's sessions came back with their
view and data from their links, the other sessions saw nothing, and memory was sampled.

The figures themselves are a benchmark (docs/performance.md), not asserted here; that
bench/render.py turns the run into docs/performance.md's table and sentences is."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evidence.extraction import build
from harness import cluster

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_the_load_script_runs_end_to_end_with_a_replica_killed(tmp_path: Path) -> None:
    if not cluster.nginx_available():
        message = "nginx is missing: install Debian's nginx (make system-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    database = build.build_from(build.SHEETS_DIR, tmp_path / "anakinra.duckdb")
    out = tmp_path / "load.json"
    command = [
        *(sys.executable, str(ROOT / "bench" / "load.py"), "--replicas", "2"),
        *("--sessions", "6", "--duration", "8", "--think", "0.3,1", "--kill-at", "3"),
        *("--baseline-actions", "3", "--ttl", "2", "--database", str(database)),
        *("--out", str(out)),
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "p95" in finished.stdout and "restored from their links" in finished.stdout

    (step,) = json.loads(out.read_text(encoding="utf-8"))["steps"]
    load, kill = step["load"], step["kill"]
    assert step["replicas"] == 2 and step["sessions"] == 6
    assert load["errors"] == [] and step["baseline"]["errors"] == []
    assert load["actions"] > 6 and load["change"]["p95_ms"] is not None
    assert step["baseline"]["change"]["count"] + step["baseline"]["visit"]["count"] == 3
    assert step["killed_replica_at_s"] is not None
    assert kill["restored_from_link"] == kill["sessions_on_killed_replica"]
    assert kill["other_reconnects"] == 0 and kill["other_errors"] == []
    memory = step["memory_mib"]
    assert len(memory["samples"]) > 5 and all(m > 0 for m in memory["before"])

    spec = importlib.util.spec_from_file_location("render", ROOT / "bench" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    shown = render.render_load(json.loads(out.read_text(encoding="utf-8")))
    assert "Targets: errors at 6 sessions: 0 (met: 0 wanted)" in shown
    assert f"| 6 | {load['actions']} | 0 |" in shown
    on_killed = kill["sessions_on_killed_replica"]
    assert f"{on_killed} sessions were on it; {on_killed} reconnected" in shown
