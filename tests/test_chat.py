"""-i on a pseudo-terminal, -a attachments and --list-providers: the script as a subprocess,
with a user's environment, under both of g4f's HTTP backends."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SCRIPT, script_env
from tests.openai_server import OpenAIServer
from tests.test_options import HttpProxy, http_proxy, wait_for  # noqa: F401 - http_proxy: a fixture

CTRL_C, CTRL_D = b"\x03", b"\x04"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # g4f tells an image by its first bytes
STOPPED = "stopped: this turn is left out of the conversation\n"


class Terminal:
    """The script on a pseudo-terminal of its own, as a user's shell starts it: its controlling
    terminal, stdout and stderr mixed; typing Ctrl-C there sends SIGINT, as a terminal does."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.fd, tty = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args],
            stdin=tty,
            stdout=tty,
            stderr=tty,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(tty)
        self.shown = b""

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def ctrl_c_at_the_prompt(self) -> None:
        """Ctrl-C once the script waits for a key. CPython's readline misses a SIGINT that lands
        after it drew what a key changed and before it waits for the next: a window no person's
        Ctrl-C hits, but a test's, typed the moment the echo shows, does. (Linux: /proc.)"""
        self.waiting()
        self.type(CTRL_C)

    def waiting(self) -> None:
        """Returns once the script is blocked, waiting for a key: asleep at two looks 50 ms apart,
        as on a busy machine it also sleeps, briefly, while it draws what was typed."""
        deadline, asleep = time.monotonic() + 10, 0
        while asleep < 2:
            state = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()[0]
            asleep = asleep + 1 if state == "S" else 0
            assert time.monotonic() < deadline, "the script never waited for a key"
            time.sleep(0.05 if asleep else 0.001)

    def wait_for(self, text: str, seconds: float = 20) -> str:
        """What the terminal showed, up to and with `text` ("\\n" for its line breaks, as the
        terminal writes "\\r\\n"); fails the test if it does not show it within `seconds`."""
        want, deadline = text.replace("\n", "\r\n").encode(), time.monotonic() + seconds
        while want not in self.shown:
            if not select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                pytest.fail(f"the terminal showed {self.shown!r}, not {want!r}, within {seconds}s")
            try:
                self.shown += os.read(self.fd, 65536)
            except OSError:  # the script ended: nothing more to read
                pytest.fail(f"the terminal showed {self.shown!r}, not {want!r}")
        end = self.shown.index(want) + len(want)
        seen, self.shown = self.shown[:end], self.shown[end:]
        return seen.decode(errors="replace").replace("\r\n", "\n")  # a byte typed that is not UTF-8

    def end(self) -> tuple[int, str]:
        """The exit status, and what the terminal showed after the last wait_for()."""
        status = self.proc.wait(timeout=20)
        with pytest.raises(OSError):  # read to the end: EIO once the script has gone
            while chunk := os.read(self.fd, 65536):
                self.shown += chunk
        return status, self.shown.decode().replace("\r\n", "\n")


@pytest.fixture
def terminal(tmp_path: Path, backend: str) -> Iterator[Callable[..., Terminal]]:
    """Start `messages_stream.py ARGS` on a terminal; each is killed at the end of the test."""
    started: list[Terminal] = []

    def start(*args: str, **env: str) -> Terminal:
        started.append(Terminal(list(args), script_env(tmp_path, backend, **env), tmp_path))
        return started[-1]

    yield start
    for term in started:
        term.proc.kill()
        term.proc.wait()
        os.close(term.fd)


