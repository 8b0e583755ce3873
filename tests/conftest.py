"""Fixtures: a fake g4f client for unit tests, and for end-to-end tests a local
OpenAI-compatible server plus a way to run the script under each HTTP backend."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import g4f.client
import pytest
from g4f.client.stubs import ChatCompletionChunk, UsageModel
from g4f.providers.response import FinishReason, Reasoning, Sources, ToolCalls
from g4f.tools.run_tools import caculate_prompt_tokens

import messages_stream
from tests.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "messages_stream.py"
HIDE_CURL_CFFI = Path(__file__).resolve().parent / "no_curl_cffi"
BACKENDS = ["aiohttp", "curl_cffi"]


# ---- unit tests: a fake client in place of g4f's AsyncClient -------------------


def chunk(content: Any = None, finish: str | None = None, usage: Any = None) -> Any:
    """A chunk built with g4f's own classes; content may be a str, Reasoning, Sources or ToolCalls."""
    made = ChatCompletionChunk.model_construct(content, finish, "fake", 0, usage=usage)
    made.provider, made.model = "FakeProvider", "fake-model"
    return made


def usage(prompt: int, completion: int) -> Any:
    return UsageModel.model_construct(prompt, completion, prompt + completion)


NO_CHOICES = SimpleNamespace(choices=[], provider="FakeProvider", model="fake-model", usage=None)


async def stall() -> None:
    """The provider goes silent."""
    await asyncio.sleep(3600)


async def swallow() -> None:
    """Silent, and its cleanup swallows the cancel: the stream then just ends."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)


async def convert() -> None:
    """Silent, and its cleanup turns the cancel into another exception."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        raise ConnectionResetError("closed while cancelled") from None


