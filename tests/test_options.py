"""End-to-end tests of --proxy, -c/--conversation, --temperature and --max-tokens: the
script as a subprocess with the real g4f client, under both HTTP backends, against the
local test server and, for --proxy, a real HTTP proxy (proxy.py) on 127.0.0.1."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, Result, read_within, script_env
from tests.openai_server import OpenAIServer

HELLO = "Hello there!\n"


def piped(text: str) -> str:
    """What a file or a pipe gets: the answer alone, ending in a line break."""
    return text + "\n" if text and not text.endswith("\n") else text


def wait_for(condition: Callable[[], Any], timeout: float = 10) -> Any:
    """Poll until `condition()` is true; returns its last value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def closed_port() -> int:
    """A loopback port that refuses connections: bound, never listening, then freed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def asked(server: OpenAIServer, prompt: str) -> list[Any]:
    """The requests whose last message was `prompt`."""
    return [
        r for r in server.requests if r.body and r.body.get("messages", [{}])[-1].get("content") == prompt
    ]


# ---- a real HTTP proxy: proxy.py on 127.0.0.1 ---------------------------------------

PROXY_USER, PROXY_PASSWORD = "proxy-user-4417", "proxy-pass-9926"


@dataclass
class HttpProxy:
    """proxy.py with basic auth; its access log has one line per connection it tunnelled
    (CONNECT, as aiohttp_socks does) or request it forwarded (as curl does for http://)."""

    port: int
    log: Path

    def url(self, password: str = PROXY_PASSWORD, scheme: str = "http") -> str:
        return f"{scheme}://{PROXY_USER}:{password}@127.0.0.1:{self.port}"

    def hits(self, port: int) -> int:
        """How many connections or requests to 127.0.0.1:`port` it has carried so far."""
        return self.carried(f"127.0.0.1:{port}")

    def carried(self, host: str) -> int:
        """How many connections or requests to `host` (name:port) it has carried so far."""
        target = re.compile(rf" - [A-Z]+ {re.escape(host)}\b")
        return sum(1 for line in self.log.read_text().splitlines() if target.search(line))


@pytest.fixture(scope="session")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpProxy]:
    """proxy.py as a subprocess on a free port, with one acceptor and one worker.
    Its own environment has no *_proxy variables: the proxy itself goes direct."""
    folder = tmp_path_factory.mktemp("proxy")
    port_file, log = folder / "port", folder / "access.log"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    command = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0"]
    command += ["--port-file", str(port_file), "--num-acceptors", "1", "--num-workers", "1"]
    command += [
        "--basic-auth",
        f"{PROXY_USER}:{PROXY_PASSWORD}",
        "--log-file",
        str(log),
        "--log-level",
        "INFO",
    ]
    proc = subprocess.Popen(
        command,
        env={**env, "HOME": str(folder)},
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def listening() -> bool:
        if proc.poll() is not None or not port_file.exists() or not port_file.read_text().strip():
            return False
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", int(port_file.read_text()))) == 0

    try:
        if not wait_for(lambda: listening() or proc.poll() is not None, 30) or proc.poll() is not None:
            pytest.fail(f"proxy.py did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        yield HttpProxy(int(port_file.read_text()), log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def no_credentials(result: Result, *secrets: str) -> None:
    for secret in (PROXY_USER, PROXY_PASSWORD, *secrets):
        assert secret not in result.out + result.err


# ---- --proxy -------------------------------------------------------------------------


def test_proxy_carries_every_request(run_script, server: OpenAIServer, http_proxy: HttpProxy) -> None:
    # NO_PROXY=127.0.0.1 is set (see script_env): an explicit proxy must be used all the same.
    hits, sent = http_proxy.hits(server.port), len(server.requests)
    urls = ["-p", server.url("status-500"), "-p", server.url("hello")]
    result = run_script(*urls, "--proxy", http_proxy.url(), "-v")
    assert (result.status, result.out) == (0, HELLO)
    assert len(server.requests) - sent == 2  # the 500, then the answer
    assert wait_for(lambda: http_proxy.hits(server.port) == hits + 2, 5), "not every request went through it"
    no_credentials(result)


@pytest.mark.parametrize(
    ("args", "host"),
    [([], "g4f.dev:443"), (["-p", "PollinationsAI"], "image.pollinations.ai:443")],
    ids=["g4f's provider list", "a provider's model list"],
)
def test_g4f_fetches_its_lists_through_the_proxy(run_script, http_proxy: HttpProxy, args, host) -> None:
    """g4f downloads these with `requests`, which takes no proxy from g4f: the script sets the
    variables it reads. The proxy has no way out (no internet here): the run fails, through it."""
    if not args and int(importlib.metadata.version("g4f").split(".")[0]) < 8:
        pytest.skip("g4f before 8 (7.7.7, the oldest declared) asks for no provider list without -p")
    before = http_proxy.carried(host)
    result = run_script(*args, "--proxy", http_proxy.url(), timeout=60)
    assert result.status == 1
    assert wait_for(lambda: http_proxy.carried(host) > before, 5), f"{host} went around the proxy"
    no_credentials(result)


def test_g4f_proxy_alone_works_the_same(run_script, server: OpenAIServer, http_proxy: HttpProxy) -> None:
    hits = http_proxy.hits(server.port)
    result = run_script("--base-url", server.url("hello"), env={"G4F_PROXY": http_proxy.url()})
    assert (result.status, result.out, result.err) == (0, HELLO, "")
    assert wait_for(lambda: http_proxy.hits(server.port) == hits + 1, 5)


def test_proxy_flag_beats_g4f_proxy(run_script, server: OpenAIServer, http_proxy: HttpProxy) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    result = run_script(
        "--base-url", server.url("hello"), "--proxy", http_proxy.url(), env={"G4F_PROXY": dead}
    )
    assert (result.status, result.out) == (0, HELLO)


def test_empty_g4f_proxy_means_no_proxy(run_script, server: OpenAIServer, http_proxy: HttpProxy) -> None:
    hits = http_proxy.hits(server.port)
    result = run_script("--base-url", server.url("hello"), env={"G4F_PROXY": ""})
    assert (result.status, result.out) == (0, HELLO)
    time.sleep(0.3)
    assert http_proxy.hits(server.port) == hits


def test_proxy_refusing_the_password_is_one_masked_line(run_script, server, http_proxy: HttpProxy) -> None:
    wrong = "wrong-pass-3141"
    started = time.monotonic()
    result = run_script("--base-url", server.url("hello"), "--proxy", http_proxy.url(password=wrong), "-v")
    assert time.monotonic() - started < 5
    assert (result.status, result.out) == (1, "")
    assert result.err.startswith(f"error: {server.url('hello')}: ") and result.err.count("\n") == 1
    assert "407" in result.err and f"127.0.0.1:{http_proxy.port}" in result.err
    no_credentials(result, wrong)


# Every scheme under both backends, but https over aiohttp: that is bad usage (tested below).
SCHEMES = [(scheme, backend) for scheme in ("http", "https", "socks5", "socks5h") for backend in BACKENDS]


@pytest.mark.parametrize(("scheme", "backend"), [p for p in SCHEMES if p != ("https", "aiohttp")])
def test_dead_proxy_fails_fast_one_masked_line_per_provider(run_script, server, scheme: str) -> None:
    port, sent = closed_port(), len(server.requests)
    proxy = f"{scheme}://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}"
    urls = [server.url("hello"), server.url("echo")]
    started = time.monotonic()
    result = run_script("-p", urls[0], "-p", urls[1], "--proxy", proxy, "--timeout", "30")
    assert time.monotonic() - started < 5  # start-up and two refused connections, not a timeout
    assert (result.status, result.out) == (1, "")
    lines = result.err.splitlines()
    assert len(lines) == 2 and result.err.endswith("\n")
    for line, url in zip(lines, urls, strict=True):
        assert line.startswith(f"error: {url}: ")
        assert f"127.0.0.1:{port}" in line  # names the proxy
    assert len(server.requests) == sent  # nothing went around the proxy
    no_credentials(result)


@pytest.mark.parametrize("space", ["\t", " "], ids=["tab", "space"])
def test_a_proxy_url_with_white_space_is_bad_usage_its_password_masked(
    run_script, server: OpenAIServer, space: str
) -> None:
    """Python's URL parser drops a tab, curl does not, and quotes the URL whole in its error; a
    space splits the password where a line is masked word by word. Refused before any request."""
    proxy = f"socks5://{PROXY_USER}:{PROXY_PASSWORD[:8]}{space}{PROXY_PASSWORD[8:]}@127.0.0.1:{closed_port()}"
    result = run_script("--base-url", server.url("hello"), "--proxy", proxy)
    assert (result.status, result.out) == (2, "")
    assert "a space must be written %20" in result.err and result.err.count("\n") == 1
    assert PROXY_PASSWORD[:8] not in result.err and PROXY_PASSWORD[8:] not in result.err
    no_credentials(result)


@pytest.mark.parametrize("backend", ["aiohttp"])
@pytest.mark.parametrize("how", ["flag", "G4F_PROXY"])
def test_an_https_proxy_without_curl_cffi_is_bad_usage(run_script, server, how: str) -> None:
    proxy = f"https://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{closed_port()}"
    args, env = (["--proxy", proxy], {}) if how == "flag" else ([], {"G4F_PROXY": proxy})
    result = run_script("--base-url", server.url("hello"), *args, env=env)
    assert (result.status, result.out) == (2, "")
    assert result.err == (
        "messages_stream.py: error: argument --proxy: g4f runs over aiohttp here (no curl_cffi), which "
        "cannot use an https:// proxy: use http:// or socks5://, or install curl_cffi (see --help)\n"
    )


MALFORMED = [
    "htp//127.0.0.1:8080",
    "ftp://127.0.0.1:21",
    "127.0.0.1:8080",
    "http://127.0.0.1",  # no port: aiohttp_socks needs one
    "http://:8080",
    "socks5://127.0.0.1:99999",
    f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:port",
    f"{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:8080",
]


@pytest.mark.parametrize(
    ("how", "proxy"),
    [("flag", p) for p in [*MALFORMED, ""]] + [("G4F_PROXY", p) for p in MALFORMED],  # "" there: no proxy
)
def test_malformed_proxy_is_bad_usage(run_script, server: OpenAIServer, how: str, proxy: str) -> None:
    args, env = (["--proxy", proxy], {}) if how == "flag" else ([], {"G4F_PROXY": proxy})
    result = run_script("--base-url", server.url("hello"), *args, env=env)
    assert (result.status, result.out) == (2, "")
    assert result.err.startswith("messages_stream.py: error: argument --proxy: ")
    assert result.err.endswith(" (see --help)\n") and result.err.count("\n") == 1
    no_credentials(result)


# ---- -c/--conversation ---------------------------------------------------------------

HELLO_TURN = {"role": "assistant", "content": "Hello there!"}
FIRST_TURN = [{"role": "user", "content": "Привет 👋"}, {"role": "assistant", "content": "Hi! 👋"}]


def conversation(tmp_path: Path, messages: Any = None, raw: bytes | None = None) -> Path:
    """A conversation file in a folder of its own (missing when both are None); written
    compactly, so that a rewrite in the script's own format would change its bytes."""
    folder = tmp_path / "chats"
    folder.mkdir(exist_ok=True)
    path = folder / "chat.json"
    if messages is not None:
        raw = json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode()
    if raw is not None:
        path.write_bytes(raw)
    return path


def stored(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def others(path: Path) -> list[str]:
    """What else is in the conversation's folder: no temp file may stay behind. The run's
    lock file, FILE.lock, may stay: it is empty and only ever locked, never written."""
    return sorted(p.name for p in path.parent.iterdir() if p != path and p.name != f"{path.name}.lock")


def answer(result: Result) -> str:
    """The answer, as stored: without the line break a file or a pipe gets after it."""
    return result.out.removesuffix("\n")


def test_three_turns_send_the_conversation_and_store_each_turn(run_script, server, tmp_path) -> None:
    chat = conversation(tmp_path)  # missing: an empty conversation
    sent: list[dict[str, str]] = []
    turns = [("-c", "first", b""), ("--conversation", "второй 👋", b""), ("-c", "-", "третий\n".encode())]
    for flag, prompt, stdin in turns:
        result = run_script("--base-url", server.url("echo"), flag, str(chat), prompt, stdin=stdin)
        prompt = stdin.decode().removesuffix("\n") if prompt == "-" else prompt  # as the script reads it
        assert (result.status, result.err) == (0, "")
        sent += [{"role": "user", "content": prompt}]
        assert json.loads(answer(result)) == sent  # what the server received
        assert asked(server, prompt)[-1].body["messages"] == sent
        sent += [{"role": "assistant", "content": answer(result)}]
        assert stored(chat) == sent
    assert len(sent) == 6 and others(chat) == []


def test_every_turn_is_stored_as_asked_even_when_g4f_drops_repeats(run_script, server, tmp_path) -> None:
    """g4f 8.8.6 rewrites the messages it is given, in place, before sending them
    (tools/optimize_request.py): it drops a message equal to an earlier one, collapses
    whitespace, keeps the last 40. The file must still hold every turn as it was asked."""
    chat = conversation(tmp_path)
    for _ in range(3):
        assert (
            run_script("--base-url", server.url("hello"), "-c", str(chat), "Same again  \n\n\n").status == 0
        )
    assert stored(chat) == [{"role": "user", "content": "Same again  \n\n\n"}, HELLO_TURN] * 3


@pytest.mark.parametrize(
    ("before", "system", "head"),
    [
        (FIRST_TURN, "new rules", [{"role": "system", "content": "new rules"}]),
        (
            [{"role": "system", "content": "old rules"}, *FIRST_TURN],
            "new rules",
            [{"role": "system", "content": "new rules"}],
        ),
        (
            [{"role": "system", "content": "old rules"}, *FIRST_TURN],
            None,
            [{"role": "system", "content": "old rules"}],
        ),
    ],
    ids=["put-first", "replaces-stored", "kept-without-s"],
)
def test_system_message_with_a_stored_conversation(
    run_script, server, tmp_path, before, system, head
) -> None:
    chat = conversation(tmp_path, before)
    result = run_script(
        "--base-url", server.url("echo"), "-c", str(chat), *(["-s", system] if system else []), "q2"
    )
    assert result.status == 0
    sent = [*head, *FIRST_TURN, {"role": "user", "content": "q2"}]
    assert json.loads(answer(result)) == sent
    assert stored(chat) == [*sent, {"role": "assistant", "content": answer(result)}]


def test_reasoning_is_never_stored(run_script, server: OpenAIServer, tmp_path) -> None:
    chat = conversation(tmp_path, FIRST_TURN)
    result = run_script("--base-url", server.url("reasoning"), "-c", str(chat), "think")
    assert result.status == 0 and "Thinking hard" in result.err
    assert stored(chat) == [
        *FIRST_TURN,
        {"role": "user", "content": "think"},
        {"role": "assistant", "content": "Hello there!"},
    ]


@pytest.mark.parametrize("exists", [True, False], ids=["file", "no-file"])
@pytest.mark.parametrize(
    ("scenario", "args", "partial"),
    [
        ("drop", [], "Hello there"),
        ("stall-after-2", ["--timeout", "1"], "Hello there"),
        ("status-500", [], ""),
    ],
)
def test_failure_leaves_the_file_byte_for_byte(
    run_script, server, tmp_path, scenario, args, partial, exists
) -> None:
    chat = conversation(tmp_path, FIRST_TURN if exists else None)
    before = chat.read_bytes() if exists else None
    result = run_script("--base-url", server.url(scenario), "-c", str(chat), *args, timeout=30)
    assert (result.status, result.out) == (1, piped(partial))  # the partial answer
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert (chat.read_bytes() if chat.exists() else None) == before
    assert others(chat) == []


@pytest.mark.parametrize(
    ("sent", "status", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["Ctrl-C", "SIGTERM"],
)
def test_a_signal_leaves_the_file_byte_for_byte(start_script, server, tmp_path, sent, status, said) -> None:
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # a background CI job: let children see it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    chat = conversation(tmp_path, FIRST_TURN)
    before = chat.read_bytes()
    proc = start_script("--base-url", server.url("stall-after-2"), "-c", str(chat))
    try:
        assert proc.stdout is not None
        assert read_within(proc.stdout, len("Hello there")) == b"Hello there"
        proc.send_signal(sent)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert (proc.returncode, err.decode()) == (status, f"{said}\n")
    assert out.decode() == "\n"  # after the text read
    assert chat.read_bytes() == before and others(chat) == []


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'[{"role": "user", "content": "hi"}', "line 1"),  # cut short
        (b"", "line 1"),
        (b'{"role": "user", "content": "hi"}', "list"),  # a message, not a list
        (b'["hi"]', "message 1"),
        (b'[{"role": "user", "content": "ok"}, {"role": "user"}]', "message 2"),
        (b'[{"role": "user", "content": 42}]', "message 1"),
        (b'[{"role": "tool", "content": "x"}]', "message 1"),  # unknown role
        ('[{"role": "user", "content": "café"}]'.encode("latin-1"), "utf-8"),
    ],
    ids=[
        "cut-short",
        "empty",
        "object",
        "string-item",
        "no-content",
        "number-content",
        "unknown-role",
        "cp1252",
    ],
)
def test_a_file_that_is_not_a_conversation_is_bad_usage(run_script, server, tmp_path, raw, says) -> None:
    chat = conversation(tmp_path, raw=raw)
    result = run_script("--base-url", server.url("echo"), "-c", str(chat), f"never sent {tmp_path.name}")
    assert (result.status, result.out) == (2, "")
    assert result.err.startswith("messages_stream.py: error: ") and result.err.count("\n") == 1
    assert str(chat) in result.err and says in result.err.lower()  # what is wrong, and where
    assert chat.read_bytes() == raw and others(chat) == []
    assert not asked(server, f"never sent {tmp_path.name}")


def test_two_runs_at_once_never_lose_a_turn(run_script, start_script, server, tmp_path) -> None:
    """The first run holds the conversation; the second fails at once, sending nothing,
    rather than store a turn that was asked without the first one's context."""
    chat = conversation(tmp_path, FIRST_TURN)
    turn_a, turn_b, turn_c = (f"turn {x} {tmp_path.name}" for x in "ABC")  # the server's log is shared
    first = start_script("--base-url", server.url("slow-2000"), "-c", str(chat), turn_a)
    try:
        assert wait_for(lambda: asked(server, turn_a), 30), "the first run never asked"
        started = time.monotonic()
        second = run_script("--base-url", server.url("hello"), "-c", str(chat), turn_b)
        elapsed, first_still_running = time.monotonic() - started, first.poll() is None
        out, err = first.communicate(timeout=30)
    finally:
        first.kill()
    assert (second.status, second.out) == (1, "")
    assert second.err == f"error: {chat} is in use by another run\n"
    assert elapsed < 5 and first_still_running  # it did not wait for the lock
    assert not asked(server, turn_b)
    assert (first.returncode, out.decode(), err.decode()) == (0, HELLO, "")
    assert stored(chat) == [*FIRST_TURN, {"role": "user", "content": turn_a}, HELLO_TURN]
    third = run_script("--base-url", server.url("hello"), "-c", str(chat), turn_c)  # the lock is gone
    assert third.status == 0
    assert stored(chat)[-2:] == [
        {"role": "user", "content": turn_c},
        {"role": "assistant", "content": "Hello there!"},
    ]


def test_a_link_stays_a_link_and_shares_the_lock_with_its_target(
    run_script, start_script, server, tmp_path
) -> None:
    chat = conversation(tmp_path, FIRST_TURN)
    link = tmp_path / "link.json"
    link.symlink_to(chat)
    turn_a, turn_b = (f"turn {x} {tmp_path.name}" for x in "AB")
    first = start_script("--base-url", server.url("slow-2000"), "-c", str(link), turn_a)
    try:
        assert wait_for(lambda: asked(server, turn_a), 30), "the first run never asked"
        second = run_script("--base-url", server.url("hello"), "-c", str(chat), turn_b)
        out, err = first.communicate(timeout=30)
    finally:
        first.kill()
    assert (second.status, second.err) == (1, f"error: {os.path.realpath(chat)} is in use by another run\n")
    assert (first.returncode, out.decode(), err.decode()) == (0, HELLO, "")
    assert link.is_symlink()  # the target got the turn
    assert stored(chat) == [*FIRST_TURN, {"role": "user", "content": turn_a}, HELLO_TURN]
    assert others(chat) == []


def test_the_file_stays_readable_utf8(run_script, server: OpenAIServer, tmp_path) -> None:
    chat = conversation(tmp_path, FIRST_TURN)
    assert run_script("--base-url", server.url("hello"), "-c", str(chat)).status == 0
    assert "Привет 👋".encode() in chat.read_bytes()


FULL_DISK = """
import errno, os

_replace = os.replace

def replace(src, dst, *args, **kwargs):
    if str(dst).endswith("chat.json"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _replace(src, dst, *args, **kwargs)

os.replace = replace
"""


def test_a_failed_save_leaves_the_file_and_one_error_line(run_script, server, tmp_path, backend) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FULL_DISK)
    path = os.pathsep.join(filter(None, [str(hooks), script_env(tmp_path, backend).get("PYTHONPATH")]))
    chat = conversation(tmp_path, FIRST_TURN)
    before = chat.read_bytes()
    result = run_script("--base-url", server.url("hello"), "-c", str(chat), env={"PYTHONPATH": path})
    assert (result.status, result.out) == (1, HELLO)
    assert result.err == f"error: could not save {chat}: [Errno 28] No space left on device\n"
    assert chat.read_bytes() == before and others(chat) == []


