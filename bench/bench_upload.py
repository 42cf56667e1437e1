"""Benchmark uploads on a real server: its memory, and another session's filter changes, while
uploads of hostile and large shapes are checked.

For each shape and number of uploading sessions (1 or 3), a fresh dashboard server (`streamlit run
app.py`), one bystander browser session on /treatment changing "Exclude studies" as
bench/bench_app.py does, first on the idle server and then while uploaders on /methods, in a second
browser (its own thread, at nice 15: they stand for people on other machines), press "Check and
use this extraction" again as soon as each check ends. Before the idle changes, one untimed upload
of the test fixture starts the fork server, as on a server that has checked an upload before.
Measured:

- the server process's resident memory (VmRSS, sampled every 20 ms from /proc) before the
  uploads and at its peak, and the fork server's and each checking process's (RSS, and what it
  does not share with the fork server) at their peak;
- the bystander's filter changes (click to pooled text and charts redrawn), idle and loaded.

The first two shapes are controls: the test fixture (3 KB, valid), what sessions that check uploads
cost whatever the file; and 4.6 MB that the check refuses without unpacking a byte, what a file of
that size costs Streamlit (which holds it, and copies it on every run) besides its check.

Usage:
    .venv/bin/python bench/bench_upload.py [--quick] [--changes 12] [--app OTHER/app.py]

Writes artifacts/bench/upload.json; `python bench/render.py` puts it into docs/performance.md.
`--app` times another checkout's app (its database must be built) for a before/after.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_app import (  # noqa: E402 - after the path is set
    APP,
    CHANGE_TIMEOUT_MS,
    PAGE_TIMEOUT_MS,
    STUDY,
    WS_HOOK,
    _commit,
    _observed_page,
    _one_change,
    _settle,
    change_figures,
    ensure_database,
    machine,
)

from harness.server import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

RESULTS = ROOT / "artifacts" / "bench" / "upload.json"
MIB = 1024 * 1024
UPLOAD_LIMIT = 5 * MIB
SAMPLE_S = 0.02
QUIET_MS = 400  # an upload's check has ended when no message came for this long after it
TARGETS = {"server_growth_mib": 100, "bystander_added_ms": 500}


# ---- the shapes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    name: str
    filename: str
    data: bytes
    unpacked: int  # bytes once unzipped


def _unpacked(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return sum(info.file_size for info in zf.infolist())


def _csv_zip(sheets: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in sheets.items():
            zf.writestr(f"{name}.csv", body)
    return buffer.getvalue()


def _shipped() -> dict[str, bytes]:
    from evidence.extraction import build

    return build.read_sheet_dir(build.SHEETS_DIR)


def zip_inflating_to_a_large_sheet() -> Shape:
    """The issue's shape, grown: the shipped sheets and a quality.csv of 48 MB, within the
    archive's limits (50 MB unpacked, 100 to 1)."""
    header = b"study_id,tool,item,judgement,reason\n"
    rows = b"".join(b"Strati2020,JBI_case_series,item %d,yes,bench\n" % i for i in range(1_040_000))
    data = _csv_zip(_shipped() | {"quality": header + rows})
    return Shape("zip inflating to a 48 MB sheet", "large_sheet.zip", data, _unpacked(data))