async def swallow_one() -> None:
    """Like curl_cffi's close: swallows one cancel, then waits on."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)
    await asyncio.sleep(3600)


def pause(seconds: float) -> Callable[[], Awaitable[None]]:
    """The provider takes `seconds` before its next chunk."""
    return lambda: asyncio.sleep(seconds)


class FakeClient:
    """Stands in for g4f.client.AsyncClient. Each create() plays the next script, as
    g4f would: strings become content chunks, Reasoning and Sources are wrapped in
    chunks, other objects are yielded as they are, exceptions are raised, async
    callables (stall, pause(s), ...) are awaited; then a last chunk with the finish
    reason (a FinishReason in the script, else "stop", as g4f fills in) and the
    usage (a UsageModel in the script, else g4f's made-up estimate). An
    exception as a whole script is raised by create() itself."""

    def __init__(self) -> None:
        self.scripts: list[Any] = [["Hello", " there", "!"]]
        self.calls: list[dict[str, Any]] = []
        self.init_kwargs: dict[str, Any] = {}
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def __call__(self, **kwargs: Any) -> FakeClient:
        self.init_kwargs = kwargs
        return self

    def create(self, **kwargs: Any) -> AsyncIterator[Any]:
        self.calls.append(kwargs)
        script = self.scripts[min(len(self.calls), len(self.scripts)) - 1]
        if isinstance(script, Exception):
            raise script
        return self.play(script, kwargs.get("messages", []))

    async def play(self, script: list[Any], messages: list[Any]) -> AsyncIterator[Any]:
        texts, reported, finish = [], None, "stop"
        for item in script:
            await asyncio.sleep(0)  # like a network read: the event loop gets a turn
            if isinstance(item, Exception):
                raise item
            if callable(item):
                await item()
            elif isinstance(item, UsageModel):
                reported = item
            elif isinstance(item, FinishReason):
                finish = item.reason
            elif isinstance(item, (str, Reasoning, Sources, ToolCalls)):
                texts += [str(item)] if isinstance(item, str) else []
                yield chunk(item)
            else:
                yield item
        made_up = usage(caculate_prompt_tokens(messages), sum(round(len(t.encode()) / 4) for t in texts))
        yield chunk(None, finish, reported or made_up)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    """main() builds this fake instead of g4f's client."""
    client = FakeClient()
    monkeypatch.setattr(g4f.client, "AsyncClient", client)
    monkeypatch.delenv("G4F_API_KEY", raising=False)
    return client


@dataclass
class Result:
    status: int
    out: str
    err: str


@pytest.fixture
def run_main(
    fake: FakeClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run main(argv) with the fake client and, unless the test sets another, an empty pipe
    for standard input (pytest's own refuses reads); returns exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))

    def run(*argv: str) -> Result:
        status = asyncio.run(messages_stream.main(list(argv)))
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run


# ---- end-to-end tests: the real script, the real g4f, a local server -------------


@pytest.fixture(scope="session")
def server() -> OpenAIServer:
    """The test server, one per pytest-xdist worker process. A worker runs its tests one at a
    time: while a test runs, the requests its worker's server gets are that test's own."""
    return OpenAIServer().start()


# What our machines set and a user's shell does not: PYTHONUNBUFFERED (stdout never buffered,
# which hides flush and closed-pipe bugs), PYTHONIOENCODING, PYTHONDEVMODE, ...; colour and
# terminal settings, which a test that depends on them sets itself.
NOT_A_USERS = ("PYTHON", "G4F_", "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "TERM", "COLUMNS", "LINES", "LC_")


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: ours, less what changes how Python runs, in a UTF-8
    locale; then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_A_USERS)}
    return {**env, "LANG": "C.UTF-8", **extra}


def script_env(tmp_path: Path, backend: str, **extra: str) -> dict[str, str]:
    """A user's environment for one run: g4f's files in tmp_path, and any traffic that
    is not for loopback sent to a closed loopback port instead of the internet."""
    env = user_env()
    dead = "http://127.0.0.1:9"
    env.update(
        G4F_CONFIG_DIR=str(tmp_path / "g4f"),
        HOME=str(tmp_path),
        HTTP_PROXY=dead,
        HTTPS_PROXY=dead,
        ALL_PROXY=dead,
        http_proxy=dead,
        https_proxy=dead,
        all_proxy=dead,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if backend == "aiohttp":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HIDE_CURL_CFFI), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run_script(tmp_path: Path, backend: str) -> Callable[..., Result]:
    """Run `python messages_stream.py ARGS` under this test's HTTP backend."""

    def run(*args: str, stdin: bytes = b"", timeout: float = 60, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env=script_env(tmp_path, backend, **(env or {})),
            cwd=tmp_path,
        )
        return Result(
            proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        )

    return run


@pytest.fixture
def start_script(tmp_path: Path, backend: str) -> Callable[..., subprocess.Popen[bytes]]:
    """Start the script in the background, for tests that signal it or read it live."""

    def start(
        *args: str, env: dict[str, str] | None = None, python_args: tuple[str, ...] = (), **popen: Any
    ) -> subprocess.Popen[bytes]:
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(
            [sys.executable, *python_args, str(SCRIPT), *args],
            env=script_env(tmp_path, backend, **(env or {})),
            cwd=tmp_path,
            **popen,
        )

    return start


def read_within(pipe: Any, size: int, seconds: float = 10) -> bytes:
    """`size` bytes from a child's pipe, or fewer if it closes; fails the test after `seconds`,
    so that a script that never flushes fails in seconds, not at pytest's timeout."""
    data, deadline = b"", time.monotonic() + seconds
    while len(data) < size:
        if not select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
            pytest.fail(f"only {data!r} on the pipe after {seconds}s")
        if not (piece := os.read(pipe.fileno(), size - len(data))):
            break
        data += piece
    return data


@pytest.fixture
def sigint_reaches_children() -> Iterator[None]:
    """A child inherits an ignored SIGINT (a background CI job ignores it), and Python then
    never raises KeyboardInterrupt: let children see it, and put the handler back after."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
