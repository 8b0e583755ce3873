"""What messages_stream.py costs over g4f itself, and how fast a delta reaches stdout.

    python benchmarks/stream_overhead.py [--chunks 50000] [--repeats 5]

A local OpenAI-compatible server (tests/openai_server.py) streams N one-character
chunks as fast as it can. For each of g4f's HTTP backends (aiohttp, and curl_cffi
when installed) a child process runs these side by side, interleaved, several
times, with its stdout a pipe that this process drains:

  floor        the same SSE stream read with aiohttp and json directly
  bare g4f     AsyncClient(provider=Custom), consumed without printing
  doc loop     the documentation's loop: print(..., flush=True) and +=
  this script  messages_stream.main() with its default idle timeout on
  OpenAI SDK   AsyncOpenAI against the same server, if openai is installed

and reports the median microseconds per chunk, each as a ratio to bare g4f.
Then, with the script as a subprocess: time from the server sending a delta to
its bytes on the script's stdout, start-up time, and peak memory for a 2 MiB
answer. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import HIDE_CURL_CFFI  # noqa: E402
from tests.openai_server import OpenAIServer  # noqa: E402

SCRIPT = ROOT / "messages_stream.py"
MESSAGES = [{"role": "user", "content": "Say hello there!"}]
CONFIG_DIR = tempfile.mkdtemp(prefix="g4f-bench-")
BARE_G4F = """
import asyncio, sys
from g4f.client import AsyncClient
from g4f.Provider import Custom
async def main():
    stream = AsyncClient(provider=Custom, base_url=sys.argv[1]).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "hi"}], stream=True)
    async for chunk in stream:
        pass
asyncio.run(main())
"""


# ---- in the child: per-chunk cost of each way to consume the stream ---------------


async def floor(url: str) -> None:
    import aiohttp

    body = {"model": "gpt-4", "messages": MESSAGES, "stream": True}
    async with aiohttp.ClientSession() as session, session.post(f"{url}/chat/completions", json=body) as resp:
        async for line in resp.content:
            if line.startswith(b"data: {"):
                json.loads(line[6:])["choices"][0]["delta"].get("content")


def g4f_stream(url: str) -> Any:
    from g4f.client import AsyncClient
    from g4f.Provider import Custom

    client = AsyncClient(provider=Custom, base_url=url)
    return client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)


async def bare_g4f(url: str) -> None:
    async for chunk in g4f_stream(url):
        if chunk.choices and chunk.choices[0].delta.content:
            pass


async def documentation_loop(stream: Any, out: Any = None) -> None:
    """The loop of g4f's documented example, printing to `out` (default stdout)."""
    accumulated_text = ""
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                content = chunk.choices[0].delta.content
                accumulated_text += content
                print(content, end="", flush=True, file=out)
    except Exception as e:
        print(f"\nError occurred: {e}", file=out)
    finally:
        print("\n\nFinal accumulated text:", accumulated_text, file=out)


async def doc_loop(url: str) -> None:
    await documentation_loop(g4f_stream(url))


def this_script(url: str) -> None:
    import messages_stream

    assert messages_stream.main(["--base-url", url]) == 0


async def openai_sdk(url: str) -> None:
    from openai import AsyncOpenAI

    client: Any = AsyncOpenAI(base_url=url, api_key="unused")  # Any: openai is optional here
    stream = await client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pass


def child(server_url: str, chunks: int, repeats: int, result_path: str) -> None:
    """Time each variant `repeats` times, interleaved; write µs/chunk lists as JSON.
    The server runs in the parent, so it does not compete for this process's GIL."""
    variants: dict[str, Callable[[str], Any]] = {
        "floor": floor,
        "bare g4f": bare_g4f,
        "doc loop": doc_loop,
        "this script": this_script,
    }
    try:
        import openai  # noqa: F401

        variants["OpenAI SDK"] = openai_sdk
    except ImportError:
        pass
    url = server_url.replace("SCENARIO", f"chars-{chunks}")
    results: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():  # warm-up: imports, connections, g4f's model list
        run_one(run, server_url.replace("SCENARIO", "chars-10"))
    for repeat in range(repeats):
        order = list(variants.items())
        order = order[repeat % len(order) :] + order[: repeat % len(order)]
        for name, run in order:
            results[name].append(run_one(run, url) / chunks * 1e6)
    Path(result_path).write_text(json.dumps(results))


