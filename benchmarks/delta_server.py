"""An OpenAI-compatible endpoint on 127.0.0.1 for the benchmark's own two shapes of answer.

``/deltas-N-C/v1``  N deltas of C characters each, as fast as the client reads them,
                    256 events to a network write (as tests/openai_server.py's ``chars-N``)
``/burst-N/v1``     after 300 ms, N one-character deltas in a single network write;
                    ``first_sent`` is when that write was made

Any other request, such as g4f's model list, gets a one-model list. It reuses the
test server's framing, so its events are byte for byte those the tests use.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from tests.openai_server import DONE, Stream, chunk

MODELS = json.dumps({"object": "list", "data": [{"id": "gpt-4", "object": "model"}]}).encode()


class DeltaServer:
    """Serves the two shapes in a daemon thread; `url()` and `burst_url()` name them."""

    def __init__(self) -> None:
        self.port = 0
        self.first_sent = 0.0

    def url(self, chunks: int, chars: int = 1) -> str:
        """The base URL of an answer of `chunks` deltas of `chars` characters."""
        return f"http://127.0.0.1:{self.port}/deltas-{chunks}-{chars}/v1"

    def burst_url(self, chunks: int) -> str:
        """The base URL of a pause, then `chunks` one-character deltas at once."""
        return f"http://127.0.0.1:{self.port}/burst-{chunks}/v1"

    async def deltas(self, stream: Stream, chunks: int, chars: int) -> None:
        """`chunks` deltas of `chars` characters, then [DONE]."""
        await stream.start()
        event = chunk("x" * chars)
        for start in range(0, chunks, 256):
            await stream.send(event * min(256, chunks - start))
        await stream.send(DONE)
        await stream.end()

    async def burst(self, stream: Stream, chunks: int) -> None:
        """A pause (the client is then surely waiting on its read), then one write."""
        await stream.start()
        await asyncio.sleep(0.3)
        self.first_sent = time.perf_counter()
        await stream.send(chunk("x") * chunks)
        await stream.send(DONE)
        await stream.end()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = next(
                (
                    line.split(":", 1)[1]
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length:")
                ),
                "0",
            )
            await reader.readexactly(int(length))
            path = head.split(" ", 2)[1]
            kind, *numbers = path.strip("/").split("/")[0].split("-")
            stream = Stream(writer)
            if kind == "deltas" and path.endswith("/chat/completions"):
                await self.deltas(stream, int(numbers[0]), int(numbers[1]))
            elif kind == "burst" and path.endswith("/chat/completions"):
                await self.burst(stream, int(numbers[0]))
            else:
                await stream.start(200, "application/json")
                await stream.send(MODELS)
                await stream.end()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def start(self) -> DeltaServer:
        """Start serving; returns once the port is bound."""
        ready = threading.Event()

        async def serve() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        threading.Thread(target=asyncio.run, args=(serve(),), daemon=True).start()
        ready.wait(10)
        return self
