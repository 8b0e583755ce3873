"""The streaming core pasted where people paste it: alone in a new module, with only the imports
the README lists, under a web app, a bot's worker task, a TaskGroup, AnyIO and uvloop. Each
program runs as a child process with asyncio's debug mode on (-X dev), under each of g4f's HTTP
backends, against the local test server, which tells when the provider's connection closed."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, SCRIPT, script_env
from tests.openai_server import OpenAIServer, Request

README = ROOT / "README.md"
SECTION = "## Use the streaming core in your own code"
MARKER = "# paste the core here"
README_URL = "http://127.0.0.1:8765/hello/v1"  # the README's programs ask the test server run alone
# In the stderr of a program, each of these is a failure, even when the program went on.
NOISE = (
    "Traceback",
    "Task exception was never retrieved",
    "was never awaited",
    "Exception ignored",
    "already running",
)
RELEASE = 0.5  # seconds: the provider's connection is closed within this after the loop ends


# ---- the pasted program --------------------------------------------------------------------


def readme_programs() -> list[str]:
    """The ```python blocks of the README's section on the core: the program, the web app."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(r"^```python\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)


def core() -> str:
    """The block of messages_stream.py between its markers, the marker lines left out."""
    source = SCRIPT.read_text(encoding="utf-8")
    start = source.index("\n", source.index("# ---- the streaming core")) + 1
    return source[start : source.index("# ---- end of the core")].strip("\n") + "\n"


def core_imports() -> str:
    """The imports the README tells the user to copy with the core: the first group (up to the
    first blank line) of its program. The group after it is the program's own."""
    group = readme_programs()[0].split("\n\n", 1)[0]
    assert all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.parse(group).body), group
    return group + "\n"


def lifted(app: str) -> str:
    """A module as a user would write it: the README's imports for the core, the core, `app`."""
    return f"{core_imports()}\n\n{core()}\n\n{app}"


def pasted(program: str, port: int, scenario: str = "hello") -> str:
    """A README program as written, the core pasted at its marker line, asking our server."""
    assert program.count(MARKER + "\n") == 1 and README_URL in program
    return program.replace(MARKER + "\n", core()).replace(
        README_URL, f"http://127.0.0.1:{port}/{scenario}/v1"
    )


# What the programs below share: the server's address and the message that marks their
# requests are their arguments; they tell the test what happened in lines of JSON on stdout.
HELPERS = '''
import json
import sys
import time

from g4f.client import AsyncClient

SERVER, MARK = sys.argv[1], sys.argv[2]
MESSAGES = [{"role": "user", "content": MARK}]


def report(**facts):
    """Tell the test: one line of JSON on stdout."""
    print(json.dumps(facts), flush=True)


def url(scenario):
    return f"{SERVER}/{scenario}/v1"


def ask(*scenarios, timeout=30, **request):
    """The stream of an answer from these scenarios of the test server, in order."""
    return resilient_stream(
        AsyncClient(), providers=[url(s) for s in scenarios], timeout=timeout, model="gpt-4",
        messages=MESSAGES, **request
    )


def delta(chunk):
    return str(chunk.choices[0].delta.content or "") if chunk.choices else ""


async def collect(stream):
    """The documentation's loop: the text of the answer."""
    text = ""
    async for chunk in stream:
        text += delta(chunk)
    return text
'''


@dataclass
class Run:
    """What a program did: its exit status (None: killed, it did not end), its facts, stderr."""

    status: int | None
    facts: dict[str, Any]
    out: str
    err: str
    requests: list[Request] = field(default_factory=list)

    @property
    def tail(self) -> str:
        """The end of its stderr, for a failure's message."""
        return "\n".join(["stderr:", *self.err.splitlines()[-30:]])

    def quiet(self) -> None:
        """It ended by itself, with status 0, and with no noise on stderr."""
        found = [noise for noise in NOISE if noise in self.err]
        assert not found, f"{found} on the program's stderr\n{self.tail}"
        assert self.status == 0, f"exit status {self.status} (None: it did not end)\n{self.tail}"


