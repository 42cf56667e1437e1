"""A browser tab without a browser: Streamlit's websocket protocol (BackMsg out, ForwardMsg in),
spoken as the dashboard's frontend speaks it, for the cluster tests and the load benchmark.

    tab = Tab(proxy_url, "treatment", "indication=treatment")
    await tab.open()                                  # the page as a browser loads it
    await tab.choose("exclude", ["Wehrli2022"])       # a sidebar filter changed
    await tab.visit("dose")                           # a page chosen in the navigation
    await tab.reconnect()                             # the socket lost: the frontend's reconnect

What it sends is what Chromium sends (recorded from the real frontend): a first `rerun_script`
with the URL's query string and page name; a widget change as a `rerun_script` carrying the
widget's new state (by the id the server gave the widget); a page chosen in the navigation as a
`rerun_script` with that page's script hash and no query string. Like a browser it first loads
the page over HTTP, which gives it the proxy's affinity cookie, and sends that cookie with the
WebSocket. A run counts as done at the `script_finished` that ends it; an exception element, a
page not found or a compile error is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

REPLICA_HEADER = "X-Anakinra-Replica"
FINISHED = {
    ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY,
    ForwardMsg.ScriptFinishedStatus.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
}
TEXT_ELEMENTS = ("alert", "markdown", "heading", "text")


@dataclass
class Run:
    """What one run of the script showed: seconds from the message sent to the run's end, the
    texts drawn, and errors (exceptions drawn, a page not found, no end in time)."""

    seconds: float
    texts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Widget:
    """A widget as the frontend holds it: its id, kind, options and current value (labels)."""

    id: str
    kind: str
    options: list[str]
    value: list[str] | list[float] | str | float | None

    def state(self, message: BackMsg) -> None:
        """Add this widget's state to a rerun message, typed as the frontend types it."""
        state = message.rerun_script.widget_states.widgets.add()
        state.id = self.id
        if self.value is None:
            return
        if self.kind in ("multiselect", "button_group"):
            state.string_array_value.data.extend(self.value)
        elif self.kind == "slider":
            state.double_array_value.data.extend(self.value)
        elif self.kind == "number_input":
            state.int_value = int(self.value)
        else:
            state.string_value = str(self.value)


def _value(kind: str, proto: object, options: list[str]) -> object:
    """A widget's value as the server drew it (set from the session, else its default)."""

    def default() -> list[int]:
        found = proto.default
        return list(found) if hasattr(found, "__iter__") else [found]

    if kind in ("multiselect", "button_group"):
        return list(proto.raw_values) if proto.set_value else [options[i] for i in default()]
    if kind in ("selectbox", "radio"):
        if proto.set_value:
            return proto.raw_value or None
        return options[proto.default] if proto.HasField("default") else None
    if kind == "slider":
        return list(proto.value) if proto.set_value else list(proto.default)
    if kind == "number_input":
        return proto.value if proto.set_value else proto.default
    return None


SENT_WIDGETS = ("multiselect", "button_group", "selectbox", "radio", "slider", "number_input")


