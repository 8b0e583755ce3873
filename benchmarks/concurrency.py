"""The streaming core under concurrency: what resilient_stream costs against bare g4f-style
async generators while many streams wait at once, per chunk, and how late its idle timeout fires.

    python benchmarks/concurrency.py [--streams 1,100,1000,5000] [--wait 5] [--repeats 3]
                                     [--chunks 200000] [--timeout 0.5]

Why: a server may hold thousands of streams open, most of them waiting on a provider; the
core's idle timeout should cost little CPU while they wait, and fire close to its deadline.
The providers are stand-ins, async generators yielding chunks built with g4f's own classes
as tests/conftest.py builds them, so that only the way they are consumed differs; g4f runs
without pydantic (benchmarks/no_pydantic hides it, as a plain `pip install g4f` lacks it).
Whatever is compared runs side by side in one run, interleaved, and ratios and differences
are medians over paired repeats: this machine's speed drifts by tens of percent between runs.

1. CPU while waiting: N streams each wait W s for their first chunk, then yield two and end.
   "bare": N tasks each iterate a plain async generator; "core": the same generators, each
   wrapped by resilient_stream(FakeClient, timeout=30, model="m", messages=[]). The process
   CPU of the whole phase (creating the tasks, waiting, finishing), each run in a fresh child
   process after a small warm-up of its own kind, so that neither warms up the other;
   the phase's wall time shows that both waited W.
2. CPU per chunk: one stream of many prebuilt chunks, no waits, bare and through the core,
   interleaved in one child after a warm-up.
3. Timeout lateness: N streams whose provider never sends, through the core with timeout T:
   for each, the time from the start of its iteration to the StreamError, minus T; and the
   CPU while they wait. For reference, the same generators under asyncio.timeout(T) (a timer
   per wait), interleaved, each run in a fresh child process.

It prints figures; it asserts nothing. The children are this script run with --child SPEC.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import date
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import messages_stream  # noqa: E402 - stdlib only at import; g4f is imported in the children

HIDE_PYDANTIC = HERE / "no_pydantic"
KINDS = ["bare", "core"]  # section 1 and 2
REFERENCE = "asyncio.timeout"  # section 3's reference, beside "core"
CORE_TIMEOUT = 30.0  # sections 1 and 2: never reached
TEXTS = ["Hello", " there"]  # section 1: what each stream yields after its wait
WARM_UPS, WARM_UP_STREAMS = 2, 10  # sections 1 and 3: before the phase, in the same child


# ---- the child: stand-in providers, consumed bare or through the core -------------------


def make_chunks(texts: Sequence[str]) -> list[Any]:
    """Content chunks built with g4f's own classes, as tests/conftest.py builds them."""
    from g4f.client.stubs import ChatCompletionChunk

    made = []
    for text in texts:
        chunk = ChatCompletionChunk.model_construct(text, None, "fake", 0, usage=None)
        chunk.provider, chunk.model = "FakeProvider", "fake-model"
        made.append(chunk)
    return made


class FakeClient:
    """Stands in for g4f's AsyncClient: create() returns the one stream it was given, as
    create(stream=True) returns g4f's async generator."""

    def __init__(self, stream: AsyncGenerator[Any, None]) -> None:
        self.stream = stream
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, **request: Any) -> AsyncGenerator[Any, None]:
        return self.stream


async def waiting_provider(wait: float, chunks: list[Any]) -> AsyncGenerator[Any, None]:
    """A provider that takes `wait` seconds to its first chunk, then sends `chunks` at once."""
    await asyncio.sleep(wait)
    for chunk in chunks:
        yield chunk


async def flood(chunk: Any, count: int) -> AsyncGenerator[Any, None]:
    """A provider that sends `chunk` `count` times without ever waiting."""
    for _ in range(count):
        yield chunk


async def silent_provider() -> AsyncGenerator[Any, None]:
    """A provider that never sends anything."""
    await asyncio.sleep(3600)
    yield None  # never reached: it makes this an async generator