def _workbook(sheet_xml: bytes, sheet: str = "studies") -> bytes:
    """A minimal .xlsx holding one worksheet (written by hand: openpyxl would take minutes)."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            b'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            b'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
            b'"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
            b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
            b'"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type='
            f'"{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ).encode(),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{ns}" xmlns:r="{rel}">'
            f'<sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type='
            f'"{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ).encode(),
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in parts.items():
            zf.writestr(name, body)
    return buffer.getvalue()


def _column(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _sheet_xml(rows: Iterator[bytes]) -> bytes:
    ns = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="'
        + ns
        + b'"><sheetData>'
        + b"".join(rows)
        + b"</sheetData></worksheet>"
    )


def wide_workbook() -> Shape:
    """Rows 16,384 cells wide (every column Excel has), numbers in every cell, up to 5 MB."""
    rng = random.Random(16384)
    letters = [_column(c).encode() for c in range(1, 16_385)]

    def row(r: int) -> bytes:
        cells = b"".join(
            b'<c r="%s%d"><v>%d</v></c>' % (letters[c], r, rng.randrange(10**6))
            for c in range(16_384)
        )
        return b'<row r="%d">%s</row>' % (r, cells)

    rows = [row(1)]
    while len(_workbook(_sheet_xml(iter(rows)))) < UPLOAD_LIMIT * 0.9:
        rows.append(row(len(rows) + 1))
    data = _workbook(_sheet_xml(iter(rows)))
    return Shape(f"workbook {len(rows)} rows x 16,384 columns", "wide.xlsx", data, _unpacked(data))


def tall_workbook() -> Shape:
    """A quality sheet of short rows, as many as the archive limits let through (50 MB unpacked)."""
    rng = random.Random(5001)
    header = (
        b'<row r="1">'
        + b"".join(
            b'<c t="inlineStr"><is><t>%s</t></is></c>' % name
            for name in (b"study_id", b"tool", b"item", b"judgement", b"reason")
        )
        + b"</row>"
    )

    def rows(count: int) -> Iterator[bytes]:
        yield header
        for r in range(2, count + 2):
            values = b"".join(b"<c><v>%d</v></c>" % rng.randrange(100) for _ in range(4))
            yield b'<row r="%d">%s</row>' % (r, values)

    count = 480_000
    data = _workbook(_sheet_xml(rows(count)), "quality")
    return Shape(f"workbook of {count:,} quality rows", "tall.xlsx", data, _unpacked(data))


def largest_valid() -> Shape:
    """The shipped extraction copied under new ids until a sheet nears 5,000 rows or the file
    5 MB, exported as the dashboard exports it: valid, so it is built and comes back."""
    import csv

    from evidence.extraction import build, export
    from evidence.extraction.contract import SHEETS_BY_NAME

    shipped = _shipped()
    biggest = max(len(body.decode("utf-8").splitlines()) for body in shipped.values())
    copies = 4_900 // biggest

    def scaled(copies: int) -> dict[str, bytes]:
        out = {}
        for name, body in shipped.items():
            sheet = SHEETS_BY_NAME[name]
            keyed = {c.name for c in sheet.columns if c.kind in ("id", "ref")}
            records = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(sheet.column_names))
            writer.writeheader()
            for k in range(copies):
                for record in records:
                    row = dict(record)
                    for column in keyed | ({"sum_of"} if name == "review_figures" else set()):
                        if row.get(column):
                            row[column] = ";".join(f"{v}_{k}" for v in row[column].split(";"))
                    writer.writerow(row)
            out[name] = buffer.getvalue().encode("utf-8")
        return out

    while True:
        raw = scaled(copies)
        con = build.build_in_memory(raw, build.Origin("bench", build.OTHER_FOLDER))
        data = export.export_workbook(con)
        con.close()
        if len(data) < UPLOAD_LIMIT:
            break
        copies = int(copies * 0.85)
    rows = sum(len(body.splitlines()) - 1 for body in raw.values())
    name = f"valid extraction, {copies} copies of the shipped one ({rows:,} rows)"
    return Shape(name, "largest_valid.xlsx", data, _unpacked(data))


def control() -> Shape:
    """The test fixture's extraction (3 KB, valid): what sessions checking uploads cost the
    server and the bystander whatever the file, against which the shapes below are read."""
    from evidence.extraction import build

    data = _csv_zip(build.read_sheet_dir(ROOT / "tests" / "fixtures" / "good"))
    return Shape("control: the test fixture (valid)", "fixture.zip", data, _unpacked(data))


def control_large() -> Shape:
    """4.6 MB that the check refuses without unpacking anything (a zip holding only a README of
    random bytes): what a file of that size costs the server before and besides its check."""
    rng = random.Random(46)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("README.txt", rng.randbytes(int(4.6 * MIB)))
    data = buffer.getvalue()
    return Shape("control: 4.6 MB refused unread", "readme_only.zip", data, _unpacked(data))


SHAPES: tuple[Callable[[], Shape], ...] = (
    control,
    control_large,
    zip_inflating_to_a_large_sheet,
    wide_workbook,
    tall_workbook,
    largest_valid,
)


# ---- memory --------------------------------------------------------------------------------------
def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in bytes (empty once it has exited)."""
    figures = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    figures[key] = int(value.split()[0]) * 1024
    except OSError:
        return {}
    return figures


