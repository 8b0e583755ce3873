"""Many streams at once from one process to one provider, the core pasted as the README says, under
each of g4f's HTTP backends, against the local test server: docs/concurrency.md as written."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path

import g4f.requests.aiohttp

from tests.conftest import ROOT
from tests.openai_server import OpenAIServer
from tests.test_lifted import HELPERS, finish, lifted, marked, start

DOC = ROOT / "docs" / "concurrency.md"
STREAMS = """

async def main():
    async def one():
        try:
            return await collect(ask(sys.argv[3], timeout=float(sys.argv[5])))
        except StreamError as exc:
            return exc.args[-1].rpartition(": ")[2]

    texts = await asyncio.gather(*(one() for _ in range(int(sys.argv[4]))))
    report(outcomes={text: texts.count(text) for text in set(texts)})


asyncio.run(main())
"""


def recipes() -> list[str]:
    """The page's ```python blocks: the recipe."""
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)


def streams(
    tmp_path: Path, backend: str, server: OpenAIServer, recipe: bool, *args: str
) -> tuple[str, subprocess.Popen[str]]:
    """Start STREAMS (scenario, count, timeout) after the core, the page's recipe first if asked;
    its mark and it. Not in asyncio's debug mode, whose checks on each callback make it a load test."""
    (program,) = recipes() if recipe else [""]
    mark, source = f"scale {uuid.uuid4()}", lifted(HELPERS + "\n" + program + STREAMS)
    return mark, start(tmp_path, backend, source, f"http://127.0.0.1:{server.port}", mark, *args, dev=False)


def test_a_thousand_streams_at_once_all_answer_with_the_recipe(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    """Each answer holds its connection for 0.5 s: through a pool of 20 connections, 1,000 of them
    would need 25 s, and most would wait out the 10 s timeout for a connection."""
    mark, proc = streams(tmp_path, backend, server, True, "slow-500", "1000", "10")
    run = finish(proc, server, mark, timeout=60)
    assert run.facts.get("outcomes") == {"Hello there!": 1000}, run.tail
    assert len(run.requests) == 1000
    run.quiet()


def test_without_the_recipe_over_aiohttp_twenty_streams_reach_a_host_the_rest_wait_out_the_timeout(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    """The limit the page gives, without the recipe: 30 streams to a provider that never answers.
    Over aiohttp, 20 requests reach it; the other 10 wait for a connection until the timeout."""
    pool = backend == "aiohttp" and hasattr(g4f.requests.aiohttp, "get_shared_connector")
    mark, proc = streams(tmp_path, backend, server, False, "silent", "30", "2")
    deadline = time.monotonic() + 20
    while len(marked(server, mark)) < (20 if pool else 30) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a 21st would be here by now
    reached = len(marked(server, mark))
    run = finish(proc, server, mark)
    assert reached == (20 if pool else 30), run.tail
    assert run.facts.get("outcomes") == {"no delta within 2s": 30}, run.tail
    run.quiet()
