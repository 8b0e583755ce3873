"""The README's web app opened in a real browser: headless Chromium, from Debian's `chromium`
package, driven over the DevTools protocol on a pipe. The app is the README's as written, its
page the one it serves at `/`, its provider the local test server. Between the browser and the
app is a relay that counts the browser's requests and can cut its connections."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.openai_server import OpenAIServer
from tests.test_lifted import RELEASE, finish, marked, released, serve_app

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs headless Chromium: apt-get install chromium (CI installs it, and there this test runs)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-proxy-server",
]
RETRY = 3.5  # seconds: longer than EventSource's default wait before it reconnects (3 s)


class Chromium:
    """Headless Chromium with a DevTools protocol pipe: JSON messages ending in NUL, commands
    on the browser's fd 3, replies and events on its fd 4."""

    def __init__(self, profile: Path) -> None:
        to_browser, self.commands = os.pipe()
        self.replies, from_browser = os.pipe()
        # Above 4, so that putting them at 3 and 4 in the child overwrites neither.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5) for fd in (to_browser, from_browser)]
        for fd in (to_browser, from_browser):
            os.close(fd)
        self.log = profile / "chromium.log"
        profile.mkdir()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                close_fds=False,  # our own descriptors are not inheritable (PEP 446): only 3 and 4 pass
                preexec_fn=lambda: (os.dup2(ends[0], 3), os.dup2(ends[1], 4)),
            )
        for fd in ends:
            os.close(fd)
        self.buffer = b""
        self.ids = iter(range(1, 1_000_000))
        self.session = ""
        self.target = ""

    def call(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        """Send one command (to the page's session unless `session` is False); its result."""
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                if not select.select([self.replies], [], [], 30)[0]:
                    raise AssertionError(f"{method}: no reply from Chromium within 30s\n{self.tail()}")
                if not (piece := os.read(self.replies, 65536)):
                    raise AssertionError(f"{method}: Chromium ended\n{self.tail()}")
                self.buffer += piece
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == number:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return dict(reply["result"])

    def tail(self) -> str:
        """The end of Chromium's own output, for a failure's message."""
        return self.log.read_text(errors="replace")[-3000:]

    def open(self, url: str) -> None:
        """Open `url` in a new tab, which later calls then drive."""
        self.target = self.call("Target.createTarget", session=False, url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", session=False, targetId=self.target, flatten=True)[
            "sessionId"
        ]

    def text(self) -> str:
        """What the page shows."""
        result = self.call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True)
        return str(result["result"].get("value", ""))

    def close_tab(self) -> None:
        """The user closes the tab."""
        self.call("Target.closeTarget", session=False, targetId=self.target)

    def quit(self) -> None:
        with contextlib.suppress(OSError, AssertionError):
            self.call("Browser.close", session=False)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.commands, self.replies):
            os.close(fd)


class Relay:
    """A TCP relay from a port of its own to the app's: it records the requests that pass
    (their first line and Last-Event-ID), the status lines that come back, and can cut every
    connection open now, as a dropped network would."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.requests: list[str] = []
        self.statuses: list[str] = []
        self.open: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            app = socket.create_connection(("127.0.0.1", self.target))
            self.open += [client, app]
            threading.Thread(target=self.pump, args=(client, app, self.requests), daemon=True).start()
            threading.Thread(target=self.pump, args=(app, client, self.statuses), daemon=True).start()

    def pump(self, source: socket.socket, sink: socket.socket, heads: list[str]) -> None:
        """Copy source to sink; a piece that starts an HTTP message (a request, a response) is
        recorded: its first line, and the Last-Event-ID it carries."""
        with contextlib.suppress(OSError):
            while piece := source.recv(65536):
                if piece.startswith((b"GET ", b"HTTP/")):
                    lines = piece.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
                    ids = [line for line in lines if line.lower().startswith("last-event-id:")]
                    heads.append(" ".join([lines[0], *ids]))
                sink.sendall(piece)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Cut every connection open now."""
        for end in self.open:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        self.cut()