@pytest.mark.parametrize("mode", [0o444, 0o640])
def test_permissions_are_kept(run_script, server: OpenAIServer, tmp_path, mode: int) -> None:
    """A read-only conversation is still appended to, and stays read-only: the folder
    allows the rename over it, as with `sed -i`. Its permissions are copied, never widened."""
    chat = conversation(tmp_path, FIRST_TURN)
    chat.chmod(mode)
    result = run_script("--base-url", server.url("hello"), "-c", str(chat), "q2")
    assert result.status == 0
    assert stat.S_IMODE(chat.stat().st_mode) == mode
    assert stored(chat)[-1] == {"role": "assistant", "content": "Hello there!"}


def test_a_new_conversation_file_is_readable_by_its_owner_alone(run_script, server, tmp_path) -> None:
    chat = conversation(tmp_path)  # missing: the run creates it
    assert run_script("--base-url", server.url("hello"), "-c", str(chat), "private").status == 0
    assert stat.S_IMODE(chat.stat().st_mode) == 0o600
    assert stored(chat)[-1] == HELLO_TURN


HOOK = """
import os

def _note(*words):
    with open(os.environ["WRITES_LOG"], "a", encoding="utf-8") as log:
        log.write(" ".join(words) + "\\n")

def _path(fd):
    return os.path.realpath(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}")

def _hook(name, describe):
    real = getattr(os, name)
    def hooked(*args, **kwargs):
        _note(name, *describe(*args))
        return real(*args, **kwargs)
    setattr(os, name, hooked)

for _name in ("fsync", "fdatasync"):
    _hook(_name, lambda fd: [_path(fd)])
for _name in ("replace", "rename"):
    _hook(_name, lambda src, dst: [os.path.realpath(src), os.path.realpath(dst)])
"""


