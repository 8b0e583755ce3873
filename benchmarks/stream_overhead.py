"""What messages_stream.py costs over g4f itself, how that grows with the answer, and how
fast a delta reaches stdout.

    python benchmarks/stream_overhead.py [--chunks 50000] [--repeats 7] [--sizes 5000,20000,80000]

Local OpenAI-compatible servers in this process stream answers as fast as they can; child
processes (benchmarks/consume.py) consume them and time their own CPU, their stdout a pipe
that this process drains. Whatever is compared runs side by side in one run, and ratios and
differences are medians over paired repeats: this machine's speed drifts by tens of percent
between runs. g4f runs without pydantic (benchmarks/no_pydantic hides it, as a plain
`pip install g4f` lacks it); the OpenAI SDK, which needs it, runs in a process of its own.

1. the script's own cost: its main() against the documentation's loop over prebuilt g4f
   chunks, without network or parsing, so that only the two loops differ
2. for each of g4f's HTTP backends (aiohttp, and curl_cffi when installed), N one-character
   deltas: CPU µs per chunk of the floor (aiohttp + json), bare g4f (its AsyncClient asked
   as the script asks, nothing printed), the documentation's loop, this script, and the
   script's loop flushing each delta or once per event-loop turn (stdout is buffered, as
   it is without PYTHONUNBUFFERED); the time from the server sending a delta to its bytes
   on stdout; start-up
3. the OpenAI SDK, if installed
4. scaling: CPU and peak memory against answer length (40-character deltas, sizes four
   times apart, each run in a fresh process as the script is run), on aiohttp

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from delta_server import DeltaServer  # noqa: E402 - benchmarks/ is this script's directory

from tests.openai_server import OpenAIServer  # noqa: E402

SCRIPT = ROOT / "messages_stream.py"
CONSUME = HERE / "consume.py"
HIDE_CURL_CFFI = ROOT / "tests" / "no_curl_cffi"
HIDE_PYDANTIC = HERE / "no_pydantic"
CONFIG_DIR = tempfile.mkdtemp(prefix="g4f-bench-")
DELTA_CHARS = 40  # the scaling section's delta length
BURST = 64  # deltas in one network write, for the latency of coalescing
LARGEST_REPEATS = 3  # repeats at the largest scaling size
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
TABLE_ROWS = {
    "floor": "floor: aiohttp + json",
    "bare g4f": "bare g4f",
    "doc loop": "documentation's loop",
    "this script": "this script",
    "print+flush loop": "script's loop, print(flush=True)",
    "coalesced loop": "script's loop, coalesced flush",
}


# ---- child processes -------------------------------------------------------------------


def env_for(backend: str, hide_pydantic: bool = True) -> dict[str, str]:
    """A child's environment on `backend`: curl_cffi hidden for aiohttp, pydantic hidden
    unless asked; g4f's config dir shared, so that its first-run set-up counts nowhere; and
    Python as a user's shell runs it: none of the PYTHON* settings some machines make (with
    PYTHONUNBUFFERED, every write would be a system call; PYTHONDEVMODE slows everything)."""
    hidden = [str(HIDE_CURL_CFFI)] if backend == "aiohttp" else []
    hidden += [str(HIDE_PYDANTIC)] if hide_pydantic else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(G4F_CONFIG_DIR=CONFIG_DIR, NO_PROXY="127.0.0.1", PYTHONPATH=os.pathsep.join(hidden))
    return env


def drain(proc: subprocess.Popen[bytes]) -> None:
    """Read `proc`'s stdout to its end as a terminal would, keeping nothing."""
    assert proc.stdout is not None
    while os.read(proc.stdout.fileno(), 1 << 16):
        pass


def consume(env: dict[str, str], **spec: Any) -> Any:
    """Run benchmarks/consume.py with `spec` and return the figures it writes."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        cmd = [sys.executable, str(CONSUME), json.dumps({**spec, "result": result.name})]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env) as proc:
            drain(proc)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, f"consume.py {spec['kind']}")
        return json.loads(Path(result.name).read_text())


def g4f_chunk_class(env: dict[str, str]) -> str:
    """What g4f builds its chunks on in `env`: pydantic's BaseModel or its own fallback."""
    code = "import g4f.client.stubs as s; print(s.BaseModel.__mro__[1].__module__)"
    base = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return "pydantic models" if base.stdout.startswith("pydantic") else "plain objects, no pydantic"


