"""Hosting settings against real servers: the WebSocket refuses hosts outside
`server.allowedHosts`; docs/hosting.md's nginx blocks, run in front of the app, send the
security headers and the affinity cookie, hide the private endpoints, and every page, chart,
download and upload works in Chromium under its Content-Security-Policy."""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence.extraction import build
from harness import cluster
from harness.server import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, streamlit_server

TIMEOUT_MS = 45_000


def _handshake(base: str, host: str) -> int:
    """The HTTP status of a WebSocket handshake on /_stcore/stream sent with this Host header
    (101: accepted; 403: refused before the upgrade)."""
    port = int(base.rsplit(":", 1)[1])
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request.encode())
        status_line = sock.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def _get(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hosting")
    return build.build_from(build.SHEETS_DIR, folder / "anakinra.duckdb")


def test_the_config_names_the_allowed_hosts() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["allowedHosts"], "an empty list accepts any Host header"
    assert config["server"]["scriptHealthCheckEnabled"] is True


@pytest.mark.slow
def test_the_websocket_refuses_hosts_outside_the_allow_list(database: Path) -> None:
    with streamlit_server(env={"ANAKINRA_DB": str(database)}) as base:
        port = base.rsplit(":", 1)[1]
        assert _handshake(base, f"127.0.0.1:{port}") == 101
        assert _handshake(base, f"localhost:{port}") == 101
        assert _handshake(base, "rebound.attacker.example") == 403
    # A host names its public address; the variable replaces the config file's list.
    env = {"ANAKINRA_DB": str(database), "STREAMLIT_SERVER_ALLOWED_HOSTS": "dash.example.org"}
    with streamlit_server(env=env) as base:
        assert _handshake(base, "dash.example.org") == 101
        assert _handshake(base, "rebound.attacker.example") == 403


@pytest.mark.slow
def test_streamlit_serves_its_metrics_whatever_the_config(database: Path) -> None:
    """Streamlit 1.67 has no setting to turn /_stcore/metrics off: the proxy must hide it."""
    with streamlit_server(env={"ANAKINRA_DB": str(database)}) as base:
        assert _get(f"{base}/_stcore/metrics")[0] == 200


# ---- docs/hosting.md's nginx blocks in front of the app --------------------------------------
@pytest.fixture(scope="module")
def proxied(database: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app behind nginx running docs/hosting.md's blocks (an upstream of one); yields the
    proxy's base URL."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        message = "nginx is missing: install Debian's nginx (make system-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("nginx")
    with streamlit_server(env={"ANAKINRA_DB": str(database)}) as base:
        port = free_port()
        conf = cluster.nginx_conf(folder, f"127.0.0.1:{port}", [base.removeprefix("http://")])
        check = subprocess.run(
            [nginx, "-t", "-c", str(conf), "-p", str(folder)], capture_output=True
        )
        assert check.returncode == 0, check.stderr.decode()
        process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(folder)])
        proxy = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if _get(f"{proxy}/_stcore/health")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            yield proxy
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.mark.browser
def test_the_proxy_sends_the_security_headers_and_hides_the_private_endpoints(
    proxied: str,
) -> None:
    status, headers = _get(f"{proxied}/")
    assert status == 200
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # A new browser gets its affinity cookie (no secret, no state); one that has it, none.
    cookie = headers["set-cookie"]
    assert re.fullmatch(r"anakinra_replica=[0-9a-f]{32}; Path=/; HttpOnly; SameSite=Lax", cookie)
    request = urllib.request.Request(f"{proxied}/", headers={"Cookie": cookie.split(";")[0]})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert "anakinra_replica" not in (response.headers.get("Set-Cookie") or "")
    assert _get(f"{proxied}/_stcore/health")[0] == 200
    assert _get(f"{proxied}/_stcore/metrics")[0] == 404
    assert _get(f"{proxied}/_stcore/script-health-check")[0] == 404


@pytest.mark.browser
def test_every_page_works_through_the_proxy_under_its_content_security_policy(
    proxied: str, tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing")
    violations: list[str] = []

    def watch(page: object) -> None:
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        watch(page)
        for path, charts in (("", 0), ("treatment", 2), ("dose", 1), ("studies", 0)):
            page.goto(f"{proxied}/{path}")
            playwright_api.expect(page.locator("h1").first).to_be_visible(timeout=TIMEOUT_MS)
            chart = page.locator('[data-testid="stVegaLiteChart"] svg')
            if charts:
                playwright_api.expect(chart.first).to_be_visible(timeout=TIMEOUT_MS)
            assert page.locator('[data-testid="stException"]').count() == 0
        # Meeting mode's keys are a script from the app's static folder: allowed, loaded, working.
        page.goto(f"{proxied}/prophylaxis?mode=meeting")
        page.wait_for_function("() => window.__meetingKeys === true", timeout=TIMEOUT_MS)
        section = page.locator('[class*="st-key-outcome_"]').first
        playwright_api.expect(section).to_be_visible(timeout=TIMEOUT_MS)
        before = section.bounding_box()["y"]
        page.keyboard.press("PageDown")
        page.wait_for_function(
            "(y) => document.querySelector('[class*=\"st-key-outcome_\"]')"
            ".getBoundingClientRect().y < y - 10",
            arg=before,
            timeout=TIMEOUT_MS,
        )
        # A chart's PNG and an export are made on the click and fetched from the app.
        page.goto(f"{proxied}/treatment")
        button = page.locator(".st-key-forest_icans_response_png button")
        button.wait_for(timeout=TIMEOUT_MS)
        with page.expect_download(timeout=TIMEOUT_MS) as png:
            button.click()
        assert Path(png.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page.goto(f"{proxied}/methods")
        export = page.get_by_role("button", name="Extraction in use (XLSX)")
        export.wait_for(timeout=TIMEOUT_MS)
        with page.expect_download(timeout=TIMEOUT_MS) as xlsx:
            export.click()
        workbook = Path(xlsx.value.path())
        assert workbook.read_bytes()[:2] == b"PK"
        # An upload goes through the proxy (a PUT with Streamlit's XSRF token).
        upload = tmp_path / "extraction.xlsx"
        shutil.copy(workbook, upload)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
        page.get_by_role("button", name="Check and use this extraction").click()
        page.wait_for_selector("text=shared by link", timeout=TIMEOUT_MS)
        page.wait_for_url(re.compile(r"data=[0-9a-f]{64}"), timeout=TIMEOUT_MS)  # its id
        context.close()
        browser.close()
    assert not violations, violations
