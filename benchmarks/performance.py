"""Every figure in docs/performance.md, printed by one run.

    python benchmarks/performance.py [--chunks 50000] [--repeats 7] [--streams 1,100,1000,5000]
                                     [--timeout 0.5] [--no-cost] [--gate INSTRUCTIONS]

1. Cost a chunk, in instructions (valgrind's callgrind, PYTHONHASHSEED fixed: the counts repeat
   exactly): one stream of prebuilt g4f chunks read bare, through a pass-through `async for ...
   yield` generator, and through resilient_stream() over a fake client. Each is counted at two
   lengths; the difference over the difference in chunks is the cost a chunk, without start-up.
   --gate N runs this section alone and exits with status 1 when the core costs more than N
   instructions a chunk over bare.
2. End to end, for each of g4f's HTTP backends: CPU µs a chunk of the floor (aiohttp + json),
   bare g4f (its AsyncClient asked as the script asks, nothing printed) and this script, over
   --chunks one-character deltas; the time from the server sending a delta to its bytes on
   the script's stdout; start-up.
3. g4f's copy of the answer: CPU µs a chunk of the floor, bare g4f and this script for answers
   of 1 KiB deltas, 1,000 and 4,000 of them, each run in a fresh process.
4. Many streams: N streams whose provider never sends, through the core with an idle timeout:
   how late each timeout fires and the CPU while they wait, beside asyncio.timeout itself.

Children consume the answers of local OpenAI-compatible servers (tests/openai_server.py) and
count their own CPU time, not wall time: the machine may be shared. Whatever is compared runs
side by side, interleaved, and ratios and differences are medians over paired repeats. g4f
runs as a plain `pip install g4f` runs it, without pydantic (benchmarks/no_pydantic hides it).
It asserts nothing but the gate. The children are this script run with --child SPEC.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import date
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import messages_stream  # noqa: E402 - stdlib only at import; g4f is imported in the children
from tests.openai_server import OpenAIServer  # noqa: E402

SCRIPT = ROOT / "messages_stream.py"
HIDE = {"pydantic": HERE / "no_pydantic", "curl_cffi": ROOT / "tests" / "no_curl_cffi"}
CONFIG_DIR = tempfile.mkdtemp(prefix="g4f-bench-")
atexit.register(shutil.rmtree, CONFIG_DIR, True)  # each process its own, removed as it ends
# section 1: chunks in the two counted streams, of chunks already there and of chunks that wait
COST_LENGTHS = {"ready": [10_000, 30_000], "waiting": [1_000, 3_000]}
COPY_LENGTHS = [1_000, 4_000]  # section 3: 1 KiB deltas in the two answers
BARE_G4F = """
import asyncio, sys
from g4f.client import AsyncClient, create_custom_provider
async def main():
    provider = create_custom_provider(sys.argv[1], None, name="Custom", models=["gpt-4"])
    stream = AsyncClient().chat.completions.create(
        provider=provider, model="gpt-4", messages=[{"role": "user", "content": "hi"}], stream=True)
    async for chunk in stream:
        pass
asyncio.run(main())
"""  # asked as the script asks: with models=[...], g4f requests no model list first


# ---- the children ------------------------------------------------------------------------


async def flood(chunk: Any, count: int) -> AsyncGenerator[Any, None]:
    """A provider that sends `chunk` `count` times without ever waiting."""
    for _ in range(count):
        yield chunk


async def trickle(chunk: Any, count: int) -> AsyncGenerator[Any, None]:
    """A provider that sends `chunk` `count` times, each after a turn of the event loop, as a
    live stream's chunks arrive."""
    for _ in range(count):
        await asyncio.sleep(0)
        yield chunk


async def silent() -> AsyncGenerator[Any, None]:
    """A provider that never sends anything."""
    await asyncio.sleep(3600)
    yield None  # never reached: it makes this an async generator


async def pass_through(stream: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """The least a generator that wraps a stream can do."""
    async for chunk in stream:
        yield chunk


def core(stream: AsyncGenerator[Any, None], timeout: float = 30.0) -> Any:
    """`stream` through the core, from a fake client whose create() returns it."""
    client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=lambda **_: stream)))
    return messages_stream.resilient_stream(client, timeout=timeout, model="m", messages=[])


