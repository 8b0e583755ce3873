"""An OpenAI-compatible streaming server on 127.0.0.1 that misbehaves on request.

The first path segment picks the behaviour, so one server serves every test:
``http://127.0.0.1:PORT/<scenario>/v1`` is a base URL for ``--base-url``.
A scenario may take one number after a dash, as in ``stall-after-2`` or
``chars-50000``. Every request is recorded in ``server.requests``.

It is written on raw asyncio streams rather than a web framework so that it
can split a UTF-8 character across network reads, drop a connection mid-body,
or go silent, exactly as a broken provider would.

Run alone, it serves in the foreground: ``python tests/openai_server.py [--port 8765]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    """One request as the server saw it, and when its connection ended."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    # time.monotonic() when the connection ended: the client closed or reset it (seen at once,
    # even while a scenario is silent or sending keep-alives), or the server closed it after
    # its scenario, whichever came first. Comparable with time.monotonic() in another process.
    closed: float | None = None

    def wait_closed(self, timeout: float) -> float | None:
        """`closed`, waiting up to `timeout` seconds for the connection to end."""
        deadline = time.monotonic() + timeout
        while self.closed is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.closed

    def end(self) -> None:
        """The connection ended now, unless it had already."""
        if self.closed is None:
            self.closed = time.monotonic()


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> bytes:
    """One SSE event carrying a chat.completion.chunk."""
    if content is not None:
        delta["content"] = content
    payload = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


USAGE = (
    b'data: {"id":"chatcmpl-test","object":"chat.completion.chunk","created":0,'
    b'"model":"test-model","choices":[],"usage":{"prompt_tokens":5,'
    b'"completion_tokens":3,"total_tokens":8}}\n\n'
)
DONE = b"data: [DONE]\n\n"
SURROGATES = [b"\\ud83d", b"\\udc4b"]  # 👋 as UTF-16 halves, JSON-escaped
HELLO = ["Hello", " there", "!"]