def bare(provider: AsyncGenerator[Any, None]) -> Any:
    """The provider's stream as it is (a call, as core() is)."""
    return provider


def core(provider: AsyncGenerator[Any, None], timeout: float = CORE_TIMEOUT) -> Any:
    """The provider's stream through the core, as a caller of g4f's client would wrap it."""
    client = FakeClient(provider)
    return messages_stream.resilient_stream(client, timeout=timeout, model="m", messages=[])


WRAPS: dict[str, Callable[[AsyncGenerator[Any, None]], Any]] = {"bare": bare, "core": core}


async def read(stream: Any) -> int:
    """Consume a stream as the documentation's loop does, without printing: deltas seen."""
    deltas = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            deltas += 1
    return deltas


async def waiting_phase(kind: str, streams: int, wait: float, chunks: list[Any]) -> dict[str, float]:
    """Section 1's phase: `streams` tasks, each reading one waiting provider's stream."""
    wrap = WRAPS[kind]

    async def one() -> int:
        return await read(wrap(waiting_provider(wait, chunks)))

    cpu, wall = time.process_time(), time.perf_counter()
    tasks = [asyncio.create_task(one()) for _ in range(streams)]
    deltas = sum(await asyncio.gather(*tasks))
    return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "deltas": deltas}


def waiting(spec: dict[str, Any]) -> dict[str, float]:
    """Section 1 in this fresh process: a warm-up of the same kind without waits (Python
    specializes code that has run a few times), then the phase."""
    chunks = make_chunks(TEXTS)

    async def main() -> dict[str, float]:
        for _ in range(WARM_UPS):
            await waiting_phase(spec["variant"], WARM_UP_STREAMS, 0, chunks)
        return await waiting_phase(spec["variant"], spec["streams"], spec["wait"], chunks)

    return asyncio.run(main())


def per_chunk(spec: dict[str, Any]) -> dict[str, Any]:
    """Section 2: CPU µs per chunk of each kind in each of the interleaved repeats."""
    chunk = make_chunks(["x"])[0]

    async def cpu_us(kind: str, count: int) -> float:
        started = time.process_time()
        await read(WRAPS[kind](flood(chunk, count)))
        return (time.process_time() - started) / count * 1e6

    async def main() -> dict[str, list[float]]:
        for kind in KINDS:  # warm-up
            await cpu_us(kind, 1000)
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for repeat in range(spec["repeats"]):
            for kind in rotated(KINDS, repeat):
                times[kind].append(await cpu_us(kind, spec["chunks"]))
        return times

    return asyncio.run(main())


def chunk_class(spec: dict[str, Any]) -> str:
    """What g4f builds its chunks on here: pydantic's BaseModel or its own fallback."""
    from g4f.client import stubs

    base = stubs.BaseModel.__mro__[1].__module__
    return "pydantic models" if base.startswith("pydantic") else "plain objects, no pydantic"


async def deadline_phase(variant: str, streams: int, timeout: float) -> dict[str, Any]:
    """Section 3's phase: `streams` tasks on silent providers, each timed from the start of
    its iteration to its timeout error; None for a stream that ended any other way."""

    async def one() -> float | None:
        started = time.perf_counter()
        try:
            if variant == "core":
                await read(core(silent_provider(), timeout))
            else:
                async with contextlib.aclosing(silent_provider()) as provider, asyncio.timeout(timeout):
                    await read(provider)
        except messages_stream.StreamError as exc:
            if any(f"TimeoutError: no delta within {timeout:g}s" in str(arg) for arg in exc.args):
                return time.perf_counter() - started - timeout
        except TimeoutError:
            if variant == REFERENCE:
                return time.perf_counter() - started - timeout
        return None

    cpu = time.process_time()
    ends = await asyncio.gather(*(one() for _ in range(streams)))
    late = [end * 1000 for end in ends if end is not None]
    return {
        "cpu": time.process_time() - cpu,
        "median_ms": statistics.median(late) if late else float("nan"),
        "max_ms": max(late, default=float("nan")),
        "others": len(ends) - len(late),
    }


