"""Many streams at once to one provider through the core: how many answer, and how many fail as
a silent provider though their request never reached it (docs/concurrency.md). Each run is a child
process asking the test server (tests/openai_server.py, slow-MS), under each HTTP backend, with
g4f's shared pool of connections, then with the recipe. "unsent": failures whose request the
server never saw, a wait for a free connection reported as silence. It asserts nothing.

    python benchmarks/connections.py [--streams 1000] [--answer-ms 1000] [--timeout 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.openai_server import OpenAIServer  # noqa: E402

RUNS = [(b, s) for b in ("aiohttp", "curl_cffi") for s in ("g4f's default", "the recipe")]
HEAD = "backend    setting          answered failed unsent  time  failures"


async def child(url: str, mark: str, setting: str, streams: int, timeout: float) -> None:
    """`streams` streams at once; prints each one's outcome and the time they all took."""
    import g4f.requests.aiohttp
    from g4f.client import AsyncClient

    from messages_stream import StreamError, resilient_stream

    if setting == "the recipe":  # the recipe in docs/concurrency.md
        g4f.requests.aiohttp.get_shared_connector = lambda: None

    async def one(n: int) -> str:
        ask = {"model": "gpt-4", "messages": [{"role": "user", "content": f"{mark} {n}"}]}
        try:
            async for _ in resilient_stream(AsyncClient(), providers=[url], timeout=timeout, **ask):
                pass
            return "answered"
        except StreamError as exc:
            return exc.args[-1].rpartition(": ")[2]

    started, outcomes = time.perf_counter(), await asyncio.gather(*(one(n) for n in range(streams)))
    print(json.dumps({"outcomes": outcomes, "took": time.perf_counter() - started}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--answer-ms", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, mark, setting = json.loads(args.child)
        return asyncio.run(child(url, mark, setting, args.streams, args.timeout))
    server, hide, n = OpenAIServer().start(), str(ROOT / "tests" / "no_curl_cffi"), args.streams
    print(f"{n} streams, each answer after {args.answer_ms} ms, timeout={args.timeout:g}\n\n{HEAD}")
    cmd = [sys.executable, __file__, f"--streams={n}", f"--timeout={args.timeout}"]
    for backend, setting in RUNS:
        env = dict(os.environ, G4F_CONFIG_DIR=tempfile.mkdtemp(), PYTHONPATH=hide * (backend == "aiohttp"))
        spec = json.dumps([server.url(f"slow-{args.answer_ms}"), mark := str(uuid.uuid4()), setting])
        result = json.loads(subprocess.run([*cmd, "--child", spec], env=env, stdout=subprocess.PIPE).stdout)
        sent = {r.body["messages"][-1]["content"] for r in server.requests if mark in json.dumps(r.body)}
        failed = [i for i, outcome in enumerate(result["outcomes"]) if outcome != "answered"]
        unsent, why = sum(f"{mark} {i}" not in sent for i in failed), set(result["outcomes"]) - {"answered"}
        row = f"{backend:<10} {setting:<16} {n - len(failed):>8} {len(failed):>6} {unsent:>6}"
        print(f"{row} {result['took']:>5.1f}s  {'; '.join(sorted(why))}", flush=True)


if __name__ == "__main__":
    main()