# ---- -i, --interactive --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "xterm-256color"], ids=["no TERM", "TERM=xterm-256color"])
def test_the_second_turn_is_asked_with_the_first(terminal, server: OpenAIServer, name: str) -> None:
    term = terminal("-i", "--base-url", server.url("echo"), **({"TERM": name} if name else {}))
    assert term.wait_for("> ") == "> "
    term.type(b"Hi, I am Ada.\r")
    first = [{"role": "user", "content": "Hi, I am Ada."}]
    assert term.wait_for("\n> ") == f"Hi, I am Ada.\n{json.dumps(first)}\n> "
    term.type(b"Who am I?\r")
    second = [
        *first,
        {"role": "assistant", "content": json.dumps(first)},
        {"role": "user", "content": "Who am I?"},
    ]
    assert term.wait_for("\n> ") == f"Who am I?\n{json.dumps(second)}\n> "
    term.type(CTRL_D)
    assert term.end() == (0, "\n")


def test_ctrl_c_stops_the_answer_alone_and_the_next_turn_answers(terminal, server, tmp_path) -> None:
    """Ctrl-C mid-answer: the text stays, the provider's connection is closed, the prompt comes
    back; the stopped turn is neither sent again nor saved, the next whole one is."""
    term = terminal("-i", "-c", "chat.json", "--base-url", server.url("stall-if-asked"))
    term.wait_for("> ")
    mark = f"stall {uuid.uuid4()}"
    term.type(mark.encode() + b"\r")
    assert term.wait_for("Hello there") == f"{mark}\nHello there"
    (asked,) = [r for r in server.requests if mark in json.dumps(r.body)]
    term.type(CTRL_C)
    assert asked.wait_closed(5) is not None, "the provider's connection is still open"
    assert term.wait_for("\n> ") == f"^C\n{STOPPED}> "
    term.type(b"Hi\r")
    assert term.wait_for("\n> ") == "Hi\nHello there!\n> "
    assert server.requests[-1].body["messages"] == [{"role": "user", "content": "Hi"}]
    term.type(CTRL_D)
    assert term.end() == (0, "\n")
    stored = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert stored == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]


def test_each_whole_turn_is_saved_as_it_ends(terminal, server, tmp_path) -> None:
    term = terminal("-i", "-c", "chat.json", "-s", "Be brief.", "--base-url", server.url("hello"))
    term.wait_for("> ")
    term.type(b"Hi\r")
    term.wait_for("\n> ")
    stored = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    system, hello = (
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hello there!"},
    )
    assert stored == [system, {"role": "user", "content": "Hi"}, hello]
    term.type(b"Again\r")
    term.wait_for("\n> ")
    stored = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert stored == [
        system,
        {"role": "user", "content": "Hi"},
        hello,
        {"role": "user", "content": "Again"},
        hello,
    ]
    assert server.requests[-1].body["messages"][0] == system  # -s once, first, in every turn


def test_the_options_apply_to_every_turn(terminal, server: OpenAIServer) -> None:
    args = ("-m", "model-x", "-s", "Be brief.", "--temperature", "0.5", "--max-tokens", "9", "--timeout", "1")
    term = terminal("-i", *args, "--base-url", server.url("stall-if-asked"))
    mark = f"stall {uuid.uuid4()}"
    for n in (1, 2):
        term.wait_for("> ")
        term.type(f"{mark} {n}".encode() + b"\r")
        assert "TimeoutError: no delta within 1s\n" in term.wait_for("within 1s\n")
    bodies = [r.body for r in server.requests if mark in json.dumps(r.body)]
    assert len(bodies) == 2
    for body in bodies:
        assert (body["model"], body["temperature"], body["max_tokens"]) == ("model-x", 0.5, 9)
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_the_proxy_carries_every_turn(terminal, server, http_proxy: HttpProxy) -> None:  # noqa: F811
    hits = http_proxy.hits(server.port)
    term = terminal("-i", "--proxy", http_proxy.url(), "--base-url", server.url("hello"))
    for line in (b"Hi\r", b"Again\r"):
        term.wait_for("> ")
        term.type(line)
        term.wait_for("Hello there!\n")
    assert wait_for(lambda: http_proxy.hits(server.port) == hits + 2, 5), "a turn went around the proxy"


