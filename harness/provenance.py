"""What every benchmark writes beside its figures: the command, when, which commit, on what
machine, so a table in docs/performance.md always says which run it comes from."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_record(command: str, load_at_start: tuple[float, ...] | list[float]) -> dict[str, Any]:
    """The command, the time (UTC), the short commit and the machine (CPUs, load average at the
    start, glibc's MALLOC_TOP_PAD_: it changes large-k timings, docs/performance.md)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": {
            "cpus": os.cpu_count(),
            "load_at_start": load_at_start,
            "malloc_top_pad": os.environ.get("MALLOC_TOP_PAD_"),
        },
    }