# ---- statistics ------------------------------------------------------------------------


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of per-repeat ratios: it cancels the drift that makes two separate
    medians differ by tens of percent on a shared machine."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def median_difference(minuends: Sequence[float], subtrahends: Sequence[float]) -> float:
    """The median of per-repeat differences (not the difference of the medians)."""
    return statistics.median(a - b for a, b in zip(minuends, subtrahends, strict=True))


# ---- 1. the loops alone ----------------------------------------------------------------


class Loops(NamedTuple):
    """The loops alone at one size: CPU µs per chunk, and paired medians."""

    doc: float  # the documentation's loop
    script: float  # the script's main()
    ratio: float  # script / doc
    extra: float  # script - doc


def loops_alone(sizes: list[int], chars: int, repeats: int) -> dict[int, Loops]:
    """For each size: CPU µs per chunk of the documentation's loop and of the script's
    main() over prebuilt chunks, in a child without pydantic."""
    runs = consume(env_for("aiohttp"), kind="loops_alone", sizes=sizes, chars=chars, repeats=repeats)
    figures = {}
    for size in sizes:
        doc, script = runs[str(size)]["doc"], runs[str(size)]["script"]
        median = statistics.median
        figures[size] = Loops(
            median(doc), median(script), median_ratio(script, doc), median_difference(script, doc)
        )
    return figures


def print_headline(chunks: int, repeats: int) -> None:
    """The figure that resolves the script's own cost, first."""
    loops = loops_alone([chunks], 1, repeats)[chunks]
    print("The script's own cost: its main() against the documentation's loop over prebuilt g4f chunks")
    print(f"(no network, no parsing; {chunks:,} one-character chunks, {repeats} paired repeats):")
    print(f"  documentation's loop {loops.doc:.2f}, this script {loops.script:.2f} CPU µs/chunk:", end=" ")
    print(f"{loops.ratio:.3f}x, {loops.extra:+.2f} µs a chunk (paired medians), whatever the provider\n")


# ---- 2. per backend --------------------------------------------------------------------


def per_chunk(
    env: dict[str, str], server: DeltaServer, variants: list[str], chunks: int, repeats: int
) -> Any:
    """CPU µs per chunk of each variant in each repeat, interleaved in one child."""
    return consume(
        env,
        kind="per_chunk",
        variants=variants,
        url=server.url(chunks),
        warm_up_url=server.url(10),
        chunks=chunks,
        repeats=repeats,
    )


def delta_latency_ms(cmd: list[str], env: dict[str, str], server: Any) -> float:
    """Ms from `server` sending a delta to its first byte on `cmd`'s stdout."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None
        os.read(proc.stdout.fileno(), 1)
        delay = (time.perf_counter() - server.first_sent) * 1000
        drain(proc)
    return delay


def loop_cmd(url: str, coalesce: bool) -> list[str]:
    """The script's loop in a child, printing one answer with the given flush strategy."""
    return [sys.executable, str(CONSUME), json.dumps({"kind": "latency", "url": url, "coalesce": coalesce})]


def latencies(
    env: dict[str, str], servers: tuple[OpenAIServer, DeltaServer], repeats: int
) -> dict[str, float]:
    """Median delta-to-stdout times, interleaved: the first delta of the test server's
    pause-300 for the script and for each flush strategy, and each strategy's first delta
    of a burst of BURST deltas in one network write."""
    tests, deltas = servers
    first, burst = tests.url("pause-300"), deltas.burst_url(BURST)
    commands = {
        "script": ([sys.executable, str(SCRIPT), "--base-url", first], tests),
        "print": (loop_cmd(first, False), tests),
        "coalesced": (loop_cmd(first, True), tests),
        "print burst": (loop_cmd(burst, False), deltas),
        "coalesced burst": (loop_cmd(burst, True), deltas),
    }
    delays: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, (cmd, server) in commands.items():
            delays[name].append(delta_latency_ms(cmd, env, server))
    return {name: statistics.median(samples) for name, samples in delays.items()}