def deadline(spec: dict[str, Any]) -> dict[str, Any]:
    """Section 3 in this fresh process: a warm-up of the same kind with a short timeout,
    then the phase."""

    async def main() -> dict[str, Any]:
        for _ in range(WARM_UPS):
            await deadline_phase(spec["variant"], WARM_UP_STREAMS, 0.01)
        return await deadline_phase(spec["variant"], spec["streams"], spec["timeout"])

    return asyncio.run(main())


CHILD_KINDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "waiting": waiting,
    "per_chunk": per_chunk,
    "deadline": deadline,
    "chunk_class": chunk_class,
}


# ---- the parent: runs the children, prints the tables ------------------------------------


def rotated(items: list[str], repeat: int) -> list[str]:
    """`items` in a different order on each repeat, so that no one always runs first."""
    shift = repeat % len(items)
    return items[shift:] + items[:shift]


def child_env() -> dict[str, str]:
    """A child's environment: pydantic hidden; g4f's config in a temporary folder; stdout
    buffered, as it is unless PYTHONUNBUFFERED is set (some CI images set it)."""
    env = dict(os.environ, G4F_CONFIG_DIR=tempfile.mkdtemp(prefix="g4f-bench-"))
    env.pop("PYTHONUNBUFFERED", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HIDE_PYDANTIC), env.get("PYTHONPATH")]))
    return env