def _private(pid: int) -> int:
    """Memory a process does not share (Private_Clean + Private_Dirty, bytes): for a checking
    process, what it added to the pages it shares with the fork server."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as rollup:
            for line in rollup:
                key, _, value = line.partition(":")
                if key in ("Private_Clean", "Private_Dirty"):
                    total += int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return total


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def server_pid(port: int) -> int:
    """The `streamlit run` process serving `port`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                args = cmdline.read().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and str(port).encode() in args:
            return int(entry)
    raise RuntimeError(f"no streamlit process serves port {port}")


class Sampler:
    """Samples the server's RSS and its descendants' (the fork server, the checking processes)
    every SAMPLE_S seconds in a thread; `window()` gives the peaks since it was last called."""

    def __init__(self, pid: int):
        self.pid = pid
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._reset()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _reset(self) -> None:
        self.server_peak = 0
        self.helper_peak = 0  # the largest descendant that lives on (the fork server)
        self.worker_peak = 0  # the largest short-lived descendant (a checking process)
        self.worker_private_peak = 0  # the most one of them did not share with the fork server
        self.workers_total_peak = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            server = _status(self.pid).get("VmRSS", 0)
            tree = _children()
            direct = tree.get(self.pid, [])
            helpers = {pid: _status(pid).get("VmRSS", 0) for pid in direct}
            workers = {
                pid: _status(pid).get("VmRSS", 0)
                for parent in direct
                for pid in tree.get(parent, [])
            }
            private = [_private(pid) for pid in workers]
            with self._lock:
                self.server_peak = max(self.server_peak, server)
                self.helper_peak = max([self.helper_peak, *helpers.values()])
                self.worker_peak = max([self.worker_peak, *workers.values()])
                self.worker_private_peak = max([self.worker_private_peak, *private])
                self.workers_total_peak = max(self.workers_total_peak, sum(workers.values()))
            time.sleep(SAMPLE_S)

    def rss(self) -> int:
        return _status(self.pid).get("VmRSS", 0)

    def window(self) -> dict[str, float]:
        with self._lock:
            figures = {
                "server_peak_mib": round(self.server_peak / MIB, 1),
                "fork_server_mib": round(self.helper_peak / MIB, 1),
                "worker_peak_mib": round(self.worker_peak / MIB, 1),
                "worker_private_peak_mib": round(self.worker_private_peak / MIB, 1),
                "workers_total_peak_mib": round(self.workers_total_peak / MIB, 1),
            }
            self._reset()
        return figures

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# ---- uploaders ---------------------------------------------------------------------------------
class Uploaders(threading.Thread):
    """`count` sessions on /methods in their own browser (a Playwright instance of this thread),
    each with `shape` chosen in the uploader; they press "Check and use this extraction" together,
    wait until every check has ended, and again, until `stop` is set."""

    def __init__(self, base: str, shape: Shape, count: int, folder: Path):
        super().__init__(daemon=True)
        self.base, self.shape, self.count = base, shape, count
        self.folder = folder
        self.path = folder / shape.filename
        self.path.write_bytes(shape.data)
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.checks: list[float] = []
        self.outcome = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(_low_priority_chromium(self.folder)), args=CHROMIUM_ARGS
                )
                try:
                    pages = [self._open(browser) for _ in range(self.count)]
                    self.ready.set()
                    while not self.stop.is_set():
                        self._round(pages)
                finally:
                    browser.close()
        except BaseException as err:  # reported by the main thread
            self.error = err
            self.ready.set()

    def _open(self, browser: Any) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script(WS_HOOK)
        page = context.new_page()
        page.goto(f"{self.base}/methods")
        page.wait_for_selector('[data-testid="stFileUploaderDropzoneInput"]', state="attached")
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(self.path))
        page.get_by_role("button", name="Check and use this extraction").wait_for(
            timeout=PAGE_TIMEOUT_MS
        )
        return page

    def _round(self, pages: list[Any]) -> None:
        counts = []
        start = time.perf_counter()
        for page in pages:
            counts.append(page.evaluate("() => window.__wsTimes.length"))
            page.evaluate("() => { window.__wsTimes.length = 0; }")
            page.get_by_role("button", name="Check and use this extraction").click()
        for page in pages:
            page.wait_for_function(
                """(quiet) => {
                    const times = window.__wsTimes;
                    if (!times.length) return false;
                    if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
                    return performance.now() - times[times.length - 1] > quiet;
                }""",
                arg=QUIET_MS,
                polling=50,
                timeout=120_000,
            )
            self.checks.append(time.perf_counter() - start - QUIET_MS / 1000)
        alert = pages[0].locator('[data-testid="stDataFrame"], [data-testid="stAlert"]')
        if not self.outcome:
            self.outcome = _outcome(pages[0]) if alert.count() else ""