def test_ctrl_d_at_the_first_prompt_ends_the_session(terminal, server: OpenAIServer) -> None:
    term = terminal("-i", "--base-url", server.url("hello"))
    term.wait_for("> ")
    term.type(CTRL_D)
    assert term.end() == (0, "\n")


def test_ctrl_c_at_an_empty_prompt_ends_the_session(terminal, server: OpenAIServer) -> None:
    term = terminal("-i", "--base-url", server.url("hello"))
    term.wait_for("> ")
    term.ctrl_c_at_the_prompt()
    status, shown = term.end()
    assert (status, shown.replace("^C", "")) == (130, "\ninterrupted\n")  # readline may echo ^C


def test_ctrl_c_after_typing_drops_the_line(terminal, server: OpenAIServer) -> None:
    """With readline (here, as on Linux and macOS): as in a shell, the line goes, the session stays."""
    term = terminal("-i", "--base-url", server.url("hello"))
    term.wait_for("> ")
    term.type(b"never mind")
    term.wait_for("never mind")
    term.ctrl_c_at_the_prompt()
    assert term.wait_for("\n> ").replace("^C", "") == "\n> "  # readline may echo ^C
    term.type(CTRL_D)
    assert term.end() == (0, "\n")


def test_a_failed_turn_leaves_the_session_open(terminal, server: OpenAIServer) -> None:
    term = terminal("-i", "--base-url", server.url("status-500"))
    term.wait_for("> ")
    term.type(b"Hi\r")
    shown = term.wait_for("\n> ")
    assert "error: " in shown and "500" in shown and "Traceback" not in shown
    assert not shown.endswith("\n\n> "), shown  # the prompt right under the error line
    term.type(CTRL_D)
    assert term.end() == (0, "\n")


def test_sigterm_at_the_prompt_ends_the_session_as_terminated(terminal, server: OpenAIServer) -> None:
    """docker stop, systemd, timeout: SIGTERM once, then SIGKILL; the prompt must not hold it."""
    term = terminal("-i", "--base-url", server.url("hello"))
    term.wait_for("> ")
    term.waiting()
    term.proc.send_signal(signal.SIGTERM)
    status, shown = term.end()
    assert (status, shown) == (143, "\nterminated\n")


def test_a_line_that_is_not_utf8_is_refused_and_the_session_stays(terminal, server: OpenAIServer) -> None:
    mark = f"chat {uuid.uuid4()}"
    term = terminal("-i", "--base-url", server.url("hello"))
    term.wait_for("> ")
    term.type(mark.encode() + b" \xff\r")
    shown = term.wait_for("\n> ")
    assert "error: the line is not UTF-8: not sent\n" in shown and "Traceback" not in shown
    assert not [r for r in server.requests if mark in json.dumps(r.body)]
    term.type(CTRL_D)
    assert term.end() == (0, "\n")


def test_interactive_takes_no_prompt_words(run_script, server: OpenAIServer) -> None:
    result = run_script("-i", "--base-url", server.url("hello"), "Hi")
    assert (result.status, result.out) == (2, "")
    assert (
        result.err
        == "messages_stream.py: error: -i takes no prompt: type each one at the > prompt (see --help)\n"
    )


# ---- -a, --attach --------------------------------------------------------------------------


def sent_with(server: OpenAIServer, mark: str) -> list[dict]:
    """The messages of each request whose messages carry `mark`."""
    return [r.body["messages"] for r in server.requests if mark in json.dumps((r.body or {}).get("messages"))]


def test_an_image_reaches_the_server_as_a_data_uri(run_script, server, tmp_path) -> None:
    (tmp_path / "shot.png").write_bytes(PNG)
    mark = f"What is this? {uuid.uuid4()}"
    result = run_script("-a", "shot.png", "--base-url", server.url("hello"), mark)
    assert (result.status, result.err) == (0, "")
    ((*_, last),) = sent_with(server, mark)
    uri = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"
    assert last["content"] == [
        {"type": "image_url", "image_url": {"url": uri}},
        {"type": "text", "text": mark},
    ]