def child(env: dict[str, str], **spec: Any) -> Any:
    """Run this script with --child `spec` in a fresh process and return its figures."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, check=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of per-repeat ratios: it cancels the drift that makes two separate
    medians differ by tens of percent on a shared machine."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def median_difference(minuends: Sequence[float], subtrahends: Sequence[float]) -> float:
    """The median of per-repeat differences (not the difference of the medians)."""
    return statistics.median(a - b for a, b in zip(minuends, subtrahends, strict=True))


def print_waiting(env: dict[str, str], streams: list[int], wait: float, repeats: int) -> None:
    """Section 1: CPU and wall time of N waiting streams, bare and through the core."""
    runs: dict[tuple[int, str], list[dict[str, float]]] = {(n, k): [] for n in streams for k in KINDS}
    for repeat in range(repeats):
        for n in streams:
            for kind in rotated(KINDS, repeat):
                runs[n, kind].append(child(env, kind="waiting", variant=kind, streams=n, wait=wait))
    print(f"1. CPU while waiting: N streams each wait {wait:g} s for a first chunk, then yield {len(TEXTS)}.")
    print(f"   Each run a fresh process; bare and core interleaved; repeats: {repeats}. Medians, and medians")
    print("   of paired ratios and differences")
    head = f"   {'streams':>8}{'CPU s: bare':>13}{'core':>9}{'core/bare':>11}"
    print(f"{head}{'core-bare, µs/stream/s':>24}{'wall s: bare':>14}{'core':>8}")
    for n in streams:
        cpu = {kind: [run["cpu"] for run in runs[n, kind]] for kind in KINDS}
        wall = {kind: statistics.median(run["wall"] for run in runs[n, kind]) for kind in KINDS}
        extra = median_difference(cpu["core"], cpu["bare"]) / (n * wait) * 1e6
        row = f"   {n:>8,}{statistics.median(cpu['bare']):>13.4f}{statistics.median(cpu['core']):>9.4f}"
        row += f"{median_ratio(cpu['core'], cpu['bare']):>11.2f}{extra:>24.1f}"
        print(f"{row}{wall['bare']:>14.3f}{wall['core']:>8.3f}")
        short = [kind for kind in KINDS if any(run["deltas"] != n * len(TEXTS) for run in runs[n, kind])]
        if short:
            print(f"   (at {n:,} streams, {' and '.join(short)} did not see every delta)")
    print()


def print_per_chunk(env: dict[str, str], chunks: int, repeats: int) -> None:
    """Section 2: CPU µs per chunk of one stream that never waits, bare and through the core."""
    runs = child(env, kind="per_chunk", chunks=chunks, repeats=repeats)
    bare_us, core_us = runs["bare"], runs["core"]
    print(f"2. CPU per chunk: one stream of {chunks:,} prebuilt chunks, no waits; in one process after")
    print(f"   a warm-up, interleaved repeats: {repeats}")
    print(
        f"   bare {statistics.median(bare_us):.3f} µs/chunk, core {statistics.median(core_us):.3f}:", end=" "
    )
    print(f"{median_difference(core_us, bare_us):+.3f} µs a chunk, {median_ratio(core_us, bare_us):.2f}x")
    print("   (medians of paired differences and ratios)\n")


def print_deadline(env: dict[str, str], streams: list[int], timeout: float, repeats: int) -> None:
    """Section 3: how late the core's timeout fires with N silent streams, and its CPU."""
    variants = ["core", REFERENCE]
    runs: dict[tuple[int, str], list[dict[str, Any]]] = {(n, v): [] for n in streams for v in variants}
    for repeat in range(repeats):
        for n in streams:
            for variant in rotated(variants, repeat):
                spec = {"variant": variant, "streams": n, "timeout": timeout}
                runs[n, variant].append(child(env, kind="deadline", **spec))
    print(f"3. Timeout lateness: N streams whose provider never sends, timeout {timeout:g} s; for reference")
    print(f"   the same under asyncio.timeout({timeout:g}). Each run a fresh process; interleaved; repeats:")
    print(
        f"   {repeats}. Lateness: from the start of a stream's iteration to its error, minus {timeout:g} s,"
    )
    print("   the median of the runs' medians and the largest of all; CPU s of the phase, medians")
    head = f"   {'streams':>8}{'core: median ms':>17}{'max ms':>8}{'CPU s':>8}"
    print(f"{head}{REFERENCE + ': median ms':>28}{'max ms':>8}{'CPU s':>8}{'CPU core/ref':>14}")
    for n in streams:
        row = f"   {n:>8,}"
        for variant, width in (("core", 17), (REFERENCE, 28)):
            done = runs[n, variant]
            row += f"{statistics.median(run['median_ms'] for run in done):>{width}.1f}"
            row += f"{max(run['max_ms'] for run in done):>8.1f}"
            row += f"{statistics.median(run['cpu'] for run in done):>8.4f}"
        cpus = {variant: [run["cpu"] for run in runs[n, variant]] for variant in variants}
        print(f"{row}{median_ratio(cpus['core'], cpus[REFERENCE]):>14.2f}")
        for variant in variants:
            if others := sum(run["others"] for run in runs[n, variant]):
                print(f"   (at {n:,} streams, {others} {variant} streams ended without a timeout error)")
    print()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def numbers(text: str) -> list[int]:
        return [int(number) for number in text.split(",")]

    parser.add_argument("--streams", type=numbers, default=[1, 100, 1000, 5000], help="N (1,100,1000,5000)")
    parser.add_argument("--wait", type=float, default=5.0, help="section 1: seconds to a first chunk (5)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (3)")
    parser.add_argument(
        "--chunks", type=int, default=200_000, help="section 2: chunks in the stream (200000)"
    )
    parser.add_argument("--timeout", type=float, default=0.5, help="section 3: the core's timeout (0.5)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON: run as one of the children
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILD_KINDS[spec["kind"]](spec)))
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr] # each line as it comes
    env = child_env()
    print(f"messages_stream concurrency benchmark, {date.today()}, {os.cpu_count()} cores,", end=" ")
    print(f"{platform.machine()}, Python {platform.python_version()}, g4f {version('g4f')}")
    print(f"g4f's chunks in the children: {child(env, kind='chunk_class')}\n")
    print_waiting(env, args.streams, args.wait, args.repeats)
    print_per_chunk(env, args.chunks, args.repeats)
    print_deadline(env, args.streams, args.timeout, args.repeats)


if __name__ == "__main__":
    main()
