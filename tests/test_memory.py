"""docs/bot.md as written: a Cooldown beside the core, so that a bot does not wait out a dead
provider on every message. Run as a child process under each HTTP backend, against the local
test server, whose first URL never answers."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from tests.conftest import ROOT
from tests.openai_server import OpenAIServer
from tests.test_lifted import finish, lifted, marked, ruff, start

DOC = ROOT / "docs" / "bot.md"
APP = """
import asyncio
import json
import sys
import time

from g4f.client import AsyncClient


async def main() -> None:
    client, times, texts = AsyncClient(), [], []
    for n in range(int(sys.argv[2])):
        if n == 2 and len(sys.argv) > 3:
            await asyncio.sleep(float(sys.argv[3]))  # until the cooldown is over
        started = time.monotonic()
        texts.append(await reply(client, [{"role": "user", "content": f"{sys.argv[1]} {n}"}]))
        times.append(time.monotonic() - started)
    print(json.dumps({"times": times, "texts": texts}))


asyncio.run(main())
"""


def page_programs() -> list[str]:
    """The page's ```python blocks: the Cooldown, and a bot's reply() that uses it."""
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)


def bot(port: int, seconds: float = 60, app: str = APP) -> str:
    """The page's blocks, pasted after the core, asking our server, cooling for `seconds`."""
    blocks = page_programs()
    assert len(blocks) == 2 and "Cooldown(seconds=60)" in blocks[1] and "127.0.0.1:8765" in blocks[1]
    use = blocks[1].replace("Cooldown(seconds=60)", f"Cooldown(seconds={seconds})")
    return lifted(blocks[0] + "\n\n" + use.replace("127.0.0.1:8765", f"127.0.0.1:{port}") + app)


def asked(server: OpenAIServer, mark: str, messages: int) -> list[list[str]]:
    """For each message, the scenarios the server was asked, in order."""
    requests = marked(server, mark)
    return [
        [r.path.split("/")[1] for r in requests if r.body["messages"][-1]["content"] == f"{mark} {n}"]
        for n in range(messages)
    ]


def test_ten_messages_wait_out_a_dead_provider_once(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    mark = f"memory {uuid.uuid4()}"
    run = finish(start(tmp_path, backend, bot(server.port), mark, "10"), server, mark, 60)
    run.quiet()
    assert run.facts["texts"] == ["Hello there!"] * 10
    first, *rest = run.facts["times"]
    assert 1.0 <= first < 1.6 and max(rest) < 0.5, run.facts["times"]  # one timeout, then B alone
    assert asked(server, mark, 10) == [["silent", "hello"]] + [["hello"]] * 9


def test_after_the_cooldown_the_provider_is_asked_first_again(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    mark = f"memory {uuid.uuid4()}"
    run = finish(start(tmp_path, backend, bot(server.port, seconds=1.5), mark, "4", "1.6"), server, mark, 60)
    run.quiet()
    assert run.facts["texts"] == ["Hello there!"] * 4
    # It failed again, so it is back in cooldown for the fourth message.
    assert asked(server, mark, 4) == [["silent", "hello"], ["hello"], ["silent", "hello"], ["hello"]]


def test_when_every_provider_fails_the_bot_answers_and_goes_on(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    mark = f"memory {uuid.uuid4()}"
    source = bot(server.port).replace("/hello/v1", "/status-500/v1")
    run = finish(start(tmp_path, backend, source, mark, "2"), server, mark, 60)
    assert run.status == 0, run.err
    assert run.facts["texts"] == ["Sorry, no answer just now. Please try again."] * 2
    assert "no whole answer: http://127.0.0.1" in run.out and "status-500" in run.out


def test_a_provider_that_breaks_off_after_text_cools_down_too(
    tmp_path: Path, backend: str, server: OpenAIServer
) -> None:
    mark = f"memory {uuid.uuid4()}"
    source = bot(server.port).replace("/silent/v1", "/drop/v1")
    run = finish(start(tmp_path, backend, source, mark, "2"), server, mark, 60)
    assert run.status == 0, run.err
    assert run.facts["texts"] == ["Hello there [cut off]", "Hello there!"]
    assert asked(server, mark, 2) == [["drop"], ["hello"]]


def test_the_page_needs_nothing_the_core_does_not_import(tmp_path: Path) -> None:
    path = tmp_path / "bot.py"
    path.write_text(bot(8765, app=""), encoding="utf-8")
    assert ruff(path) == ""