def test_with_i_an_image_goes_with_the_first_turn_alone(terminal, server, tmp_path) -> None:
    (tmp_path / "shot.png").write_bytes(PNG)
    term = terminal("-i", "-a", "shot.png", "--base-url", server.url("hello"))
    mark = f"first {uuid.uuid4()}"
    for line in (mark, f"second {mark}"):
        term.wait_for("> ")
        term.type(line.encode() + b"\r")
        term.wait_for("Hello there!\n")
    first, second = (messages[-1]["content"] for messages in sent_with(server, mark))
    assert [part["type"] for part in first] == ["image_url", "text"]
    assert second == f"second {mark}"


def test_with_i_an_image_goes_again_after_a_stopped_turn(terminal, server, tmp_path) -> None:
    """A turn stopped by Ctrl-C is left out, its question too: the image goes with the next."""
    (tmp_path / "shot.png").write_bytes(PNG)
    term = terminal("-i", "-a", "shot.png", "--base-url", server.url("stall-if-asked"))
    mark = f"stall {uuid.uuid4()}"
    term.wait_for("> ")
    term.type(mark.encode() + b"\r")
    term.wait_for("Hello there")
    term.type(CTRL_C)
    term.wait_for("\n> ")
    term.type(f"again {mark.replace('stall', 'go')}".encode() + b"\r")
    term.wait_for("Hello there!\n")
    stopped, answered = (
        messages[-1]["content"] for messages in sent_with(server, mark.replace("stall ", ""))
    )
    assert [part["type"] for part in stopped] == [part["type"] for part in answered] == ["image_url", "text"]


@pytest.mark.parametrize("name", ["missing.png", "folder"])
def test_an_attachment_that_cannot_be_read_is_bad_usage_and_nothing_is_sent(
    run_script, server, tmp_path, name: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "shot.png").write_bytes(PNG)
    mark = f"never sent {uuid.uuid4()}"
    result = run_script("-a", "shot.png", "-a", name, "--base-url", server.url("hello"), mark)
    assert (result.status, result.out) == (2, "")
    assert result.err.startswith(f"messages_stream.py: error: argument -a/--attach: cannot read {name}: ")
    assert result.err.count("\n") == 1
    assert sent_with(server, mark) == []


@pytest.mark.parametrize("name", ["notes.txt", "fake.png"])  # .png: text, for all its name
def test_a_file_g4f_would_drop_is_bad_usage(run_script, server, tmp_path, name: str) -> None:
    (tmp_path / name).write_text("not an image", encoding="utf-8")
    mark = f"never sent {uuid.uuid4()}"
    result = run_script("-a", name, "--base-url", server.url("hello"), mark)
    assert (result.status, result.out) == (2, "")
    err = f"messages_stream.py: error: argument -a/--attach: {name}: not an image or audio file g4f can send"
    assert result.err == err + " (see --help)\n"
    assert sent_with(server, mark) == []


# ---- --list-providers -------------------------------------------------------------------


def test_list_providers_names_only_providers_g4f_resolves(run_script, backend: str) -> None:
    """Each line is a name g4f's own lookup (what -p NAME goes through) turns into a working
    provider; those without an API key come first, as the line on stderr counts them."""
    from g4f.client.service import convert_to_provider

    result = run_script("--list-providers")
    assert result.status == 0
    names = result.out.splitlines()
    assert names and result.out == "".join(f"{name}\n" for name in names)
    providers = [convert_to_provider(name) for name in names]
    assert all(p.working for p in providers)
    needs_key = [bool(p.needs_auth) for p in providers]
    assert needs_key == sorted(needs_key), "a provider that needs a key before one that does not"
    keyless = needs_key.count(False)
    assert keyless > 0
    assert result.err == f"{keyless} need no API key, listed first; {len(names) - keyless} need one\n"