class Stream:
    """The response side of one request: status line, headers, body pieces."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def start(self, status: int = 200, content_type: str = "text/event-stream") -> None:
        """Send the status line and headers of a chunked response."""
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        self.writer.write(head.encode())
        await self.writer.drain()

    async def send(self, data: bytes) -> None:
        """Send one HTTP chunk and make sure it leaves this process."""
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    async def end(self) -> None:
        """Send the terminating empty chunk."""
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    async def events(self, pieces: list[bytes], end: bool = True) -> None:
        """A whole SSE answer: headers, each event, ``[DONE]``."""
        await self.start()
        for piece in pieces:
            await self.send(piece)
        if end:
            await self.send(DONE)
            await self.end()

    async def error(self, status: int, message: str) -> None:
        """An OpenAI-style JSON error body with a status code."""
        body = json.dumps({"error": {"message": message, "code": status}}).encode()
        await self.start(status, "application/json")
        await self.send(body)
        await self.end()


async def keep_alive_forever(stream: Stream) -> None:
    """Stall, but keep the connection busy with SSE comments like real servers do."""
    while True:
        await stream.send(b": keep-alive\n\n")
        await asyncio.sleep(0.5)


def hello() -> list[bytes]:
    return [chunk(piece) for piece in HELLO] + [chunk(finish="stop"), USAGE]


SCENARIOS = {  # name: what it does; N is the number after a dash, as in stall-after-2
    "hello": "a normal answer, 'Hello there!', with a finish reason and usage",
    "echo": "answers with the messages it received, as JSON",
    "slow-N": "the first delta after N ms, then a normal answer",
    "reasoning": "reasoning, then a normal answer",
    "status-N": "HTTP error N (500, 401, 429, ...) with an OpenAI-style JSON body",
    "detail-N": "HTTP error N with a FastAPI-style body, {'detail': ...}",
    "error-event": "two deltas, then an error event in the stream",
    "drop": "two deltas, then the connection is cut mid-body",
    "cut-clean": "three deltas, then the body ends cleanly with no finish reason and no [DONE]",
    "silent": "reads the request and never answers",
    "stall-after-N": "N deltas, then keep-alive comments forever",
    "split-utf8": "'Привет 👋', the emoji split across two network reads",
    "split-surrogate": "'👋' as two UTF-16 halves in two deltas, as some servers slice text",
    "chars-N": "N one-character deltas as fast as possible",
    "big-N": "N KiB in 1 KiB deltas, ending with 'END'",
    "pause-N": "one delta, N ms of silence, then the rest",
    "drip-N": "N deltas of 1 KiB, 10 ms apart, ending with 'END'",
    "no-usage": "an answer with neither a finish reason nor usage",
    "length": "an answer cut by the provider's token limit (finish reason 'length')",
    "reasoning-only": "reasoning, then the end, without an answer",
    "stall-if-asked": "hello, but when the last message says 'stall': stall-after-2",
}


async def scenario(name: str, n: int, stream: Stream, server: OpenAIServer) -> None:
    """Play the named behaviour on one chat/completions request."""
    if name == "hello":
        await stream.events(hello())
    elif name == "echo":
        body = server.requests[-1].body
        await stream.events([chunk(json.dumps(body["messages"], ensure_ascii=False))])
    elif name == "status":
        key = server.requests[-1].headers.get("authorization", "")
        # A 401 quotes the key it refused, as real providers do: the client must mask it.
        await stream.error(n, f"test server says no ({n})" + (f": bad key {key!r}" if n == 401 else ""))
    elif name == "error-event":
        await stream.events([chunk(p) for p in HELLO[:2]], end=False)
        await stream.send(b'data: {"error": {"message": "upstream exploded"}}\n\n')
        await stream.end()
    elif name == "drop":
        await stream.events([chunk(p) for p in HELLO[:2]], end=False)
        stream.writer.transport.abort()
    elif name == "silent":
        await asyncio.sleep(3600)
    elif name == "stall-after":
        await stream.events([chunk(p) for p in (HELLO * n)[:n]], end=False)
        await keep_alive_forever(stream)
    elif name == "split-utf8":  # "Привет 👋", the emoji split across two reads
        data = chunk("Привет 👋")
        cut = data.index("👋".encode()) + 2
        await stream.start()
        stream.writer.write(b"%x\r\n%s" % (len(data), data[:cut]))
        await stream.writer.drain()
        await asyncio.sleep(0.2)
        stream.writer.write(data[cut:] + b"\r\n")
        await stream.send(DONE)
        await stream.end()
    elif name == "chars":
        await stream.start()
        event = chunk("x")
        for start in range(0, n, 256):
            await stream.send(event * min(256, n - start))
        await stream.send(DONE)
        await stream.end()
    elif name == "big":
        piece = ("abcdefghijklmnopqrstuvwxyz012345" * 32)[:1024]
        await stream.events([chunk(piece) for _ in range(n)] + [chunk("END")])
    elif name == "pause":
        await stream.start()
        server.first_sent = time.perf_counter()
        await stream.send(chunk("First"))
        await asyncio.sleep(n / 1000)
        await stream.send(chunk(" second"))
        await stream.send(DONE)
        await stream.end()
    elif name == "drip":
        await stream.start()
        for _ in range(n):
            await stream.send(chunk("d" * 1024))
            await asyncio.sleep(0.01)
        await stream.send(chunk("END"))
        await stream.send(DONE)
        await stream.end()
    elif name == "no-usage":
        await stream.events([chunk(piece) for piece in HELLO])
    elif name == "length":
        await stream.events([chunk(piece) for piece in HELLO] + [chunk(finish="length")])
    elif name == "reasoning-only":
        await stream.events([chunk(reasoning_content="Thinking"), chunk(finish="stop")])
    elif name == "detail":
        body = json.dumps({"detail": f"test server says no ({n})"}).encode()
        await stream.start(n, "application/json")
        await stream.send(body)
        await stream.end()
    elif name == "cut-clean":
        await stream.events([chunk(piece) for piece in HELLO], end=False)
        await stream.end()
    elif name == "split-surrogate":
        event = b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n'
        halves = [event % half for half in SURROGATES]
        await stream.events([chunk("Hi "), *halves])
    elif name == "reasoning":
        thoughts = [chunk(reasoning_content=t) for t in ("Thinking", " hard")]
        await stream.events(thoughts + hello())
    elif name == "stall-if-asked":
        if "stall" in str(server.requests[-1].body["messages"][-1]["content"]):
            await stream.events([chunk(p) for p in HELLO[:2]], end=False)
            await keep_alive_forever(stream)
        await stream.events(hello())
    elif name == "slow":
        await asyncio.sleep(n / 1000)
        await stream.events(hello())
    else:
        await stream.error(404, f"unknown scenario {name!r}")


async def watch_for_close(reader: asyncio.StreamReader, request: Request) -> None:
    """Read the socket while the scenario plays: end of input or a reset is the client's close.
    (A client sends nothing more after its request: a read returns only at its close.)"""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass
    request.end()


@dataclass
class OpenAIServer:
    """Runs the scenarios on 127.0.0.1 in a thread of its own."""

    requests: list[Request] = field(default_factory=list)
    port: int = 0
    first_sent: float = 0.0

    def url(self, name: str) -> str:
        """The base URL that plays scenario `name`."""
        return f"http://127.0.0.1:{self.port}/{name}/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request: Request | None = None
        watch: asyncio.Future[None] | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, _ = head.split(b"\r\n")[0].decode().split(" ", 2)
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", 0)))
            body = json.loads(raw) if raw else None
            request = Request(method, path, headers, body)
            self.requests.append(request)
            watch = asyncio.ensure_future(watch_for_close(reader, request))
            name, _, number = path.strip("/").split("/")[0].rpartition("-")
            if not name or not number.isdigit():
                name, number = path.strip("/").split("/")[0], "0"
            stream = Stream(writer)
            if path.endswith("/models") and name != "silent":
                models = {"object": "list", "data": [{"id": "gpt-4", "object": "model"}]}
                await stream.start(200, "application/json")
                await stream.send(json.dumps(models).encode())
                await stream.end()
            else:
                await scenario(name, int(number), stream, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            if watch:
                watch.cancel()
            if request:
                request.end()

    async def serve(self, ready: Callable[[], Any]) -> None:
        """Serve on 127.0.0.1:`port` (0: any free port) until cancelled; `ready()` once bound."""
        # backlog: a burst of 1,000 connections (tests/test_scale.py) is accepted, not dropped and retried
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        ready()
        async with server:
            await server.serve_forever()

    def start(self) -> OpenAIServer:
        """Start serving in a daemon thread; returns once the port is bound."""
        ready = threading.Event()
        threading.Thread(target=asyncio.run, args=(self.serve(ready.set),), daemon=True).start()
        ready.wait(10)
        return self


def main() -> None:
    """Serve in the foreground, for trying the script without a network."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765, help="the port on 127.0.0.1 (default 8765; 0: any)")
    server = OpenAIServer(port=parser.parse_args().port)
    try:
        asyncio.run(server.serve(lambda: show(server)))
    except KeyboardInterrupt:
        print("stopped")
    except OSError as exc:  # the port is taken, or not ours to take
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc.strerror}"
        sys.exit(f"error: port {server.port} on 127.0.0.1 {why}: choose another with --port (0: any)")


def show(server: OpenAIServer) -> None:
    """The base URLs to use, one per scenario."""
    print(f"An OpenAI-compatible test server on 127.0.0.1:{server.port}; Ctrl-C stops it.")
    print("Give the script one of these base URLs, e.g.")
    print(f"  python messages_stream.py --base-url {server.url('hello')}\n")
    for name, what in SCENARIOS.items():
        print(f"  {server.url(name):<48} {what}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