def run_one(run: Callable[[str], Any], url: str) -> float:
    """CPU seconds of one variant, which prints to this process's stdout (a pipe).
    CPU time rather than wall time: the server and the reader of the pipe are in
    another process, so this counts the client's work alone, whatever else the
    machine is doing (wall times here swing by a third between runs)."""
    started = time.process_time()
    outcome = run(url)
    if asyncio.iscoroutine(outcome):
        asyncio.run(outcome)
    sys.stdout.flush()
    return time.process_time() - started


def loop_alone(chunks: int, repeats: int) -> tuple[float, float]:
    """CPU µs per chunk of the documentation's loop and of this script's core over
    prebuilt g4f chunks: no network and no g4f parsing, so only the loops differ."""
    from g4f.client.stubs import ChatCompletionChunk

    import messages_stream

    prebuilt = [ChatCompletionChunk.model_construct("x", None, "id", 0) for _ in range(chunks)]

    async def stream() -> Any:
        for chunk in prebuilt:
            yield chunk

    client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=lambda **_: stream())))
    out = open(os.devnull, "w")  # noqa: SIM115 - closed by the interpreter at exit

    args = messages_stream.parse_args(["--base-url", "http://127.0.0.1:9/v1"])
    times: dict[str, list[float]] = {"doc": [], "script": []}
    for _ in range(repeats):
        for name, run in (
            ("doc", lambda: documentation_loop(stream(), out)),
            ("script", lambda: messages_stream.stream_chat(client, args, out, out)),
        ):
            started = time.process_time()
            asyncio.run(run())
            times[name].append((time.process_time() - started) / chunks * 1e6)
    return statistics.median(times["doc"]), statistics.median(times["script"])


# ---- in the parent ------------------------------------------------------------------


def backend_env(backend: str) -> dict[str, str]:
    """The environment for `backend`; g4f's config dir is shared so that its
    first-run set-up does not count as start-up time or peak memory."""
    env = dict(os.environ, G4F_CONFIG_DIR=CONFIG_DIR, NO_PROXY="127.0.0.1")
    if backend == "aiohttp":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HIDE_CURL_CFFI), env.get("PYTHONPATH")]))
    return env


def per_chunk(server: OpenAIServer, backend: str, chunks: int, repeats: int) -> dict[str, list[float]]:
    """µs per chunk of each variant in each repeat, measured in a child on `backend`."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        cmd = [sys.executable, __file__, "--child", result.name, f"--chunks={chunks}", f"--repeats={repeats}"]
        cmd += ["--server", server.url("SCENARIO")]
        subprocess.run(cmd, stdout=subprocess.PIPE, check=True, env=backend_env(backend))
        runs: dict[str, list[float]] = json.loads(Path(result.name).read_text())
    return runs


def first_delta_ms(server: OpenAIServer, backend: str, repeats: int) -> float:
    """Median ms from the server sending a delta to its bytes on the script's stdout."""
    delays = []
    for _ in range(repeats):
        cmd = [sys.executable, str(SCRIPT), "--base-url", server.url("pause-300")]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, env=backend_env(backend)) as proc:
            assert proc.stdout is not None
            os.read(proc.stdout.fileno(), 1)
            delays.append((time.perf_counter() - server.first_sent) * 1000)
            proc.stdout.read()
    return statistics.median(delays)