WRAPS: dict[str, Callable[[Any], Any]] = {
    "bare": lambda stream: stream,
    "pass-through": pass_through,
    "core": core,
}


async def read(stream: Any) -> int:
    """Consume a stream as the documentation's loop does, without printing: deltas seen."""
    deltas = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            deltas += 1
    return deltas


def cost(spec: dict[str, Any]) -> None:
    """Section 1, under callgrind with instrumentation off: warm up every way of reading, then
    count each stream alone. callgrind_control acts while this process waits for it, so each
    count starts and ends at the same instruction in every run."""
    from g4f.client.stubs import ChatCompletionChunk

    chunk = ChatCompletionChunk.model_construct("x", None, "fake", 0, usage=None)

    def run(provider: str, kind: str, count: int) -> None:
        stream = (flood if provider == "ready" else trickle)(chunk, count)
        assert asyncio.run(read(WRAPS[kind](stream))) == count

    def callgrind(option: str) -> None:
        cmd = ["callgrind_control", option, str(os.getpid())]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    for provider in COST_LENGTHS:
        for kind in WRAPS:
            run(provider, kind, 100)
    callgrind("--instr=on")
    for provider, lengths in COST_LENGTHS.items():
        for kind in WRAPS:
            for count in lengths:
                run(provider, kind, count)
                callgrind(f"--dump={provider}:{kind}:{count}")  # the count since the last dump


def g4f_stream(url: str) -> Any:
    """g4f's stream of chunks from the server at `url`, asked for as the script asks."""
    from g4f.client import AsyncClient, create_custom_provider

    provider = create_custom_provider(url, None, name="Custom", models=["gpt-4"])
    messages = [{"role": "user", "content": "hi"}]
    return AsyncClient().chat.completions.create(
        provider=provider, model="gpt-4", messages=messages, stream=True
    )


async def floor(url: str) -> None:
    """The same SSE stream read with aiohttp and json directly: what any client must do."""
    import aiohttp

    body = {"model": "gpt-4", "messages": [], "stream": True}
    async with aiohttp.ClientSession() as session, session.post(f"{url}/chat/completions", json=body) as resp:
        async for line in resp.content:
            if line.startswith(b"data: {"):
                json.loads(line[6:])["choices"][0]["delta"].get("content")


async def bare_g4f(url: str) -> None:
    await read(g4f_stream(url))


async def this_script(url: str) -> None:
    """messages_stream.main(), as the command line runs it, its idle timeout on."""
    assert await messages_stream.main(["--base-url", url]) == 0


VARIANTS = {"floor": floor, "bare g4f": bare_g4f, "this script": this_script}


def rotated(items: list[str], repeat: int) -> list[str]:
    """`items` in a different order on each repeat, so that no one always runs first."""
    shift = repeat % len(items)
    return items[shift:] + items[:shift]


def per_chunk(spec: dict[str, Any]) -> dict[str, list[float]]:
    """Sections 2 and 3: CPU µs a chunk of each variant in each interleaved repeat."""

    def cpu_us(name: str, url: str) -> float:
        started = time.process_time()
        asyncio.run(VARIANTS[name](url))
        sys.stdout.flush()
        return (time.process_time() - started) / spec["chunks"] * 1e6

    for name in spec["variants"]:  # warm-up: imports, first connections
        cpu_us(name, spec["warm_up_url"])
    times: dict[str, list[float]] = {name: [] for name in spec["variants"]}
    for repeat in range(spec["repeats"]):
        for name in rotated(spec["variants"], repeat):
            times[name].append(cpu_us(name, spec["url"]))
    return times