def cpu_ms(cmd: list[str], env: dict[str, str]) -> float:
    """CPU ms of one run of `cmd`: CPU rather than wall time, for the same reason as in
    the children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000


def start_up(env: dict[str, str], url: str, repeats: int) -> dict[str, float]:
    """CPU ms of `import g4f.client`, and medians of paired differences: each repeat runs
    it and the script's --help and a one-chunk run, and bare g4f's, back to back."""
    commands = {
        "g4f": [sys.executable, "-c", "import g4f.client"],
        "help": [sys.executable, str(SCRIPT), "--help"],
        "script": [sys.executable, str(SCRIPT), "--base-url", url],
        "bare": [sys.executable, "-c", BARE_G4F, url],
    }
    ms: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            ms[name].append(cpu_ms(cmd, env))
    return {
        "g4f": statistics.median(ms["g4f"]),
        "help - g4f": median_difference(ms["help"], ms["g4f"]),
        "script - g4f": median_difference(ms["script"], ms["g4f"]),
        "script - bare": median_difference(ms["script"], ms["bare"]),
    }


def own_imports_ms(env: dict[str, str], url: str, repeats: int = 3) -> float:
    """Import time of the modules a one-chunk run of the script loads beyond those of
    bare g4f's, from -X importtime, the median of `repeats`: the script's own part of
    start-up, without the noise of g4f's import."""

    def self_times(args: list[str]) -> dict[str, int]:
        log = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, env=env).stderr
        rows = [line.split("|") for line in log.decode().splitlines() if line.startswith("import time:")]
        return {row[2].strip(): int(row[0].split(":")[1]) for row in rows[1:]}

    own = []
    for _ in range(repeats):
        bare = self_times(["-c", BARE_G4F, url])
        script = self_times([str(SCRIPT), "--base-url", url])
        own.append(sum(us for name, us in script.items() if name not in bare) / 1000)
    return statistics.median(own)


def print_table(runs: dict[str, list[float]], backend: str, chunks: int, repeats: int) -> float:
    """The CPU table of one backend; returns the share of this script's CPU per chunk
    that the coalesced flush saves, the median of paired repeats."""
    costs = {name: statistics.median(times) for name, times in runs.items()}
    print(f"backend {backend}: {chunks:,} one-character deltas, {repeats} interleaved repeats: medians,")
    print("  and of the ratios to bare g4f in the same repeat")
    print(f"  {'':<36}{'CPU µs/chunk':>13}{'x bare g4f':>12}")
    for name, label in TABLE_ROWS.items():
        print(f"  {label:<36}{costs[name]:>13.2f}{median_ratio(runs[name], runs['bare g4f']):>12.3f}")
    ratio = median_ratio(runs["this script"], runs["doc loop"])
    print(f"  this script / documentation's loop, median of paired ratios: {ratio:.3f}")
    flushed, coalesced, script = runs["print+flush loop"], runs["coalesced loop"], runs["this script"]
    saved = median_difference(flushed, coalesced)
    share = statistics.median((f - c) / s for f, c, s in zip(flushed, coalesced, script, strict=True))
    print(f"  coalesced flush saves {saved:.2f} µs a chunk, {share:.1%} of this script's (paired medians)")
    return share


def print_latencies(lat: dict[str, float]) -> None:
    """The delta-to-stdout times of latencies()."""
    print("  a delta on stdout after the server sent it, ms (medians):")
    print(
        f"    first delta: this script {lat['script']:.2f}; the script's loop with print(flush=True)", end=" "
    )
    print(f"{lat['print']:.2f}, with a coalesced flush {lat['coalesced']:.2f}")
    print(
        f"    first of a burst of {BURST} in one read: print(flush=True) {lat['print burst']:.2f},", end=" "
    )
    print(f"coalesced {lat['coalesced burst']:.2f}")


def print_start_up(env: dict[str, str], url: str, repeats: int) -> None:
    """Start-up: the paired differences of start_up(), and the script's own imports."""
    up = start_up(env, url, repeats)
    print(f"  start-up, CPU ms: import g4f.client {up['g4f']:.0f}; medians of paired differences:", end=" ")
    print(f"--help {up['help - g4f']:+.0f}, one-chunk run {up['script - g4f']:+.0f} over it,", end=" ")
    print(f"{up['script - bare']:+.0f} over bare g4f's one-chunk run")
    print(f"  start-up, the script's own imports beyond bare g4f's: {own_imports_ms(env, url):.1f} ms\n")


def print_backend(
    backend: str, servers: tuple[OpenAIServer, DeltaServer], args: argparse.Namespace
) -> dict[str, float]:
    """One backend's table, latencies and start-up; returns the coalesced flush's figures."""
    env, (tests, deltas) = env_for(backend), servers
    runs = per_chunk(env, deltas, list(TABLE_ROWS), args.chunks, args.repeats)
    share = print_table(runs, backend, args.chunks, args.repeats)
    lat = latencies(env, servers, args.repeats)
    print_latencies(lat)
    print_start_up(env, tests.url("hello"), max(2, 2 * args.repeats))
    return {
        "share": share,
        "latency": lat["coalesced"],
        "burst": lat["coalesced burst"],
        "burst print": lat["print burst"],
    }