def start_up_ms(commands: list[list[str]], env: dict[str, str], repeats: int) -> list[float]:
    """Median CPU ms of each command, run interleaved; CPU rather than wall time
    for the same reason as in run_one."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(repeats):
        for cmd, samples in zip(commands, times, strict=True):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(cmd, stdout=subprocess.DEVNULL, env=env, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            samples.append(cpu * 1000)
    return [statistics.median(samples) for samples in times]


def imports_beyond_g4f_ms(env: dict[str, str]) -> float:
    """Import time of the modules the script loads beyond g4f.client, from -X importtime:
    the part of start-up that is the script's own, without the noise of g4f's import."""

    def self_times(args: list[str]) -> dict[str, int]:
        log = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, env=env).stderr
        rows = [line.split("|") for line in log.decode().splitlines() if line.startswith("import time:")]
        return {row[2].strip(): int(row[0].split(":")[1]) for row in rows[1:]}

    g4f = self_times(["-c", "import g4f.client"])
    script = self_times([str(SCRIPT), "--help"])
    return sum(us for name, us in script.items() if name not in g4f) / 1000


# Peak RSS of a forked child counts the parent's image before exec, and this
# process holds g4f: a small launcher process runs the command instead.
LAUNCHER = "import os, sys; pid = os.spawnv(os.P_NOWAIT, sys.argv[1], sys.argv[1:]); "
LAUNCHER += "sys.stderr.write(str(os.wait4(pid, 0)[2].ru_maxrss))"


def peak_rss_mib(cmd: list[str], env: dict[str, str]) -> float:
    """Peak resident memory of one run of `cmd`, in MiB (POSIX)."""
    launched = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, env=env)
    return int(launched.stderr.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=50_000, help="chunks per stream (default 50000)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats (default 7)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.server, args.chunks, args.repeats, args.child)

    try:
        import curl_cffi  # noqa: F401

        backends = ["aiohttp", "curl_cffi"]
    except ImportError:
        backends = ["aiohttp"]
    print(f"messages_stream benchmark, {date.today()}, {os.cpu_count()} cores, {platform.machine()},")
    print(f"Python {platform.python_version()}, g4f {version('g4f')}")
    print(f"{args.chunks:,} one-character chunks, {args.repeats} interleaved repeats, medians\n")
    doc, script = loop_alone(max(args.chunks, 10_000) * 2, args.repeats)
    print(f"the loops alone, over prebuilt chunks (no network, no g4f): documentation's loop {doc:.2f},")
    print(f"this script {script:.2f} CPU µs/chunk: +{script - doc:.2f} µs a chunk, whatever the provider\n")
    server = OpenAIServer().start()
    for backend in backends:
        env = backend_env(backend)
        runs = per_chunk(server, backend, args.chunks, args.repeats)
        costs = {name: statistics.median(times) for name, times in runs.items()}
        print(f"backend: {backend}")
        print(f"  {'':<14}{'CPU µs/chunk':>13}{'x bare g4f':>12}")
        for name, cost in costs.items():
            print(f"  {name:<14}{cost:>13.2f}{cost / costs['bare g4f']:>12.3f}")
        # Each repeat runs the two back to back: the median of their ratios cancels
        # the drift that makes two separate medians differ by tens of percent here.
        pairs = zip(runs["this script"], runs["doc loop"], strict=True)
        ratio = statistics.median(script / doc for script, doc in pairs)
        print(f"  this script / doc loop, median of paired repeats: {ratio:.3f}  (target <= 1.05)")
        delay = first_delta_ms(server, backend, args.repeats)
        print(f"  first delta on stdout: {delay:.2f} ms after the server sent it  (target <= 5)")
        g4f_import, help_run, one_chunk = start_up_ms(
            [
                [sys.executable, "-c", "import g4f.client"],
                [sys.executable, str(SCRIPT), "--help"],
                [sys.executable, str(SCRIPT), "--base-url", server.url("hello")],
            ],
            env,
            max(3, 4 * args.repeats),
        )
        own = imports_beyond_g4f_ms(env)
        print(f"  start-up, the script's own imports beyond g4f.client: {own:.1f} ms")
        print(
            f"  start-up (CPU): import g4f.client {g4f_import:.0f} ms, --help {help_run:.0f} ms "
            f"({help_run - g4f_import:+.0f}), one-chunk run {one_chunk:.0f} ms "
            f"({one_chunk - g4f_import:+.0f})  (target: +50 at most)"
        )
        print("  peak memory beyond a one-line answer's, for a 2 MiB answer (target <= 3x):")
        for name, cmd in [
            ("this script", [sys.executable, str(SCRIPT), "--base-url"]),
            ("bare g4f", [sys.executable, "-c", BARE_G4F]),
        ]:
            small = peak_rss_mib([*cmd, server.url("hello")], env)
            extra = peak_rss_mib([*cmd, server.url("big-2048")], env) - small
            print(f"    {name:<12} {extra:5.1f} MiB = {extra / 2:.2f}x the answer (baseline {small:.0f} MiB)")
        print()


if __name__ == "__main__":
    main()
