"""The benchmark's child process: ways to consume one streamed answer, each timed in CPU seconds.

    python benchmarks/consume.py SPEC

SPEC is JSON from stream_overhead.py: {"kind": ..., "result": PATH, ...}; the figures go to
PATH as JSON. Its stdout is a pipe that the parent drains, as a terminal would be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MESSAGES = [{"role": "user", "content": "Say hello there!"}]
Variant = Callable[[str], Coroutine[Any, Any, None]]


# ---- ways to consume the stream at a base URL ----------------------------------------


async def floor(url: str) -> None:
    """The same SSE stream read with aiohttp and json directly: what any client must do."""
    import aiohttp

    body = {"model": "gpt-4", "messages": MESSAGES, "stream": True}
    async with aiohttp.ClientSession() as session, session.post(f"{url}/chat/completions", json=body) as resp:
        async for line in resp.content:
            if line.startswith(b"data: {"):
                json.loads(line[6:])["choices"][0]["delta"].get("content")


def g4f_stream(url: str) -> Any:
    """g4f's stream of chunks from the server at `url`, asked for as the script asks."""
    from g4f.client import AsyncClient, create_custom_provider

    provider = create_custom_provider(url, None, name="Custom", models=["gpt-4"])
    return AsyncClient().chat.completions.create(
        provider=provider, model="gpt-4", messages=MESSAGES, stream=True
    )


async def bare_g4f(url: str) -> None:
    """g4f alone: every chunk looked at, nothing printed."""
    async for chunk in g4f_stream(url):
        if chunk.choices and chunk.choices[0].delta.content:
            pass


async def documentation_loop(stream: Any) -> None:
    """The loop of g4f's documented example."""
    accumulated_text = ""
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                content = chunk.choices[0].delta.content
                accumulated_text += content
                print(content, end="", flush=True)
    except Exception as e:
        print(f"\nError occurred: {e}")
    finally:
        print("\n\nFinal accumulated text:", accumulated_text)


async def doc_loop(url: str) -> None:
    await documentation_loop(g4f_stream(url))


async def this_script(url: str) -> None:
    """messages_stream.main(), as the command line runs it, its idle timeout on."""
    import messages_stream

    assert await messages_stream.main(["--base-url", url]) == 0


class CoalescedStdout:
    """Writes each delta to sys.stdout at once and flushes once per event-loop turn: a
    burst of deltas parsed from one network read then costs one write system call."""

    def __init__(self) -> None:
        self.loop, self.pending = asyncio.get_running_loop(), False

    def write(self, text: str) -> None:
        sys.stdout.write(text)
        if not self.pending:
            self.pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.pending = False
        sys.stdout.flush()


async def script_style_loop(stream: Any, coalesce: bool) -> None:
    """The script's per-chunk work (reasoning check, str(), a list joined at the end),
    printing each delta with print(flush=True) or through CoalescedStdout."""
    out = CoalescedStdout() if coalesce else None
    parts: list[str] = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.reasoning:
            print(chunk.choices[0].delta.reasoning, end="", flush=True, file=sys.stderr)
        if chunk.choices and chunk.choices[0].delta.content:
            content = str(chunk.choices[0].delta.content)
            parts.append(content)
            if out is None:
                print(content, end="", flush=True)
            else:
                out.write(content)
    print("\n\nFinal accumulated text:", "".join(parts), flush=True)


async def print_flush_loop(url: str) -> None:
    await script_style_loop(g4f_stream(url), coalesce=False)


async def coalesced_loop(url: str) -> None:
    await script_style_loop(g4f_stream(url), coalesce=True)


async def openai_sdk(url: str) -> None:
    """AsyncOpenAI against the same server (run only where pydantic is visible)."""
    from openai import AsyncOpenAI

    client: Any = AsyncOpenAI(base_url=url, api_key="unused")  # Any: openai is optional here
    stream = await client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pass


VARIANTS: dict[str, Variant] = {
    "floor": floor,
    "bare g4f": bare_g4f,
    "doc loop": doc_loop,
    "this script": this_script,
    "print+flush loop": print_flush_loop,
    "coalesced loop": coalesced_loop,
    "OpenAI SDK": openai_sdk,
}


# ---- timing -----------------------------------------------------------------------------