def _low_priority_chromium(folder: Path) -> Path:
    """Chromium started at nice 15: the uploaders' browsers stand for people on other machines,
    so they must not take this machine's two cores from the server and the bystander."""
    wrapper = folder / "chromium-nice"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n 15 {shlex.quote(CHROMIUM)} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _outcome(page: Any) -> str:
    """What the page says about the last check: its problem count, or that it loaded."""
    errors = page.locator('[data-testid="stAlert"]').all_inner_texts()
    text = " / ".join(t.strip() for t in errors if "problem" in t)
    return text.split(";")[0] if text else "loaded"


def verdict(shape: Shape) -> str:
    """The line this checkout's check gives about the shape (run here, not on the server)."""
    from evidence.extraction import build

    con, problems = build.from_upload(shape.filename, shape.data)
    if con is not None:
        con.close()
        return "loaded"
    # The problem about the shape itself, not the sheets a one-sheet file leaves out.
    telling = [p for p in problems if p.message != "sheet is missing"] or problems
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return str(telling[0])[:160] + more


# ---- the run -----------------------------------------------------------------------------------
class Bystander:
    """bench_app's observed /treatment page, excluding and including one study, change after
    change. A change that does not finish in bench_app's 15 s is counted as 15 s (the old code
    could stall a session that long) and the page is left to settle before the next."""

    def __init__(self, page: Any):
        self.page = page

    def changes(self, count: int) -> list[dict[str, float]]:
        timed = []
        for _ in range(count):
            excluded = self.page.locator(f'button[aria-label="Remove {STUDY}"]').count() > 0
            try:
                timed.append(_one_change(self.page, exclude=not excluded))
            except Exception:  # Playwright's TimeoutError: the change took longer than that
                timed.append({"latency": CHANGE_TIMEOUT_MS, "lastMessage": None})
                self.page.keyboard.press("Escape")
                with contextlib.suppress(Exception):
                    _settle(self.page)
        return timed


def scenario(
    page: Bystander,
    base: str,
    sampler: Sampler,
    shape: Shape,
    count: int,
    changes: int,
    folder: Path,
) -> dict[str, Any]:
    """The bystander's changes while `count` sessions check `shape` again and again."""
    sampler.window()
    before = sampler.rss()
    uploaders = Uploaders(base, shape, count, folder)
    uploaders.start()
    uploaders.ready.wait(timeout=180)
    if uploaders.error:
        raise uploaders.error
    timed = page.changes(changes)
    while len(uploaders.checks) < count and uploaders.is_alive():
        time.sleep(0.1)  # at least one full round of checks in the window
    uploaders.stop.set()
    uploaders.join(timeout=180)
    if uploaders.error:
        raise uploaders.error
    peaks = sampler.window()
    checks = uploaders.checks
    return {
        "shape": shape.name,
        "concurrent": count,
        "checks": len(checks),
        "check_median_s": round(statistics.median(checks), 2) if checks else None,
        "check_max_s": round(max(checks), 2) if checks else None,
        "outcome": uploaders.outcome,
        "server_before_mib": round(before / MIB, 1),
        **peaks,
        "server_growth_mib": round(peaks["server_peak_mib"] - before / MIB, 1),
        "bystander": change_figures(timed),
    }