async def deadline_phase(variant: str, streams: int, timeout: float) -> dict[str, Any]:
    """Section 4: `streams` silent providers, each timed from the start of its iteration to
    its timeout error; an end of any other kind is counted apart."""

    async def one() -> float | None:
        started = time.perf_counter()
        try:
            if variant == "core":
                await read(core(silent(), timeout))
            else:
                async with contextlib.aclosing(silent()) as provider, asyncio.timeout(timeout):
                    await read(provider)
        except messages_stream.StreamError as exc:
            if f"TimeoutError: no delta within {timeout:g}s" in str(exc):
                return time.perf_counter() - started - timeout
        except TimeoutError:
            return time.perf_counter() - started - timeout
        return None

    cpu = time.process_time()
    ends = await asyncio.gather(*(one() for _ in range(streams)))
    late = [end * 1000 for end in ends if end is not None]
    return {"cpu": time.process_time() - cpu, "late": late, "others": len(ends) - len(late)}


def deadline(spec: dict[str, Any]) -> dict[str, Any]:
    """Section 4 in this fresh process: two small runs with a short timeout, then the phase."""

    async def main() -> dict[str, Any]:
        for _ in range(2):
            await deadline_phase(spec["variant"], 10, 0.01)
        return await deadline_phase(spec["variant"], spec["streams"], spec["timeout"])

    return asyncio.run(main())


CHILDREN: dict[str, Callable[[dict[str, Any]], Any]] = {
    "cost": cost,
    "per_chunk": per_chunk,
    "deadline": deadline,
}


# ---- the parent ------------------------------------------------------------------------


def env_for(backend: str = "aiohttp") -> dict[str, str]:
    """A child's environment on `backend`: pydantic hidden, and curl_cffi for aiohttp; g4f's
    config dir shared; Python as a user's shell runs it, without the PYTHON* settings some
    machines make (with PYTHONUNBUFFERED every write is a system call)."""
    hidden = [HIDE["pydantic"]] + ([HIDE["curl_cffi"]] if backend == "aiohttp" else [])
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(G4F_CONFIG_DIR=CONFIG_DIR, NO_PROXY="127.0.0.1", PYTHONPATH=os.pathsep.join(map(str, hidden)))
    return env


def child(env: dict[str, str], prefix: Sequence[str] = (), **spec: Any) -> Any:
    """Run this script with --child `spec` in a fresh process, its stdout a pipe read to the
    end; the figures are its last line."""
    cmd = [*prefix, sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, check=True, text=True)
    return json.loads(done.stdout.splitlines()[-1]) if done.stdout else None


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of per-repeat ratios: it cancels the drift that makes two separate medians
    differ by tens of percent on a shared machine."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def median_difference(minuends: Sequence[float], subtrahends: Sequence[float]) -> float:
    """The median of per-repeat differences (not the difference of the medians)."""
    return statistics.median(a - b for a, b in zip(minuends, subtrahends, strict=True))


def instructions() -> dict[str, dict[str, float]]:
    """Section 1: instructions a chunk for each provider and each of WRAPS, from callgrind's
    dumps."""
    with tempfile.TemporaryDirectory() as dumps:
        valgrind = ["valgrind", "-q", "--tool=callgrind", "--instr-atstart=no"]
        valgrind.append(f"--callgrind-out-file={dumps}/callgrind.out")
        # Only what it needs: the counts move by a few instructions with the environment's size.
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONHASHSEED": "0",
            "PYTHONPATH": env_for()["PYTHONPATH"],
        }
        child(dict(env, G4F_CONFIG_DIR=CONFIG_DIR), valgrind, kind="cost")
        totals = {}
        for dump in Path(dumps).glob("callgrind.out.*"):
            text = dump.read_text()
            label, total = (
                re.search(r"^desc: Trigger: dump (\S+)", text, re.M),
                re.search(r"^totals: (\d+)", text, re.M),
            )
            assert label and total, f"{dump} is not a callgrind dump"
            totals[label[1]] = int(total[1])
    return {
        provider: {
            kind: (totals[f"{provider}:{kind}:{long}"] - totals[f"{provider}:{kind}:{short}"])
            / (long - short)
            for kind in WRAPS
        }
        for provider, (short, long) in COST_LENGTHS.items()
    }