def until(check: Callable[[], Any], what: str, seconds: float = 15) -> Any:
    """Poll `check` until it returns something true; fail after `seconds`, saying `what`."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds}s")
        time.sleep(0.05)
    return result


def accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port` (the app prints its port before it listens)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    assert CHROMIUM, "CI is set and Chromium is not installed: .ci/run installs Debian's chromium package"
    chromium = Chromium(tmp_path / "chromium")
    yield chromium
    chromium.quit()


class Opened:
    """The README's web app behind a relay, its page open in the browser on one question."""

    def __init__(self, tmp_path: Path, backend: str, server: OpenAIServer, browser: Chromium, scenario: str):
        self.server, self.browser = server, browser
        self.proc, port = serve_app(tmp_path, backend, server, scenario)
        until(lambda: accepts(port), "the app listened on the port it printed")
        self.relay = Relay(port)
        self.mark = f"browser {uuid.uuid4()}"
        browser.open(f"http://127.0.0.1:{self.relay.port}/?{urllib.parse.urlencode({'q': self.mark})}")

    def chats(self) -> list[str]:
        """The browser's requests to /chat, as the relay saw them."""
        return [r for r in self.relay.requests if r.startswith("GET /chat")]

    def close(self) -> Any:
        self.relay.close()
        return finish(self.proc, self.server, self.mark)


@pytest.fixture
def opened(
    tmp_path: Path, backend: str, server: OpenAIServer, browser: Chromium
) -> Iterator[Callable[[str], Opened]]:
    """Open the page on the app whose provider plays this scenario; the app must end quietly."""
    pages: list[Opened] = []

    def open_page(scenario: str) -> Opened:
        pages.append(Opened(tmp_path, backend, server, browser, scenario))
        return pages[-1]

    yield open_page
    for page in pages:
        page.close().quiet()


def test_the_page_shows_one_answer_for_one_question(opened: Callable[[str], Opened]) -> None:
    page = opened("hello")
    until(lambda: page.browser.text() == "Hello there!", "the page showed the answer")
    time.sleep(RETRY)  # time for EventSource to have asked again, had the page not closed it
    assert page.browser.text() == "Hello there!"
    assert len(marked(page.server, page.mark)) == 1, "requests to the provider"
    assert len(page.chats()) == 1, f"the browser asked the app again: {page.chats()}"


def test_a_reconnect_after_a_cut_never_asks_the_provider_again(opened: Callable[[str], Opened]) -> None:
    page = opened("stall-after-2")
    until(lambda: page.browser.text() == "Hello there", "the page showed the first deltas")
    page.relay.cut()  # the network drops: EventSource reconnects, with the id it was sent
    until(lambda: len(page.chats()) == 2, "EventSource reconnected", RETRY + 10)
    until(lambda: page.relay.statuses[-1:] == ["HTTP/1.1 204 No Content"], "the app answered 204")
    assert page.chats()[1].endswith("Last-Event-ID: 1"), page.chats()
    assert len(marked(page.server, page.mark)) == 1, "requests to the provider"
    until(lambda: page.browser.text() == "Hello there (cut off)", "the page said the answer was cut off")


def test_a_browser_leaving_mid_answer_closes_the_providers_connection(
    opened: Callable[[str], Opened],
) -> None:
    page = opened("stall-after-2")
    until(lambda: page.browser.text() == "Hello there", "the page showed the first deltas")
    left = time.monotonic()
    page.browser.close_tab()
    (request,) = marked(page.server, page.mark)
    took = released(request, left)
    print(f"the provider's connection was closed {took:.3f}s after the tab was closed")
    assert took <= RELEASE, f"the provider's connection was closed {took:.3f}s after the tab was closed"


def test_the_page_shows_a_providers_failure_as_a_failure(opened: Callable[[str], Opened]) -> None:
    page = opened("status-429")
    shown = until(lambda: page.browser.text(), "the page showed something")
    assert shown.startswith("(failed: ") and "test server says no (429)" in shown, shown
    assert shown.count("failed") == 1, shown
    assert len(marked(page.server, page.mark)) == 1, "requests to the provider"
    assert len(page.chats()) == 1, f"the browser asked the app again: {page.chats()}"