def warm_up(base: str, folder: Path) -> None:
    """One valid upload, checked once and untimed: the fork server is started and Streamlit's
    upload path has run, as on a server that has seen an upload before."""
    from evidence.extraction import build

    raw = build.read_sheet_dir(ROOT / "tests" / "fixtures" / "good")
    shape = Shape("warm-up", "warm_up.zip", _csv_zip(raw), 0)
    uploaders = Uploaders(base, shape, 1, folder)
    uploaders.start()
    uploaders.ready.wait(timeout=180)
    deadline = time.perf_counter() + 120
    while not uploaders.checks and uploaders.is_alive() and time.perf_counter() < deadline:
        time.sleep(0.1)
    uploaders.stop.set()
    uploaders.join(timeout=120)
    if uploaders.error:
        raise uploaders.error


@contextmanager
def bystander(browser: Any, script: str) -> Iterator[tuple[Any, str, int]]:
    """bench_app's observed /treatment page on a fresh server: (page, base URL, server pid)."""
    with _observed_page(browser, replace(APP, script=script)) as page:
        url = urlparse(page.url)
        yield page, f"{url.scheme}://{url.netloc}", server_pid(url.port or 80)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 changes a scenario and idle")
    parser.add_argument("--changes", type=int, default=12, help="bystander changes a scenario")
    parser.add_argument("--app", default=APP.script, help="the dashboard script to run")
    parser.add_argument("--only", default="", help="run only shapes whose name contains this")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    changes = 6 if args.quick else max(4, min(args.changes, 100))
    idle_changes = changes
    command = " ".join(
        [".venv/bin/python", "bench/bench_upload.py", *(shlex.quote(a) for a in sys.argv[1:])]
    )
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: install Debian's chromium", file=sys.stderr)
        return 2
    print(f"database: {ensure_database()}", file=sys.stderr)
    shapes = []
    for make in SHAPES:
        start = time.perf_counter()
        shape = make()
        if args.only not in shape.name:
            continue
        shapes.append(shape)
        print(
            f"  shape {shapes[-1].name}: {len(shapes[-1].data) / MIB:.2f} MB, "
            f"{shapes[-1].unpacked / MIB:.0f} MB unpacked ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
        )

    from playwright.sync_api import sync_playwright

    results: list[dict[str, Any]] = []
    idle: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-upload-") as folder,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            about = machine(browser.version)
            for shape in shapes:
                for count in (1, 3):
                    print(f"  {shape.name} x{count}", file=sys.stderr)
                    with bystander(browser, args.app) as (observed, base, pid):
                        page = Bystander(observed)
                        sampler = Sampler(pid)
                        try:
                            page.changes(2)  # warm: both states seen once
                            warm_up(base, Path(folder))
                            quiet = page.changes(idle_changes)
                            result = scenario(
                                page, base, sampler, shape, count, changes, Path(folder)
                            )
                        finally:
                            sampler.stop()
                    idle += quiet
                    results.append({**result, "idle": change_figures(quiet)})
        finally:
            browser.close()
    about["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    from evidence.extraction import validate, worker

    figures = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "app": args.app,
        "machine": about,
        "limits": {
            "seconds": worker.LIMITS.seconds,
            "memory_mb": worker.LIMITS.memory_mb,
            "concurrent": worker.LIMITS.concurrent,
            "wait_seconds": worker.LIMITS.wait_seconds,
            "sheet_mb": validate.MAX_SHEET_BYTES / MIB,
            "rows": validate.MAX_ROWS_PER_SHEET,
        },
        "shapes": [
            {
                "name": s.name,
                "file": s.filename,
                "mb": round(len(s.data) / MIB, 2),
                "unpacked_mb": round(s.unpacked / MIB, 1),
                "verdict": verdict(s) if args.app == APP.script else None,
            }
            for s in shapes
        ],
        "idle": change_figures(idle),
        "scenarios": results,
        "targets": TARGETS,
    }
    if args.app != APP.script:
        figures["app_commit"] = _commit(Path(args.app).resolve().parent)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for row in results:
        print(
            f"{row['shape']} x{row['concurrent']}: server +{row['server_growth_mib']} MiB, "
            f"worker {row['worker_peak_mib']} MiB, bystander p95 {row['bystander']['p95_ms']} ms "
            f"(idle {figures['idle']['p95_ms']}), checks {row['check_median_s']} s"
        )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