def print_instructions() -> float:
    """Section 1's figures; returns the core's instructions a chunk over bare, of chunks already
    there."""
    cost = instructions()
    print("1. Cost a chunk, in instructions (callgrind, PYTHONHASHSEED=0): one stream of prebuilt g4f")
    print("   chunks, read as the documentation's loop reads, counted at two lengths")
    for provider, (short, long) in COST_LENGTHS.items():
        if provider == "waiting":  # turns of the event loop vary by up to 0.2% from run to run
            cost[provider] = {kind: round(count, -2) for kind, count in cost[provider].items()}
        over = {kind: cost[provider][kind] - cost[provider]["bare"] for kind in WRAPS}
        how = "there at once" if provider == "ready" else "each after a turn of the event loop, to the 100"
        print(f"   chunks {how}, {long:,} against {short:,}:")
        for kind in WRAPS:
            extra = f", {over[kind]:+,.0f} over bare" if over[kind] else ""
            print(f"     {kind:<14}{cost[provider][kind]:>7,.0f} a chunk{extra}")
        if provider == "ready":  # of waits, pass-through over bare is too small a difference for a ratio
            print(
                f"     the core over bare / pass-through over bare: {over['core'] / over['pass-through']:.1f}"
            )
    print()
    return cost["ready"]["core"] - cost["ready"]["bare"]


def print_end_to_end(backend: str, server: OpenAIServer, chunks: int, repeats: int) -> None:
    """Section 2 for one backend."""
    env = env_for(backend)
    spec: dict[str, Any] = {"url": server.url(f"chars-{chunks}"), "warm_up_url": server.url("chars-10")}
    runs = child(env, kind="per_chunk", variants=list(VARIANTS), repeats=repeats, chunks=chunks, **spec)
    print(f"2. End to end, backend {backend}: {chunks:,} one-character deltas, {repeats} interleaved repeats")
    print("   CPU µs a chunk (medians; x bare g4f, median of paired ratios)")
    for name, times in runs.items():
        print(f"   {name:<14}{statistics.median(times):>8.2f} ({median_ratio(times, runs['bare g4f']):.2f})")
    delays = []
    for _ in range(repeats):
        with subprocess.Popen(
            [sys.executable, SCRIPT, "--base-url", server.url("pause-300")], stdout=subprocess.PIPE, env=env
        ) as proc:
            assert proc.stdout is not None
            os.read(proc.stdout.fileno(), 1)
            delays.append((time.perf_counter() - server.first_sent) * 1000)
            proc.stdout.read()
    delay = statistics.median(delays)
    print(f"   a delta on the script's stdout after the server sent it: {delay:.2f} ms (median)")
    print_start_up(env, server.url("hello"), max(2, 2 * repeats))


def cpu_ms(cmd: list[str], env: dict[str, str]) -> float:
    """CPU ms of one run of `cmd`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000


def print_start_up(env: dict[str, str], url: str, repeats: int) -> None:
    """CPU ms of `import g4f.client`, and the script's runs over it, paired in each repeat."""
    commands = {
        "g4f": [sys.executable, "-c", "import g4f.client"],
        "help": [sys.executable, str(SCRIPT), "--help"],
        "script": [sys.executable, str(SCRIPT), "--base-url", url],
        "bare": [sys.executable, "-c", BARE_G4F, url],
    }
    ms: dict[str, list[float]] = {name: [] for name in commands}
    for repeat in range(repeats):
        for name in rotated(list(commands), repeat):
            ms[name].append(cpu_ms(commands[name], env))
    over = {name: median_difference(ms[name], ms["g4f"]) for name in ("help", "script", "bare")}
    print(f"   start-up, CPU ms: import g4f.client {statistics.median(ms['g4f']):.0f}; over it, medians of")
    print(f"   paired differences: --help {over['help']:+.0f}, the script's one-chunk answer", end=" ")
    print(f"{over['script']:+.0f}, bare g4f's {over['bare']:+.0f}\n")


