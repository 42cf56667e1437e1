"""Put the latest benchmark figures (artifacts/bench/*.json) into docs/performance.md.

`app.json`, `meta.json` and `upload.json` are the latest runs; `app-base.json`, when present, is a
run of a base commit's app (`bench_app.py --app OTHER/app.py --out artifacts/bench/app-base.json`),
shown beside the latest as ratios to the same floor, and `upload-base.json` the same for
`bench_upload.py`, shown as its own table. `load-1.json`, `load-2.json` and `load-kill.json` are
bench/load.py's runs on one process, on two replicas behind nginx, and with a replica killed;
`load-memory.json` and `load-memory-arena2.json` its memory runs (`--rounds 3`, the second with
MALLOC_ARENA_MAX=2).

Each benchmark writes its figures as JSON; this renders them as the tables between the
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers of docs/performance.md, so the document
always shows one run's figures with its date, commit and machine, never hand-copied numbers.

Usage:
    .venv/bin/python bench/render.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "artifacts" / "bench"
DOCUMENT = ROOT / "docs" / "performance.md"


def _about(figures: dict[str, Any]) -> list[str]:
    machine = figures["machine"]
    parts = [f"{machine.get('cpus')} CPUs"]
    if "platform" in machine:
        software = [machine["platform"], f"Python {machine['python']}"]
        software += [
            f"{name} {machine[key]}"
            for key, name in (("streamlit", "Streamlit"), ("nginx", "nginx"))
            if machine.get(key)
        ]
        if machine.get("chromium"):
            software.append(f"Chromium {machine['chromium']} (headless)")
        parts.append(", ".join(software))
    load = machine.get("load_at_start")
    if load:
        parts.append(f"load average {load[0]:.1f} at the start")
    if "malloc_top_pad" in machine:
        pad = machine["malloc_top_pad"]
        parts.append(f"MALLOC_TOP_PAD_={pad}" if pad else "glibc's default MALLOC_TOP_PAD_")
    return [
        f"Run {figures['date']} on commit `{figures['commit']}`: `{figures['command']}`.",
        f"Machine: {'; '.join(parts)}.",
    ]


def _targets(figures: dict[str, Any]) -> str:
    """Each target of the run with the figures that decide it."""
    limit, seconds = (figures["targets"][k] for k in ("filter_change_p95_ms", "cold_start_title_s"))
    changes = {n: r["p95_ms"] for n, r in figures["filter_change"].items() if "dashboard" in n}
    colds = {n: r["title"]["median_s"] for n, r in figures["cold_start"].items() if "dash" in n}

    def verdict(values: dict[str, float], bound: float, unit: str) -> str:
        met = "met" if all(v <= bound for v in values.values()) else "not met"
        shown = ", ".join(f"{name} {v:.0f} ms" if unit == "ms" else f"{name} {v:.1f} s"
                          for name, v in values.items())  # fmt: skip
        return f"{met} ({shown})"

    return (
        f"Targets: filter change p95 ≤ {limit} ms: {verdict(changes, limit, 'ms')}; first page "
        f"title ≤ {seconds:g} s (median): {verdict(colds, seconds, 's')}."
    )


def render_app(figures: dict[str, Any]) -> str:
    lines = [*_about(figures), "", _targets(figures), ""]
    lines += [
        "| Filter change | changes | median (ms) | p95 (ms) | max (ms) | server (ms) "
        "| browser (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in figures["filter_change"].items():
        lines.append(
            f"| {name} | {row['changes']} | {row['median_ms']:.0f} | {row['p95_ms']:.0f} | "
            f"{row['max_ms']:.0f} | {_number(row['server_median_ms'])} | "
            f"{_number(row['browser_median_ms'])} |"
        )
    lines += [
        "",
        "| Cold start (s from spawning the server) | health | first message | title | numbers |",
        "|---|---|---|---|---|",
    ]
    for name, row in figures["cold_start"].items():
        cells = [
            f"{row[key]['min_s']:.1f} / {row[key]['median_s']:.1f} / {row[key]['max_s']:.1f}"
            for key in ("health", "connected", "title", "numbers")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Cold starts: min / median / max over the runs.", ""]
    lines += ["| Ratio to the floor | dashboard / floor |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in figures["ratio_to_floor"].items()]
    facade = ", ".join(f"{name} {value:.1f} ms" for name, value in figures["facade_ms"].items())
    if facade:
        lines += ["", f"The Treatment page's data calls through the facade, in-process: {facade}."]
    return "\n".join(lines)


def render_meta(figures: dict[str, Any]) -> str:
    """Method by k: the engine's time beside metafor's from the same run ("DNF in N s" when a
    side hit its cap, R's error when metafor could not allocate its k x k matrices)."""
    lines = [*_about(figures), f"Data: {figures['data']}.", ""]
    sizes = sorted({row["k"] for row in figures["rows"]})
    methods = list(dict.fromkeys(row["python"] for row in figures["rows"]))
    by = {(row["python"], row["k"]): row for row in figures["rows"]}
    calls = {row["python"]: row["metafor"] for row in figures["rows"]}
    lines += [
        "| method (metafor call) | " + " | ".join(f"k = {k:,}" for k in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for method in methods:
        cells = []
        for k in sizes:
            row = by.get((method, k))
            cap = figures.get("metafor_cap_s", 60)
            cells.append("" if row is None else f"{_ms(row)} / {_metafor_ms(row, cap)}")
        lines.append(f"| {method} (`{calls[method]}`) | " + " | ".join(cells) + " |")
    lines += ["", "Each cell: engine / metafor, milliseconds (medians)."]
    met = [t for t in figures["targets"] if not t["met"]]
    lines += ["", "Targets met." if not met else "Missed: " + "; ".join(t["target"] for t in met)]
    return "\n".join(lines)


def _ms(row: dict[str, Any]) -> str:
    if row["python_ms"] is None:
        return f"DNF in {row['python_cap_s']:g} s"
    return _short(row["python_ms"])


def _metafor_ms(row: dict[str, Any], cap: float) -> str:
    if row["metafor_ms"] is not None:
        return _short(row["metafor_ms"])
    note = row["metafor_note"] or "–"
    if "did not finish" in note:
        return note.replace("did not finish in", "DNF in")
    if "iterative search for tau2 using uniroot" in note:  # metafor catches the time limit there
        return f"DNF in {cap:g} s (stopped in uniroot)"
    if "cannot allocate" in note or "vector of size" in note:
        return "out of memory"
    return note


def _short(ms: float) -> str:
    """Milliseconds with three significant digits (0.352, 35.2, 3,520)."""
    if ms >= 1000:
        return f"{ms:,.0f}"
    return f"{ms:.3g}"


def render_ab(base: dict[str, Any], new: dict[str, Any]) -> str:
    """Two runs of the app benchmark, a base commit's app and this one, each against the same
    floor in its own run: the ratios are comparable where the absolute times are not."""
    lines = [
        f"The app at commit `{_commit_of(base)}` (run {base['date']}) and at `{new['commit']}` "
        f"(run {new['date']}), each against bench/floor_page_app.py in the same run.",
        "",
        "| | ratio to the floor, base | this | base | this |",
        "|---|---|---|---|---|",
    ]
    for name, value in new["ratio_to_floor"].items():
        before = base["ratio_to_floor"].get(name)
        absolute = [_absolute(run, name) for run in (base, new)]
        lines.append(
            f"| {name} | {_number(before, 2) if before is not None else '-'} | {value:.2f} | "
            + " | ".join(absolute)
            + " |"
        )
    return "\n".join(lines)


def _absolute(figures: dict[str, Any], ratio_name: str) -> str:
    """The dashboard's own figure behind a ratio: ms for a filter change, s for a cold start."""
    what, statistic = ratio_name.rsplit(", ", 1)
    if what.startswith("filter change"):
        row = figures["filter_change"].get(what.replace("filter change", "dashboard"), {})
        value = row.get(f"{statistic}_ms")
        return "-" if value is None else f"{value:.0f} ms"
    row = figures["cold_start"].get(what.replace("cold start", "dashboard"), {})
    value = row.get(statistic, {}).get("median_s")
    return "-" if value is None else f"{value:.2f} s"


def _commit_of(figures: dict[str, Any]) -> str:
    """The commit of the app timed (the base checkout's, named in its path, or this one's)."""
    return figures.get("app_commit") or figures["commit"]


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_upload(figures: dict[str, Any]) -> str:
    """bench_upload.py: the server's memory and a bystander's filter changes while uploads of
    each shape are checked, each scenario on a fresh server, idle and loaded side by side."""
    limits, rows, targets = figures["limits"], figures["scenarios"], figures["targets"]
    said = {row["shape"]: row["outcome"] for row in rows}
    growth = max(row["server_growth_mib"] / row["concurrent"] for row in rows)
    stall = max(row["bystander"]["max_ms"] - row["idle"]["median_ms"] for row in rows)
    memory_met = "met" if growth <= targets["server_growth_mib"] else "not met"
    stall_met = "met" if stall <= targets["bystander_added_ms"] else "not met"
    lines = [*_about(figures), ""]
    other = figures.get("app", "app.py") != "app.py"  # another checkout's app, for a before/after
    if other:
        app = f"commit `{figures['app_commit']}`" if figures.get("app_commit") else figures["app"]
        lines[0] = lines[0].replace("Run ", f"The app at {app}, run ", 1)
    lines.append(
        f"Targets: a 5 MB upload of any shape adds ≤ {targets['server_growth_mib']} MiB to the "
        f"server process: {memory_met} (at most {growth:.0f} MiB a session); another session's "
        f"filter change is stalled by ≤ {targets['bystander_added_ms']} ms: {stall_met} (its "
        f"slowest change under load, {stall:.0f} ms beyond its idle median)."
    )
    if not other:  # this checkout's limits, which another app need not have
        lines += [
            "",
            f"Limits: a check takes at most {limits['seconds']:g} s and {limits['memory_mb']} MB "
            f"beyond its start, {limits['concurrent']} at once (a further one waits "
            f"{limits['wait_seconds']:g} s); a sheet at most {limits['sheet_mb']:g} MB and "
            f"{limits['rows']:,} rows.",
        ]
    lines += ["", "| Upload | size / unpacked (MB) | what the check says |", "|---|---|---|"]
    for shape in figures["shapes"]:
        verdict = (shape.get("verdict") or said.get(shape["name"], "")).replace("|", "/")
        lines.append(
            f"| {shape['name']} | {shape['mb']:.2f} / {shape['unpacked_mb']:.0f} | {verdict} |"
        )
    lines += [
        "",
        "| Upload | sessions | checks, median (s) | server before → peak (MiB) | growth "
        "| checking process RSS / own (MiB) | bystander idle median / max (ms) "
        "| loaded median / p95 / max (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        idle, busy = row["idle"], row["bystander"]
        check = "-" if row["check_median_s"] is None else f"{row['check_median_s']:.2f}"
        worker = (
            f"{row['worker_peak_mib']:.0f} / {row.get('worker_private_peak_mib', 0):.0f}"
            if row["worker_peak_mib"]
            else "- (in the server)"
        )
        lines.append(
            f"| {row['shape']} | {row['concurrent']} | {row['checks']}, {check} | "
            f"{row['server_before_mib']:.0f} → {row['server_peak_mib']:.0f} | "
            f"+{row['server_growth_mib']:.0f} | {worker} | {idle['median_ms']:.0f} / "
            f"{idle['max_ms']:.0f} | {busy['median_ms']:.0f} / {busy['p95_ms']:.0f} / "
            f"{busy['max_ms']:.0f} |"
        )
    notes = []
    fork = max(row["fork_server_mib"] for row in rows)
    if fork:
        notes.append(
            f"The fork server the checks start from holds {fork:.0f} MiB (RSS, once, from the "
            "first upload on). A checking process's RSS counts the pages it shares with it; "
            '"own" is what it does not share (Private_Clean + Private_Dirty).'
        )
    notes.append(
        "Server growth is its peak during the checks minus its size before the first (after one "
        "untimed upload); the controls' growth is what sessions on the Methods page, and a file "
        "of 4.6 MB held by Streamlit, cost whatever the check does. Bystander figures come from "
        "a shared 2-core machine (load average above): read the loaded columns against the idle "
        "ones of the same row."
    )
    return "\n".join([*lines, "", " ".join(notes)])


LOAD_P95_RATIO = 2.0  # p95 per change at 50 sessions, at most this times one session's p95
LOAD_MEMORY_SHARE = 0.10  # memory after the sessions closed, within this share of its start


def _triple(row: dict[str, Any]) -> str:
    return " / ".join(_number(row[f"p{q}_ms"]) for q in (50, 95, 99))


def _memory_back(step: dict[str, Any]) -> tuple[bool, str]:
    """Whether every surviving replica's memory after the sessions closed is within
    LOAD_MEMORY_SHARE of its size before the load, and the largest change, in words."""
    memory = step["memory_mib"]
    pairs = [(b, a) for b, a in zip(memory["before"], memory["after"], strict=True) if a > 0]
    changes = [(a - b) / b for b, a in pairs if b > 0]
    worst = max(changes, key=abs) if changes else 0.0
    return all(abs(c) <= LOAD_MEMORY_SHARE for c in changes), f"{worst:+.1%}"


def _load_targets(figures: dict[str, Any]) -> str:
    steps = figures["steps"]
    parts = []
    largest = max(steps, key=lambda step: step["sessions"])
    errors = len(largest["load"]["errors"])
    parts.append(
        f"errors at {largest['sessions']} sessions: {errors} "
        f"({'met' if errors == 0 else 'not met'}: 0 wanted)"
    )
    for step in steps:
        if step["sessions"] != 50:
            continue
        alone, loaded = step["baseline"]["change"]["p95_ms"], step["load"]["change"]["p95_ms"]
        if alone and loaded:
            ratio = loaded / alone
            met = "met" if ratio <= LOAD_P95_RATIO else "not met"
            parts.append(
                f"p95 per change at 50 sessions {loaded:.0f} ms, {ratio:.2f}× one session's "
                f"{alone:.0f} ms in the same run ({met}: ≤ {LOAD_P95_RATIO:g}× wanted)"
            )
    verdicts = [_memory_back(step) for step in steps]
    met = "met" if all(ok for ok, _ in verdicts) else "not met"
    parts.append(
        "memory after the sessions closed against its start: "
        + ", ".join(f"{step['sessions']} sessions {change}" for step, (_, change) in zip(
            steps, verdicts, strict=True))
        + f" ({met}: within {LOAD_MEMORY_SHARE:.0%} wanted)"
    )  # fmt: skip
    return "Targets: " + "; ".join(parts) + "."


def render_load(figures: dict[str, Any]) -> str:
    """bench/load.py: per number of sessions, a fresh cluster, one session alone first (the
    baseline), then the load; the server's memory before, at its peak and after the sessions
    closed, and over time."""
    lines = [*_about(figures), "", _load_targets(figures), ""]
    lines += [
        "| sessions | actions | errors | change p50 / p95 / p99 (ms) | one session alone: "
        "change p95, cold / after (ms) | p95 / alone after | page visit p50 / p95 / p99 (ms) "
        "| open p95 (ms) | memory before → peak → after, MiB | load average at the end |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in figures["steps"]:
        load, alone = step["load"], step["baseline"]["change"]
        cold = step.get("baseline_cold", {}).get("change", {"p95_ms": None})
        ratio = (
            f"{load['change']['p95_ms'] / alone['p95_ms']:.2f}×"
            if load["change"]["p95_ms"] and alone["p95_ms"]
            else "-"
        )
        memory = step["memory_mib"]
        shown = " → ".join(
            "+".join(f"{m:.0f}" for m in memory[key]) for key in ("before", "peak", "after")
        )
        lines.append(
            f"| {step['sessions']} | {load['actions']} | {len(load['errors'])} | "
            f"{_triple(load['change'])} | {_number(cold['p95_ms'])} / {_number(alone['p95_ms'])}"
            f" | {ratio} | "
            f"{_triple(load['visit'])} | {_number(load['open']['p95_ms'])} | {shown} | "
            f"{step['load_average_at_end'][0]:.1f} |"
        )
    lines += ["", "Memory over time (MiB, all replicas together; s from the cluster's start):", ""]
    for step in figures["steps"]:
        samples = step["memory_mib"]["samples"]
        every = max(1, len(samples) // 12)
        timeline = ", ".join(f"{t:.0f} s {sum(m):.0f}" for t, m in samples[::every])
        memory = step["memory_mib"]
        lines.append(
            f"- {step['sessions']} sessions (load from {memory['load_start']:.0f} s to "
            f"{memory['load_end']:.0f} s): {timeline}"
        )
        rounds = memory.get("after_each_round", [])
        if len(rounds) > 1:
            shown = ", ".join("+".join(f"{m:.0f}" for m in after) for after in rounds)
            later = len(step["load"].get("later_rounds_errors", []))
            lines.append(
                f"  - the same load {len(rounds)} times on the same servers, memory after each "
                f"round: {shown} MiB ({later} errors in the later rounds)"
            )
    for step in figures["steps"]:
        kill = step.get("kill")
        if not kill:
            continue
        restored = kill["restored_from_link"]
        reconnect = _number(step["load"]["reconnect"]["p95_ms"])
        lines += [
            "",
            f"Replica 1 killed (SIGKILL) {step['killed_replica_at_s']:.0f} s into the load of "
            f"{step['sessions']} sessions: {kill['sessions_on_killed_replica']} sessions were on "
            f"it; {restored} reconnected through the proxy to the other replica with their view "
            f"and the link's data restored (reconnect p95 {reconnect} ms), "
            f"{len(kill['errors_on_killed_replica'])} errors among them. The other "
            f"{kill['other_sessions']} sessions: {kill['other_reconnects']} reconnects, "
            f"{len(kill['other_errors'])} errors, change p95 "
            f"{_number(kill['other_change']['p95_ms'])} ms.",
        ]
    return "\n".join(lines)


def render_scale_app(figures: dict[str, Any]) -> str:
    """The Treatment page's filter change and the server's memory, shipped data beside
    synthetic data sets, from one run of bench_scale_app.py."""
    lines = [*_about(figures), f"Pooling method: {figures.get('method', 'glmm')}.", ""]
    lines += [
        "| data | open /treatment (s) | filter change, median (ms) | max (ms) | / shipped "
        "| RSS after open (MB) | after the changes (MB) | per further session (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in figures["rows"].items():
        lines.append(
            f"| {name} | {row['open_s']:.2f} | {row['median_change_ms']:.0f} | "
            f"{1000 * max(row['changes_s']):.0f} | {figures['ratio_to_shipped'][name]:.2f} | "
            f"{row['rss_after_open_mb']:.0f} | {row['rss_after_changes_mb']:.0f} | "
            f"{_number(row['rss_per_further_session_mb'], 1)} |"
        )
    return "\n".join(lines)


def render_scale_browser(figures: dict[str, Any]) -> str:
    """The Treatment page's filter change in Chromium, shipped data beside synthetic cohorts."""
    lines = [*_about(figures), ""]
    lines += [
        "| data | open /treatment (s) | filter change, median (ms) | max (ms) | / shipped "
        "| DOM nodes |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in figures["rows"].items():
        lines.append(
            f"| {name} | {row['open_s']:.1f} | {row['median_ms']:.0f} | {row['max_ms']:.0f} | "
            f"{figures['ratio_to_shipped'][name]:.2f} | {row['dom_nodes']:,} |"
        )
    return "\n".join(lines)


RENDERERS = {
    "app": render_app,
    "meta": render_meta,
    "upload": render_upload,
    "scale_app": render_scale_app,
    "scale_app-reml_hksj": render_scale_app,
    "scale_browser": render_scale_browser,
}
LOADS = {
    name: render_load
    for name in ("load-1", "load-2", "load-kill", "load-memory", "load-memory-arena2")
}


def _load(name: str) -> dict[str, Any] | None:
    source = RESULTS / f"{name}.json"
    if not source.exists():
        print(f"{source.relative_to(ROOT)} missing", file=sys.stderr)
        return None
    return json.loads(source.read_text(encoding="utf-8"))


def main() -> int:
    text = DOCUMENT.read_text(encoding="utf-8")
    blocks = {name: render(f) for name, render in RENDERERS.items() if (f := _load(name))}
    base, new = _load("app-base"), _load("app")
    if base and new:
        blocks["ab"] = render_ab(base, new)
    for name, render in LOADS.items():
        if (RESULTS / f"{name}.json").exists():
            blocks[name] = render(_load(name))
    upload_base = _load("upload-base")
    if upload_base:
        blocks["upload-base"] = render_upload(upload_base)
    for name, block in blocks.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(\n<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            print(f"no bench:{name} markers in {DOCUMENT.name}", file=sys.stderr)
            return 1
        text = pattern.sub(lambda m, b=block: m.group(1) + b + m.group(2), text)
        print(f"rendered bench:{name}")
    DOCUMENT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