def print_decision(flush: dict[str, dict[str, float]]) -> None:
    """The rule for adopting the coalesced flush in the script: both conditions are needed, and
    not enough. The script keeps print(flush=True): see docs/performance.md."""
    cuts = all(figures["share"] >= 0.10 for figures in flush.values())
    prompt = all(figures["latency"] <= 1.0 for figures in flush.values())
    shares = ", ".join(f"{backend} {figures['share']:.1%}" for backend, figures in flush.items())
    delays = ", ".join(f"{backend} {figures['latency']:.2f} ms" for backend, figures in flush.items())
    print("Coalesced flush, the rule for adopting it in the script (both must hold, and may not suffice):")
    print(f"  cuts this script's CPU per chunk by at least 10%: {shares} -> {'yes' if cuts else 'no'}")
    print(f"  a delta still reaches stdout within 1 ms: {delays} -> {'yes' if prompt else 'no'}")
    verdict = "yes" if cuts and prompt else "no"
    print(f"  both hold: {verdict} (the script keeps print(flush=True): docs/performance.md says why)")
    bursts = ", ".join(
        f"{backend} {f['burst']:.2f} ms (not {f['burst print']:.2f})" for backend, f in flush.items()
    )
    print(
        f"  (outside the rule: the first delta of a burst of {BURST} waits for the whole burst: {bursts})\n"
    )


# ---- 3. the OpenAI SDK -----------------------------------------------------------------


def print_openai_sdk(deltas: DeltaServer, chunks: int, repeats: int) -> None:
    """The SDK in a process of its own, where pydantic is visible, against the floor there."""
    if importlib.util.find_spec("openai") is None:
        print("OpenAI SDK: not installed, skipped (.venv-test/bin/pip install openai)\n")
        return
    runs = per_chunk(
        env_for("aiohttp", hide_pydantic=False), deltas, ["floor", "OpenAI SDK"], chunks, repeats
    )
    sdk = statistics.median(runs["OpenAI SDK"])
    ratio = median_ratio(runs["OpenAI SDK"], runs["floor"])
    print(
        f"OpenAI SDK (AsyncOpenAI), in a process of its own with pydantic: {sdk:.2f} CPU µs/chunk,", end=" "
    )
    print(f"{ratio:.2f}x the floor in that process (median of paired ratios)\n")


# ---- 4. scaling ------------------------------------------------------------------------


SCALED = ["floor", "bare g4f", "this script"]


def fresh_runs(
    env: dict[str, str], deltas: DeltaServer, variants: list[str], size: tuple[int, int], repeats: int
) -> dict[str, list[dict[str, float]]]:
    """Each variant on an answer of `size` (deltas, characters each), `repeats` times
    interleaved, each run in a fresh process after a small warm-up."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for repeat in range(repeats):
        for name in variants[repeat % len(variants) :] + variants[: repeat % len(variants)]:
            spec = {
                "variant": name,
                "url": deltas.url(*size),
                "warm_up_url": deltas.url(3, 4),
                "chunks": size[0],
            }
            runs[name].append(consume(env, kind="one_run", **spec))
    return runs


@dataclass
class Scaling:
    """The scaling section's figures: medians by size, then variant, then figure (as
    consume.one_run names them); the peak memory of a one-line answer by variant; the
    loops alone by size."""

    medians: dict[int, dict[str, dict[str, float]]]
    baseline_kib: dict[str, float]
    loops: dict[int, Loops]

    def cpu(self, size: int, name: str) -> float:
        """CPU µs per chunk."""
        return self.medians[size][name]["us_per_chunk"]

    def peak_mib(self, size: int, name: str) -> float:
        """Peak resident memory above a one-line answer's, in MiB."""
        return (self.medians[size][name]["peak_kib"] - self.baseline_kib[name]) / 1024


def scaling(deltas: DeltaServer, sizes: list[int], repeats: int) -> Scaling:
    """At each size: CPU and peak memory of each of SCALED, and the loops alone. The
    largest size has at most LARGEST_REPEATS: one run of bare g4f there takes ~40 s."""
    env = env_for("aiohttp")
    baseline = {
        name: runs[0]["peak_kib"] for name, runs in fresh_runs(env, deltas, SCALED, (3, 4), 1).items()
    }
    medians = {}
    for size in sizes:
        times = min(repeats, LARGEST_REPEATS) if size == max(sizes) else repeats
        runs = fresh_runs(env, deltas, SCALED, (size, DELTA_CHARS), times)
        medians[size] = {
            name: {key: statistics.median(run[key] for run in runs[name]) for key in runs[name][0]}
            for name in SCALED
        }
    return Scaling(medians, baseline, loops_alone(sizes, DELTA_CHARS, repeats))