def test_the_file_is_replaced_atomically(run_script, server, tmp_path, backend: str) -> None:
    """Not observable from outside short of pulling the plug: a sitecustomize records the
    script's fsync and rename calls. The new text goes to a temp file in the same folder,
    reaches the disk, and is renamed over the conversation."""
    hooks, log = tmp_path / "hooks", tmp_path / "writes.log"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOOK)
    path = os.pathsep.join(filter(None, [str(hooks), script_env(tmp_path, backend).get("PYTHONPATH")]))
    chat = conversation(tmp_path, FIRST_TURN)
    result = run_script(
        "--base-url", server.url("hello"), "-c", str(chat), env={"PYTHONPATH": path, "WRITES_LOG": str(log)}
    )
    assert result.status == 0 and stored(chat)[-1]["content"] == "Hello there!"
    target = os.path.realpath(chat)
    events = [line.split(" ") for line in log.read_text().splitlines()] if log.exists() else []
    renames = [i for i, e in enumerate(events) if e[0] in ("replace", "rename") and e[2] == target]
    assert len(renames) == 1, f"not renamed over the conversation: {events}"
    temp = events[renames[0]][1]
    assert temp != target and os.path.dirname(temp) == os.path.dirname(target)
    assert [e for e in events[: renames[0]] if e[0] in ("fsync", "fdatasync") and e[1] == temp], events
    assert others(chat) == []