def start(tmp_path: Path, backend: str, source: str, *args: str, dev: bool = True) -> subprocess.Popen[str]:
    """Start `source` as a program under `backend`, in asyncio's debug mode unless `dev` is False."""
    path = tmp_path / "app.py"
    path.write_text(source, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, *(["-X", "dev"] if dev else []), str(path), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=script_env(tmp_path, backend),
        cwd=tmp_path,
    )


def finish(proc: subprocess.Popen[str], server: OpenAIServer, mark: str, timeout: float = 30) -> Run:
    """Close its stdin, wait for it to end (killed after `timeout` s), gather what it did."""
    status: int | None
    try:
        out, err = proc.communicate(timeout=timeout)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        status = None
    facts: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("{"):
            facts.update(json.loads(line))
    return Run(status, facts, out, err, marked(server, mark))


def run_app(
    tmp_path: Path, backend: str, server: OpenAIServer, app: str, timeout: float = 30, dev: bool = True
) -> Run:
    """Run the core pasted with HELPERS and `app`; `app` reports through report()."""
    mark = f"lifted {uuid.uuid4()}"
    proc = start(tmp_path, backend, lifted(HELPERS + app), f"http://127.0.0.1:{server.port}", mark, dev=dev)
    return finish(proc, server, mark, timeout)


def marked(server: OpenAIServer, mark: str) -> list[Request]:
    """The requests whose messages carry `mark`, in order."""
    return [r for r in server.requests if mark in json.dumps((r.body or {}).get("messages"))]


def released(request: Request, ended: float) -> float:
    """Seconds from the end of the loop to the close of the provider's connection."""
    closed = request.wait_closed(10)
    assert closed is not None, "the provider's connection was never closed"
    return closed - ended


# ---- the core as the README gives it ----------------------------------------------------