class Tab:
    """One browser tab on the dashboard at `base` (a server or the proxy)."""

    def __init__(self, base: str, page: str = "", query: str = "", timeout: float = 60):
        self.base = base.rstrip("/")
        self.page = page  # the URL's path, without its "/"
        self.query = query  # the URL's query string, as the server last wrote it
        self.timeout = timeout
        self.cookie: str | None = None
        self.socket = None
        self.replica: str | None = None  # which replica the proxy sent the WebSocket to
        self.pages: dict[str, str] = {}  # url path -> page script hash
        self.widgets: dict[str, Widget] = {}  # widget key -> its id and options
        self.last: Run | None = None

    # ---- connection --------------------------------------------------------------------
    async def open(self) -> Run:
        """Load the page (HTTP, for the affinity cookie), connect, run the script for the URL."""
        if self.cookie is None:
            self.cookie = await asyncio.to_thread(self._load_page)
        await self._connect()
        return await self._run(self._first_message())

    async def reconnect(self) -> Run:
        """What the frontend does when its socket closes: connect again (the same cookie, so the
        proxy's affinity decides where) and run the script for the URL it shows."""
        await self.close()
        await self._connect()
        return await self._run(self._first_message())

    async def close(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(self.socket.close(), 5)
            self.socket = None

    def _load_page(self) -> str | None:
        url = f"{self.base}/{self.page}" + (f"?{self.query}" if self.query else "")
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            response.read()
            cookies = response.headers.get_all("Set-Cookie") or []
        found = [c.split(";", 1)[0] for c in cookies if c.startswith("anakinra_replica=")]
        return found[0] if found else None

    async def _connect(self) -> None:
        import websockets

        url = self.base.replace("http://", "ws://", 1) + "/_stcore/stream"
        headers = {"Cookie": self.cookie} if self.cookie else {}
        self.socket = await websockets.connect(
            url,
            subprotocols=["streamlit"],
            additional_headers=headers,
            open_timeout=self.timeout,
            max_size=None,
            ping_interval=None,
        )
        self.replica = self.socket.response.headers.get(REPLICA_HEADER)

    def _first_message(self) -> BackMsg:
        message = BackMsg()
        message.rerun_script.query_string = self.query
        message.rerun_script.page_name = self.page
        self._context(message)
        return message

    def _context(self, message: BackMsg) -> None:
        info = message.rerun_script.context_info
        info.timezone, info.locale = "UTC", "en-US"
        info.url = f"{self.base}/{self.page}"

    # ---- what a person does ------------------------------------------------------------
    async def choose(self, key: str, values: list[str] | str) -> Run:
        """Set a sidebar widget (`filter_<key>` or `view_<key>`) to `values` (labels, as shown)."""
        widget = self.widgets.get(f"filter_{key}") or self.widgets[f"view_{key}"]
        if widget.kind in ("multiselect", "button_group"):
            widget.value = [values] if isinstance(values, str) else list(values)
        else:
            widget.value = values if isinstance(values, str) else values[0]
        message = BackMsg()
        message.rerun_script.query_string = self.query
        message.rerun_script.page_script_hash = self.pages.get(self.page, "")
        self._states(message)
        self._context(message)
        return await self._run(message)

    def _states(self, message: BackMsg) -> None:
        """Every widget's state, as the frontend sends them with each rerun."""
        for widget in self.widgets.values():
            widget.state(message)

    async def visit(self, page: str) -> Run:
        """Choose a page in the navigation (the frontend sends its hash, no query string)."""
        message = BackMsg()
        message.rerun_script.page_script_hash = self.pages[page]
        self._states(message)
        self.page = page
        self._context(message)
        return await self._run(message)

    def options(self, key: str) -> list[str]:
        widget = self.widgets.get(f"filter_{key}") or self.widgets[f"view_{key}"]
        return widget.options

    # ---- one run -------------------------------------------------------------------------
    async def _run(self, message: BackMsg) -> Run:
        start = time.perf_counter()
        run = Run(0.0)
        await self.socket.send(message.SerializeToString())
        deadline = start + self.timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                run.errors.append(f"no end of the run in {self.timeout:g} s")
                break
            try:
                raw = await asyncio.wait_for(self.socket.recv(), left)
            except TimeoutError:
                continue
            forward = ForwardMsg()
            forward.ParseFromString(raw)
            kind = forward.WhichOneof("type")
            if kind == "delta":
                self._delta(forward, run)
            elif kind in ("new_session", "navigation"):  # the pages and their script hashes
                for page in getattr(forward, kind).app_pages:
                    self.pages[page.url_pathname] = page.page_script_hash
            elif kind == "page_info_changed":
                self.query = forward.page_info_changed.query_string
            elif kind == "page_not_found":
                run.errors.append(f"page not found: {forward.page_not_found.page_name}")
            elif kind == "script_finished":
                status = forward.script_finished
                if status == ForwardMsg.ScriptFinishedStatus.FINISHED_WITH_COMPILE_ERROR:
                    run.errors.append("the script did not compile")
                    break
                if status in FINISHED:
                    break
        run.seconds = time.perf_counter() - start
        self.last = run
        return run

    def _delta(self, forward: ForwardMsg, run: Run) -> None:
        if forward.delta.WhichOneof("type") != "new_element":
            return
        element = forward.delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            run.errors.append(f"{element.exception.type}: {element.exception.message}")
            return
        if kind in TEXT_ELEMENTS:  # as read: Markdown's escapes resolved
            run.texts.append(re.sub(r"\\(.)", r"\1", getattr(element, kind).body))
            return
        proto = getattr(element, kind, None)
        widget_id = getattr(proto, "id", "") if proto is not None else ""
        if widget_id.startswith("$$ID-") and kind in SENT_WIDGETS:
            key = widget_id.split("-", 2)[2]
            options = list(getattr(proto, "options", []))
            if kind == "button_group":
                options = [option.content for option in options]
            options = [str(o) for o in options]
            self.widgets[key] = Widget(widget_id, kind, options, _value(kind, proto, options))


def is_loopback(url: str) -> bool:
    """Whether `url` names this machine (the load test sends nothing anywhere else)."""
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