def print_copy(server: OpenAIServer, repeats: int) -> None:
    """Section 3: CPU a chunk at two lengths of 1 KiB deltas, each run in a fresh process as the
    script is run (a reused process's memory hides the page faults of g4f's copies)."""
    print("3. g4f's copy of the answer: 1 KiB deltas, backend aiohttp, each run a fresh process,")
    print(f"   {repeats} interleaved repeats; CPU µs a chunk (medians)")
    variants = ["floor", "bare g4f", "this script"]
    cpu: dict[int, dict[str, float]] = {}
    for chunks in COPY_LENGTHS:
        spec: dict[str, Any] = {"url": server.url(f"big-{chunks}"), "warm_up_url": server.url("big-2")}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for repeat in range(repeats):
            for name in rotated(variants, repeat):
                runs = child(
                    env_for(), kind="per_chunk", variants=[name], repeats=1, chunks=chunks + 1, **spec
                )
                times[name].append(runs[name][0])
        cpu[chunks] = {name: statistics.median(times[name]) for name in variants}
        figures = ", ".join(f"{name} {cpu[chunks][name]:.1f}" for name in variants)
        print(f"   {chunks:>6,} deltas ({chunks:,} KiB): {figures}")
    short, long = COPY_LENGTHS
    growth = ", ".join(f"{name} {cpu[long][name] / cpu[short][name]:.2f}x" for name in variants)
    print(f"   a chunk at {long:,} deltas against {short:,}: {growth}\n")


def print_deadline(streams: list[int], timeout: float, repeats: int) -> None:
    """Section 4: how late the core's timeout fires with N silent streams, and its CPU."""
    variants = ["core", "asyncio.timeout"]
    runs: dict[tuple[int, str], list[dict[str, Any]]] = {(n, v): [] for n in streams for v in variants}
    for repeat in range(repeats):
        for n in streams:
            for variant in rotated(variants, repeat):
                runs[n, variant].append(
                    child(env_for(), kind="deadline", variant=variant, streams=n, timeout=timeout)
                )
    print(
        f"4. Many streams whose provider never sends, timeout {timeout:g} s, {repeats} repeats, each a fresh"
    )
    print("   process: ms from the start of a stream's iteration to its error, minus the timeout, median")
    print("   (max) of all the streams; CPU µs a stream, median of the runs")
    print(f"   {'streams':>8}{'core: ms late':>18}{'CPU':>7}{'asyncio.timeout: ms late':>29}{'CPU':>7}")
    for n in streams:
        row = f"   {n:>8,}"
        for variant, width in zip(variants, (18, 29), strict=True):
            late = [ms for run in runs[n, variant] for ms in run["late"]]
            figures = f"{statistics.median(late):.1f} ({max(late):.1f})" if late else "-"
            cpu = statistics.median(run["cpu"] for run in runs[n, variant]) / n * 1e6
            row += f"{figures:>{width}}{cpu:>7.0f}"
            if others := sum(run["others"] for run in runs[n, variant]):
                row += f" ({others} ended otherwise)"
        print(row)
    print()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=50_000, help="section 2: deltas in the answer (50000)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats (7)")
    parser.add_argument(
        "--streams",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 100, 1000, 5000],
        help="section 4 (1,100,1000,5000)",
    )
    parser.add_argument("--timeout", type=float, default=0.5, help="section 4: the idle timeout (0.5)")
    parser.add_argument("--no-cost", action="store_true", help="skip section 1 (it needs valgrind)")
    parser.add_argument(
        "--gate", type=int, metavar="INSTRUCTIONS", help="section 1 alone: fail above this, over bare"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON: run as one of the children
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["kind"]](spec)))
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr] # each line as it comes
    print(
        f"messages_stream performance, {date.today()}, {os.cpu_count()} cores, {platform.machine()},", end=" "
    )
    print(f"Python {platform.python_version()}, g4f {version('g4f')}\n")
    if args.gate is not None or not args.no_cost:
        if not shutil.which("callgrind_control"):
            sys.exit("section 1 needs valgrind: apt-get install valgrind (or run with --no-cost)")
        over = print_instructions()
        if args.gate is not None:
            if over > args.gate:
                sys.exit(f"cost gate failed: {over:,.0f} instructions a chunk over bare, > {args.gate:,}")
            print(f"cost gate: {over:,.0f} instructions a chunk over bare, within {args.gate:,}")
            return
    server = OpenAIServer().start()
    for backend in ["aiohttp"] + (["curl_cffi"] if find_spec("curl_cffi") else []):
        print_end_to_end(backend, server, args.chunks, args.repeats)
    print_copy(server, args.repeats)
    print_deadline(args.streams, args.timeout, args.repeats)


if __name__ == "__main__":
    main()