# ---- --temperature and --max-tokens ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "body"),
    [
        ([], {}),
        (["--temperature", "0"], {"temperature": 0}),
        (["--temperature", "2", "--max-tokens", "1000"], {"temperature": 2, "max_tokens": 1000}),
        (["--temperature=0.7"], {"temperature": 0.7}),
        (["--max-tokens", "50"], {"max_tokens": 50}),
    ],
)
def test_sampling_options_reach_the_request_only_when_given(run_script, server, args, body) -> None:
    prompt = f"sampling {args}"
    result = run_script("--base-url", server.url("echo"), *args, prompt)
    assert result.status == 0
    sent = asked(server, prompt)[-1].body
    assert {k: sent[k] for k in ("temperature", "max_tokens") if k in sent} == body


def test_g4f_itself_stops_after_max_tokens_chunks(run_script, server: OpenAIServer) -> None:
    """g4f's create(max_tokens=N) counts each chunk (reasoning too) as one token and stops
    after N of them, whatever the server sends: the server here ignores max_tokens."""
    result = run_script("--base-url", server.url("hello"), "--max-tokens", "2", "-v", "max tokens 2")
    assert (result.status, result.out) == (0, "Hello there\n")
    assert asked(server, "max tokens 2")[-1].body["max_tokens"] == 2


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--temperature", v) for v in ("-0.1", "2.01", "nan", "inf", "-inf", "warm", "")]
    + [("--max-tokens", v) for v in ("0", "-5", "1.5", "1e3", "many", "")],
)
def test_bad_sampling_values_are_bad_usage(run_script, server: OpenAIServer, flag: str, value: str) -> None:
    prompt = f"never sent {flag}={value}"
    result = run_script("--base-url", server.url("hello"), f"{flag}={value}", prompt)
    assert (result.status, result.out) == (2, "")
    assert result.err.startswith(f"messages_stream.py: error: argument {flag}: ")
    assert result.err.endswith(" (see --help)\n") and result.err.count("\n") == 1
    assert not asked(server, prompt)