def ruff(path: Path) -> str:
    """Unused imports, redefinitions and undefined names in `path`; "" if there are none."""
    command = [sys.executable, "-m", "ruff", "check", "--select", "F401,F811,F821", "--isolated"]
    result = subprocess.run(
        [*command, "--output-format", "concise", str(path)], capture_output=True, text=True
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


@pytest.mark.parametrize("what", ["the core and its imports", "the program", "the web app", "docs/web.md"])
def test_the_readme_imports_are_all_and_only_what_is_used(tmp_path: Path, what: str) -> None:
    programs = readme_programs()
    source = {
        "the core and its imports": core_imports() + "\n\n" + core(),
        "the program": pasted(programs[0], 8765),
        "the web app": pasted(programs[1], 8765),
        "docs/web.md": pasted(web_doc_program(), 8765),
    }[what]
    path = tmp_path / "lifted.py"
    path.write_text(source, encoding="utf-8")
    assert ruff(path) == ""


def test_the_readme_program_is_short_and_complete() -> None:
    program = readme_programs()[0]
    assert 10 <= len([line for line in program.splitlines() if line.strip()]) <= 15
    tree = ast.parse(pasted(program, 8765))
    assert any(isinstance(node, ast.ClassDef) and node.name == "resilient_stream" for node in tree.body)


def test_the_readme_program_prints_the_answer(tmp_path: Path, backend: str, server: OpenAIServer) -> None:
    proc = start(tmp_path, backend, pasted(readme_programs()[0], server.port))
    run = finish(proc, server, "Say hello there!")
    assert run.out == "Hello there!"
    run.quiet()


# ---- a web app relaying the stream as Server-Sent Events ---------------------------------

SERVE = """

# ---- the test's: serve `app` on a port of its own until stdin closes
import socket
import sys

import uvicorn


async def serve():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # before the port is printed: a client may connect at once
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    stop = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.add_done_callback(lambda _: setattr(server, "should_exit", True))
    print(sock.getsockname()[1], flush=True)
    await server.serve(sockets=[sock])


asyncio.run(serve())
"""


def sse(response: httpx.Response, most: int) -> list[str]:
    """The data of the first `most` events of an SSE response, as far as it goes."""
    data = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data.append(json.loads(line.removeprefix("data: ")))
            if len(data) == most:
                break
    return data


def serve_app(tmp_path: Path, backend: str, server: OpenAIServer, scenario: str) -> tuple[Any, int]:
    """Start the README's web app, its provider this scenario of our server: it and its port."""
    proc = start(tmp_path, backend, pasted(readme_programs()[1], server.port, scenario) + SERVE)
    port = proc.stdout.readline()  # type: ignore[union-attr]
    if not port.strip():
        pytest.fail(f"the web app did not start\n{finish(proc, server, '-').tail}")
    return proc, int(port)


def test_the_readme_web_app_relays_the_answer(tmp_path: Path, backend: str, server: OpenAIServer) -> None:
    proc, port = serve_app(tmp_path, backend, server, "hello")
    mark = f"lifted {uuid.uuid4()}"
    with httpx.stream("GET", f"http://127.0.0.1:{port}/chat", params={"q": mark}, timeout=10) as response:
        assert sse(response, 10) == ["Hello", " there", "!"]
    finish(proc, server, mark).quiet()


def test_a_browser_leaving_mid_answer_closes_the_providers_connection(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    proc, port = serve_app(tmp_path, backend, server, "stall-after-2")
    mark = f"lifted {uuid.uuid4()}"
    with httpx.stream("GET", f"http://127.0.0.1:{port}/chat", params={"q": mark}, timeout=10) as response:
        assert sse(response, 2) == ["Hello", " there"]  # then keep-alives: the browser goes away
    left = time.monotonic()
    (request,) = marked(server, mark)
    took = released(request, left)
    print(f"the provider's connection was closed {took:.3f}s after the browser left")
    run = finish(proc, server, mark)
    assert took <= RELEASE, f"the provider's connection was closed {took:.3f}s after the browser left"
    run.quiet()


# ---- the same app on aiohttp.web (docs/web.md), in its default setup -----------------------

WEB_DOC = ROOT / "docs" / "web.md"
SERVE_AIOHTTP = """
import socket


async def serve():  # aiohttp.web's defaults: a handler is not cancelled when its client leaves
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


asyncio.run(serve())
"""


def web_doc_program() -> str:
    """The one ```python block of docs/web.md: the web app on aiohttp.web."""
    (program,) = re.findall(r"^```python\n(.*?)^```$", WEB_DOC.read_text(encoding="utf-8"), re.DOTALL | re.M)
    return program


def serve_aiohttp_app(tmp_path: Path, backend: str, server: OpenAIServer, scenario: str) -> tuple[Any, int]:
    """Start docs/web.md's app as written (imported: its `__main__` part is the user's own way
    to serve it), its provider this scenario of our server: it and its port."""
    (tmp_path / "web_app.py").write_text(pasted(web_doc_program(), server.port, scenario), encoding="utf-8")
    proc = start(
        tmp_path, backend, "import asyncio\nimport sys\n\nfrom web_app import app, web\n" + SERVE_AIOHTTP
    )
    port = proc.stdout.readline()  # type: ignore[union-attr]
    if not port.strip():
        pytest.fail(f"the web app did not start\n{finish(proc, server, '-').tail}")
    return proc, int(port)


def test_the_aiohttp_web_app_relays_the_answer_then_its_end(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    proc, port = serve_aiohttp_app(tmp_path, backend, server, "hello")
    mark = f"lifted {uuid.uuid4()}"
    with httpx.stream("GET", f"http://127.0.0.1:{port}/chat", params={"q": mark}, timeout=10) as response:
        assert sse(response, 10) == ["Hello", " there", "!", ""]
    finish(proc, server, mark).quiet()


def test_the_aiohttp_web_app_answers_a_reconnect_with_204_and_never_asks_again(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    proc, port = serve_aiohttp_app(tmp_path, backend, server, "hello")
    mark = f"lifted {uuid.uuid4()}"
    headers = {"Last-Event-ID": "1"}  # as EventSource sends it after a cut
    response = httpx.get(f"http://127.0.0.1:{port}/chat", params={"q": mark}, headers=headers, timeout=10)
    assert response.status_code == 204
    assert marked(server, mark) == []
    finish(proc, server, "-").quiet()


def leave_mid_answer(proc: Any, port: int, server: OpenAIServer, mark: str) -> None:
    """Read two events of a 10 s answer whose deltas go on flowing, leave, and check that the
    provider's connection is closed within RELEASE and the server ends quietly."""
    with httpx.stream("GET", f"http://127.0.0.1:{port}/chat", params={"q": mark}, timeout=10) as response:
        assert sse(response, 2) == ["d" * 1024] * 2  # and the client goes away while deltas flow
    left = time.monotonic()
    (request,) = marked(server, mark)
    took = released(request, left)
    print(f"the provider's connection was closed {took:.3f}s after the client left")
    run = finish(proc, server, mark)
    assert took <= RELEASE, f"the provider's connection was closed {took:.3f}s after the client left"
    run.quiet()


def test_a_client_leaving_the_aiohttp_web_app_closes_the_providers_connection(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    proc, port = serve_aiohttp_app(tmp_path, backend, server, "drip-1000")  # 10 s of deltas
    leave_mid_answer(proc, port, server, f"lifted {uuid.uuid4()}")


# The handler as the README writes its own loop, the client's leaving not caught: its write raises
# into a frame that aiohttp's error handling keeps in a reference cycle, and the stream with it,
# until the cyclic GC runs; the task that ran the handler is done at once.
AIOHTTP_UNCAUGHT = """
import asyncio
import logging
import sys

from aiohttp import web

logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # its traceback of the write's error


async def chat(request):
    stream = ask("drip-1000")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    async for chunk in stream:
        if delta(chunk):
            await response.write(f"data: {json.dumps(delta(chunk))}\\n\\n".encode())
    return response


app = web.Application()
app.add_routes([web.get("/chat", chat)])
"""


def test_an_aiohttp_web_handler_that_lets_the_clients_leaving_raise_lets_the_stream_go(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    mark = f"lifted {uuid.uuid4()}"
    source = lifted(HELPERS + AIOHTTP_UNCAUGHT + SERVE_AIOHTTP)
    proc = start(tmp_path, backend, source, f"http://127.0.0.1:{server.port}", mark)
    port = proc.stdout.readline()  # type: ignore[union-attr]
    if not port.strip():
        pytest.fail(f"the web app did not start\n{finish(proc, server, '-').tail}")
    leave_mid_answer(proc, int(port), server, mark)


# A stream in a reference cycle, freed by the cyclic GC: under curl_cffi the collector finalizes
# g4f's inner generators too, and closed at a yield they leave the transfer running (plain g4f's
# stream does so); over aiohttp the connection is closed with them.
GC_CYCLE = """
import gc


async def main():
    gc.disable()  # this collect() is the one that frees it
    stream = ask("stall-after-2")
    async for chunk in stream:
        if delta(chunk):
            break
    cycle = [stream]
    cycle.append(cycle)
    del stream, cycle
    await asyncio.sleep(0.2)
    report(collected=time.monotonic(), found=gc.collect() > 0)
    await asyncio.sleep(1.5)  # the program goes on
    report(done=True)


asyncio.run(main())
"""


def test_a_stream_freed_by_the_garbage_collector_closes_the_providers_connection(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    run = run_app(tmp_path, backend, server, GC_CYCLE)
    assert run.facts.get("found"), run.tail
    (request,) = run.requests
    assert request.closed is None or request.closed > run.facts["collected"], "closed before the collect"
    took = released(request, run.facts["collected"])
    print(f"the provider's connection was closed {took:.3f}s after gc.collect()")
    assert took <= RELEASE, f"the provider's connection was closed {took:.3f}s after gc.collect()"
    assert run.facts.get("done"), run.tail
    run.quiet()


# ---- the state a task may be in when it starts a stream -----------------------------------


TASK_GROUP = """

async def fails():
    raise ValueError("a child fails at once")


async def main():
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(fails())
    except* ValueError:
        pass  # handled; on Python 3.11 and 3.12 the task is left at cancelling() == 1
    report(cancelling=asyncio.current_task().cancelling())
    stream = ask("status-500", "hello", timeout=10)
    try:
        report(text=await collect(stream), failures=stream.failures)
    except BaseException as exc:
        report(error=repr(exc), failures=stream.failures)


asyncio.run(main())
"""


def test_after_a_task_group_whose_child_failed(tmp_path: Path, backend: str, server: OpenAIServer) -> None:
    run = run_app(tmp_path, backend, server, TASK_GROUP)
    facts = run.facts
    assert facts.get("text") == "Hello there!", f"{facts}\n{run.tail}"
    (failure,) = facts["failures"]
    assert failure.startswith(server.url("status-500")) and "test server says no (500)" in failure
    run.quiet()


WORKER = """

async def worker():
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        pass  # a bot's /stop: it stops what it did and goes on with the next request
    texts = []
    for scenario in ("hello", "slow-200", "drip-5"):
        try:
            texts.append(await collect(ask(scenario, timeout=10)))
        except BaseException as exc:
            texts.append(repr(exc))
    report(texts=texts, cancelling=asyncio.current_task().cancelling())


async def main():
    task = asyncio.create_task(worker())
    await asyncio.sleep(0.1)
    task.cancel()
    await task


asyncio.run(main())
"""


def test_a_worker_that_caught_a_cancel_goes_on_streaming(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    run = run_app(tmp_path, backend, server, WORKER)
    texts = run.facts.get("texts")
    assert texts == ["Hello there!", "Hello there!", "d" * 1024 * 5 + "END"], f"{texts}\n{run.tail}"
    run.quiet()


ANYIO = """
import anyio


async def main():
    with anyio.CancelScope() as outer:
        if WHEN == "before":
            outer.cancel()
        else:
            asyncio.get_running_loop().call_later(0.1, outer.cancel)
        with anyio.CancelScope(shield=True):
            try:
                report(text=await collect(ask("drip-20", timeout=10)))
            except BaseException as exc:
                report(error=repr(exc))
        await anyio.sleep(1)  # not shielded: the outer cancel ends it here
        report(after="the shield: not cancelled")
    report(outer=outer.cancelled_caught)


asyncio.run(main())
"""


@pytest.mark.parametrize("when", ["before", "during"])
def test_a_stream_shielded_from_an_anyio_cancel_completes(
    tmp_path: Path, backend: str, server: OpenAIServer, when: str
) -> None:
    run = run_app(tmp_path, backend, server, ANYIO.replace("WHEN", repr(when)))
    facts = run.facts
    assert facts.get("text") == "d" * 1024 * 20 + "END", f"{facts.get('error')}\n{run.tail}"
    assert (facts.get("after"), facts.get("outer")) == (None, True), run.tail
    run.quiet()


UVLOOP = """
import uvloop


async def main():
    report(text=await collect(ask("hello", timeout=10)))
    started = time.monotonic()
    try:
        await collect(ask("silent", timeout=1))
    except StreamError as exc:
        report(error=exc.args, took=time.monotonic() - started)


uvloop.run(main())
"""


# uvloop's debug mode records a stack for each callback, and from CPython 3.12 on, walking the
# frames of an async generator being finalized fails there: "SystemError: Objects/dictobject.c:
# bad argument to internal function" on 3.12.1, "AttributeError: 'Usage' object has no attribute
# 'f_lineno'" on 3.13.0. Plain g4f's own stream does the same (curl_cffi's aiter_lines is left to
# the finalizer), so from 3.12 on it runs without -X dev.
CPYTHON_FRAME_BUG = sys.version_info >= (3, 12)


def test_under_uvloop(tmp_path: Path, backend: str, server: OpenAIServer) -> None:
    run = run_app(tmp_path, backend, server, UVLOOP, dev=not CPYTHON_FRAME_BUG)
    facts = run.facts
    assert facts.get("text") == "Hello there!", run.tail
    assert facts.get("error") == [f"{server.url('silent')}: TimeoutError: no delta within 1s"], run.tail
    print(f"the silent provider timed out after {facts['took']:.3f}s")
    assert 1 <= facts["took"] <= 1.5
    run.quiet()


# ---- however the loop ends, the provider's connection is closed at once -------------------

# Each ends the loop its own way, calls ended() when the loop is over, and returns.
ENDINGS = {
    "normal end": (
        "hello",
        """
async def loop():
    async for chunk in ask(SCENARIO):
        pass
    ended()
""",
    ),
    "break, aclose()": (
        "stall-after-2",
        """
async def loop():
    stream = ask(SCENARIO)
    async for chunk in stream:
        if delta(chunk):
            break
    ended()
    await stream.aclose()
""",
    ),
    "aclose() with 30 deltas already read": (
        "stall-after-31",
        """
async def loop():
    stream = ask(SCENARIO)
    await anext(stream)
    await asyncio.sleep(0.5)  # the other 30 arrive meanwhile: read, not yet taken
    ended()
    await stream.aclose()
""",
    ),
    "break, dropped": (
        "stall-after-2",
        """
async def loop():
    async for chunk in ask(SCENARIO):
        if delta(chunk):
            break
    ended()
""",
    ),
    "break in aclosing()": (
        "stall-after-2",
        """
async def loop():
    async with contextlib.aclosing(ask(SCENARIO)) as stream:
        async for chunk in stream:
            if delta(chunk):
                break
        ended()
""",
    ),
    "exception in the body": (
        "stall-after-2",
        """
async def loop():
    try:
        async for chunk in ask(SCENARIO):
            if delta(chunk):
                raise ValueError("the bot's own bug")
    except ValueError:
        ended()
""",
    ),
    "caller's timeout in the body": (
        "stall-after-2",
        """
async def loop():
    try:
        async with asyncio.timeout(0.5):
            async for chunk in ask(SCENARIO):
                await asyncio.sleep(10)  # the bot's own slow work, where its timeout fires
    except TimeoutError:
        ended()
""",
    ),
    "task cancelled between chunks": (
        "stall-after-2",
        """
async def loop():
    got = asyncio.Event()

    async def consume():
        try:
            async for chunk in ask(SCENARIO):
                got.set()
                await asyncio.sleep(10)  # the bot's own slow work, where the cancel lands
        finally:
            ended()

    task = asyncio.create_task(consume())
    await got.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
""",
    ),
}

ENDING = """
import contextlib


def ended():
    report(ended=time.monotonic())


async def main():
    await loop()
    await asyncio.sleep(1)  # the program goes on (twice RELEASE): its exit is not what closes the connection
    report(done=True)


asyncio.run(main())
"""


@pytest.mark.parametrize("ending", ENDINGS)
def test_the_providers_connection_is_closed_however_the_loop_ends(
    tmp_path: Path, backend: str, server: OpenAIServer, ending: str
) -> None:
    scenario, loop = ENDINGS[ending]
    run = run_app(tmp_path, backend, server, loop.replace("SCENARIO", repr(scenario)) + ENDING)
    assert "ended" in run.facts, run.tail
    (request,) = run.requests
    took = released(request, run.facts["ended"])
    print(f"the provider's connection was closed {took:.3f}s after the loop ended")
    assert took <= RELEASE, f"the provider's connection was closed {took:.3f}s after the loop ended"
    assert run.facts.get("done"), run.tail
    run.quiet()


# ---- create()'s own keywords -------------------------------------------------------------

KEYWORDS = """

async def main():
    try:
        stream = STREAM
    except TypeError as exc:
        report(type_error=str(exc))
        return
    try:
        report(text=await collect(stream))
    except Exception as exc:
        report(error=repr(exc))


asyncio.run(main())
"""


def test_stream_true_is_accepted_as_create_takes_it(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    run = run_app(tmp_path, backend, server, KEYWORDS.replace("STREAM", 'ask("hello", stream=True)'))
    assert run.facts == {"text": "Hello there!"}, run.tail
    run.quiet()


@pytest.mark.parametrize(
    "call",
    [
        'ask("hello", provider="OpenaiChat")',
        'resilient_stream(AsyncClient(), providers=url("hello"), model="gpt-4", messages=MESSAGES)',
    ],
    ids=["provider=", "providers=str"],
)
def test_a_keyword_it_cannot_honour_is_a_type_error_at_once(
    tmp_path: Path, backend: str, server: OpenAIServer, call: str
) -> None:
    run = run_app(tmp_path, backend, server, KEYWORDS.replace("STREAM", call))
    assert "type_error" in run.facts, f"{str(run.facts)[:500]}\n{run.tail}"
    assert not run.requests
    run.quiet()


BREAK_AT_EXIT = """

async def main():
    async for chunk in ask("stall-after-2"):
        if delta(chunk):
            report(got=delta(chunk))
            break  # and asyncio.run ends at once, the stream not yet closed


asyncio.run(main())
"""


def test_a_program_that_ends_right_after_a_break_ends_quietly(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    run = run_app(tmp_path, backend, server, BREAK_AT_EXIT)
    assert run.facts == {"got": "Hello"}, run.tail
    run.quiet()
    for noise in ("Task was destroyed", "an error occurred during closing"):
        assert noise not in run.err, run.tail