def print_scaling(deltas: DeltaServer, sizes: list[int], repeats: int) -> None:
    """The scaling tables, and where bare g4f's per-chunk copy starts to cost."""
    figures = scaling(deltas, sizes, repeats)
    print(f"Scaling with answer length: {DELTA_CHARS}-character deltas, backend aiohttp, each run a fresh")
    largest = min(repeats, LARGEST_REPEATS)
    print(f"process, medians of {repeats} ({largest} at the largest size); peak memory is resident memory")
    print("above a one-line answer's")
    head = f"  {'chunks':>8}{'answer':>10}  {'CPU µs/chunk: floor':>20}{'bare g4f':>10}{'script':>8}"
    print(f"{head}  {'total CPU s: floor':>19}{'bare g4f':>10}{'script':>8}")
    for size in sizes:
        cpu = [figures.cpu(size, name) for name in SCALED]
        answer = f"{size * DELTA_CHARS / 1024:,.0f} KiB"
        row = f"  {size:>8,}{answer:>10}  {cpu[0]:>20.1f}{cpu[1]:>10.1f}{cpu[2]:>8.1f}"
        print(f"{row}  {cpu[0] * size / 1e6:>19.2f}{cpu[1] * size / 1e6:>10.2f}{cpu[2] * size / 1e6:>8.2f}")
    print(f"  {'chunks':>8}  {'loops alone, µs/chunk: doc loop':>32}{'script':>8}{'ratio':>7}", end="")
    print(f"  {'peak MiB: bare g4f':>19}{'script':>8}")
    for size in sizes:
        loops = figures.loops[size]
        print(f"  {size:>8,}  {loops.doc:>32.2f}{loops.script:>8.2f}{loops.ratio:>7.3f}", end="")
        print(f"  {figures.peak_mib(size, 'bare g4f'):>19.1f}{figures.peak_mib(size, 'this script'):>8.1f}")
    print_copy_cost(figures, sizes)


def print_copy_cost(figures: Scaling, sizes: list[int]) -> None:
    """Where bare g4f's CPU per chunk goes at the largest size, and a line through it
    against the length of the answer so far (on average half the final answer)."""
    largest = figures.medians[sizes[-1]]
    faults = [f"{name} {m['faults_per_chunk']:.1f}, {m['kernel_share']:.0%}" for name, m in largest.items()]
    print(f"  at {sizes[-1]:,} chunks, page faults a chunk and CPU share in the kernel: {', '.join(faults)}")
    if len(sizes) > 1:
        so_far = [size * DELTA_CHARS / 2 / 1024 for size in sizes]
        slope, intercept = statistics.linear_regression(
            so_far, [figures.cpu(size, "bare g4f") for size in sizes]
        )
        growth = f"{slope * 100:.1f} µs per 100 KiB of answer so far"
        print(f"  bare g4f's CPU per chunk, a line through the sizes: {intercept:.0f} µs + {growth}")
    print()


# ---- main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=50_000, help="deltas per stream in section 2 (50000)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=7,
        help="interleaved repeats (7; at most 3 at the largest scaling size)",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        help="answer sizes in deltas for scaling (default: chunks/10, x4, x16: 5000,20000,80000)",
    )
    args = parser.parse_args()
    args.sizes = args.sizes or [args.chunks // 10 * factor for factor in (1, 4, 16)]
    return args


def main() -> None:
    args = parse_args()
    backends = ["aiohttp"] + (["curl_cffi"] if importlib.util.find_spec("curl_cffi") else [])
    print(
        f"messages_stream benchmark, {date.today()}, {os.cpu_count()} cores, {platform.machine()},", end=" "
    )
    print(f"Python {platform.python_version()}, g4f {version('g4f')}")
    print(f"g4f's chunks in the g4f processes: {g4f_chunk_class(env_for('aiohttp'))}\n")
    print_headline(max(args.chunks, 10_000) * 2, args.repeats)
    servers = OpenAIServer().start(), DeltaServer().start()
    flush = {backend: print_backend(backend, servers, args) for backend in backends}
    print_decision(flush)
    print_openai_sdk(servers[1], args.chunks, args.repeats)
    print_scaling(servers[1], args.sizes, args.repeats)


if __name__ == "__main__":
    main()