def cpu_seconds(run: Callable[[Any], Coroutine[Any, Any, None]], arg: Any) -> float:
    """CPU seconds of `run(arg)`, in a fresh event loop, its output flushed. CPU rather than
    wall time: the server and the pipe's reader are other processes, so this counts the
    client's work alone, whatever else the machine is doing."""
    started = time.process_time()
    asyncio.run(run(arg))
    sys.stdout.flush()
    return time.process_time() - started


def rotations(items: list[Any], repeats: int) -> Iterator[list[Any]]:
    """`items` in a different order on each repeat, so no one always runs first."""
    for repeat in range(repeats):
        shift = repeat % len(items)
        yield items[shift:] + items[:shift]


def per_chunk(spec: dict[str, Any]) -> dict[str, list[float]]:
    """CPU µs per chunk of each named variant, in each of the interleaved repeats."""
    variants = {name: VARIANTS[name] for name in spec["variants"]}
    for run in variants.values():  # warm-up: imports, first connections
        cpu_seconds(run, spec["warm_up_url"])
    results: dict[str, list[float]] = {name: [] for name in variants}
    for order in rotations(list(variants.items()), spec["repeats"]):
        for name, run in order:
            results[name].append(cpu_seconds(run, spec["url"]) / spec["chunks"] * 1e6)
    return results


def peak_rss_kib() -> int:
    """This process's peak resident memory in KiB: VmHWM where /proc has it, as getrusage's
    figure also counts the process that forked this one, else getrusage's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def one_run(spec: dict[str, Any]) -> dict[str, float]:
    """One variant once, in this fresh process as the script is run, after a small
    warm-up: CPU µs per chunk, the share of it spent in the kernel, page faults per
    chunk, and the process's peak resident memory."""
    run = VARIANTS[spec["variant"]]
    cpu_seconds(run, spec["warm_up_url"])
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu_seconds(run, spec["url"])
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "us_per_chunk": cpu / spec["chunks"] * 1e6,
        "peak_kib": peak_rss_kib(),
        "kernel_share": (after.ru_stime - before.ru_stime) / cpu,
        "faults_per_chunk": (after.ru_minflt - before.ru_minflt) / spec["chunks"],
    }


def prebuilt_client(chunks: int, chars: int) -> Any:
    """A stand-in for g4f's AsyncClient() whose streams yield one prebuilt g4f chunk
    `chunks` times."""
    from g4f.client.stubs import ChatCompletionChunk

    prebuilt = ChatCompletionChunk.model_construct("x" * chars, None, "id", 0)

    async def create(**request: Any) -> AsyncIterator[Any]:
        for _ in range(chunks):
            yield prebuilt

    return SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))


async def doc_loop_with(client: Any) -> None:
    """The documentation's loop over `client`'s stream."""
    await documentation_loop(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))


async def main_with(client: Any) -> None:
    """messages_stream.main() with g4f's AsyncClient replaced by one returning `client`."""
    import messages_stream

    with mock.patch("g4f.client.AsyncClient", lambda **_: client):
        assert await messages_stream.main(["--base-url", "http://127.0.0.1:9/v1"]) == 0


def loops_alone(spec: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """CPU µs per chunk of the documentation's loop and of the script's main() over
    prebuilt chunks, for each size: no network and no parsing, so only the loops differ."""
    loops = [("doc", doc_loop_with), ("script", main_with)]
    results = {}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for chunks in spec["sizes"]:
            client = prebuilt_client(chunks, spec["chars"])
            cpu_seconds(main_with, prebuilt_client(10, 1))  # warm-up: the script's imports
            times: dict[str, list[float]] = {name: [] for name, _ in loops}
            for order in rotations(loops, spec["repeats"]):
                for name, run in order:
                    times[name].append(cpu_seconds(run, client) / chunks * 1e6)
            results[str(chunks)] = times
    return results


def latency(spec: dict[str, Any]) -> None:
    """Print one answer with the script-style loop and the given flush strategy; the
    parent times the first byte."""
    asyncio.run(script_style_loop(g4f_stream(spec["url"]), coalesce=spec["coalesce"]))


def main() -> None:
    spec = json.loads(sys.argv[1])
    kinds: dict[str, Callable[[dict[str, Any]], Any]] = {
        "per_chunk": per_chunk,
        "loops_alone": loops_alone,
        "one_run": one_run,
        "latency": latency,
    }
    result = kinds[spec["kind"]](spec)
    if "result" in spec:
        Path(spec["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
