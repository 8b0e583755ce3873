"""The script as a subprocess, with the real g4f client, against a local
OpenAI-compatible server; every test runs under both of g4f's HTTP backends."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

import messages_stream
from tests.conftest import ROOT, SCRIPT, Result, read_within, script_env, user_env
from tests.openai_server import OpenAIServer
from tests.test_chat import PNG

FINAL = "\n\nFinal accumulated text: "


def piped(text: str) -> str:
    """What a file or a pipe gets: the answer alone, ending in a line break."""
    return text + "\n" if text and not text.endswith("\n") else text


SERVER = ROOT / "tests" / "openai_server.py"


def on_a_terminal(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    stdin: bytes = b"",
    timeout: float = 60,
    signal_after: tuple[bytes, int] | None = None,
) -> Result:
    """`python messages_stream.py ARGS` with stdout on a terminal (a pseudo-terminal that leaves
    line breaks as they are), stdin and stderr pipes: what a person at a terminal sees on stdout.
    With `signal_after` (text, signal): the signal once the terminal shows the text."""
    master, slave = pty.openpty()
    attributes = termios.tcgetattr(slave)
    attributes[1] &= ~termios.ONLCR  # "\n", not "\r\n"
    termios.tcsetattr(slave, termios.TCSANOW, attributes)
    command = [sys.executable, str(SCRIPT), *args]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=slave, stderr=subprocess.PIPE, env=env, cwd=cwd
    ) as proc:
        os.close(slave)
        shown = bytearray()

        def read() -> None:
            nonlocal signal_after
            with contextlib.suppress(OSError):  # EIO: the script has closed the terminal
                while piece := os.read(master, 65536):
                    shown.extend(piece)
                    if signal_after and signal_after[0] in shown:  # once
                        proc.send_signal(signal_after[1])
                        signal_after = None

        reader = threading.Thread(target=read)
        reader.start()
        try:
            _, err = proc.communicate(stdin, timeout=timeout)
        finally:
            proc.kill()
            reader.join(10)
            os.close(master)
    return Result(proc.returncode, shown.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def no_traceback(err: str) -> None:
    assert "Traceback" not in err
    assert "Exception ignored" not in err


def ctrl_c(proc: subprocess.Popen[bytes]) -> tuple[str, str, float]:
    """Send SIGINT; stdout, stderr and how long the script took to exit."""
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    try:
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    return out.decode(), err.decode(), time.monotonic() - started


def test_runs_under_the_backend_it_claims(backend: str, tmp_path) -> None:
    code = "import g4f.requests as r; print(r.has_curl_cffi)"
    env = script_env(tmp_path, backend)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    assert out.strip() == str(backend == "curl_cffi")


# ---- issue 2: the example works ----------------------------------------------------


def test_streams_from_a_local_server(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("hello"))
    assert result.out == "Hello there!\n"
    assert (result.status, result.err) == (0, "")


def test_on_a_terminal_the_final_line_follows(server: OpenAIServer, backend: str, tmp_path) -> None:
    result = on_a_terminal(["--base-url", server.url("hello")], script_env(tmp_path, backend), tmp_path)
    assert (result.status, result.out, result.err) == (0, "Hello there!" + FINAL + "Hello there!\n", "")


def test_into_a_file_the_answer_alone_once(server: OpenAIServer, backend: str, tmp_path) -> None:
    """`> answer.txt`, as a user's shell does it: the file holds the answer, once."""
    with open(tmp_path / "answer.txt", "wb") as file:
        command = [sys.executable, str(SCRIPT), "--base-url", server.url("hello")]
        env = script_env(tmp_path, backend)
        status = subprocess.run(command, stdout=file, env=env, cwd=tmp_path, timeout=60).returncode
    assert (status, (tmp_path / "answer.txt").read_text()) == (0, "Hello there!\n")


def test_into_one_log_with_its_errors_an_error_starts_a_line(
    server: OpenAIServer, backend: str, tmp_path
) -> None:
    """`> log 2>&1` (cron, CI): the text so far, then the error on a line of its own, no blank."""
    with open(tmp_path / "log", "wb") as file:
        command = [sys.executable, str(SCRIPT), "--base-url", server.url("drop")]
        env = script_env(tmp_path, backend)
        run = subprocess.run(
            command, stdout=file, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=60
        )
    log = (tmp_path / "log").read_text()
    assert run.returncode == 1 and log.startswith(f"Hello there\nerror: {server.url('drop')}: "), log
    assert log.count("\n") == 2 and log.endswith("\n") and not log.endswith("\n\n"), log


def test_prompt_system_and_key_by_flag_reach_the_server(run_script, server: OpenAIServer) -> None:
    result = run_script(
        "--base-url", server.url("echo"), "-s", "Be brief.", "--api-key", "sk-flag", "Как тебя зовут?"
    )
    assert result.status == 0
    sent = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Как тебя зовут?"}]
    assert json.loads(result.out) == sent
    request = [r for r in server.requests if r.body and r.body.get("messages") == sent][-1]
    assert request.headers["authorization"] == "Bearer sk-flag"
    assert request.body["stream"] is True
    assert request.body["model"] == "gpt-4"


def test_prompt_from_stdin_and_key_from_environment(run_script, server: OpenAIServer) -> None:
    result = run_script(
        "--base-url",
        server.url("echo"),
        "-",
        stdin="Привет из stdin\n".encode(),
        env={"G4F_API_KEY": "sk-env"},
    )
    assert result.status == 0
    sent = [{"role": "user", "content": "Привет из stdin"}]  # without the line break that ends it
    assert json.loads(result.out) == sent
    request = [r for r in server.requests if r.body and r.body.get("messages") == sent][-1]
    assert request.headers["authorization"] == "Bearer sk-env"


def test_offline_default_is_one_error_line_a_hint_and_the_final_line(run_script) -> None:
    # Every non-loopback request goes to a closed loopback port (see script_env).
    result = run_script()
    assert result.status == 1
    assert result.out == ""
    error, hint = result.err.splitlines()
    assert error.startswith("error: g4f's automatic choice: ")
    assert hint.startswith("hint: name a provider with -p, or point --base-url at a server you run")
    no_traceback(result.err)


def test_several_words_make_one_prompt(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("echo"), "Why", "is the sky", "blue?")
    assert json.loads(result.out) == [{"role": "user", "content": "Why is the sky blue?"}]


def test_piped_text_and_words_are_one_message(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("echo"), "Write a commit", "message", stdin=b"+ added\n")
    assert result.status == 0
    assert json.loads(result.out) == [{"role": "user", "content": "+ added\n\nWrite a commit message"}]


def test_words_with_stdin_from_dev_null_are_sent_alone(start_script, server: OpenAIServer) -> None:
    proc = start_script("--base-url", server.url("echo"), "Hi")  # stdin: /dev/null, as in CI
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err.decode()) == (0, "")
    assert json.loads(out.decode()) == [{"role": "user", "content": "Hi"}]


def test_g4f_missing_is_one_line(run_script, tmp_path) -> None:
    hide = tmp_path / "no_g4f" / "g4f"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'g4f'\", name='g4f')\n")
    result = run_script("Hi", env={"PYTHONPATH": str(hide.parent)})
    assert (result.status, result.out) == (1, "")
    assert result.err == "error: No module named 'g4f': install it with `pip install -r requirements.txt`\n"


# ---- issue 3: the provider misbehaves ----------------------------------------------


@pytest.mark.parametrize("status", [500, 401, 429])
def test_http_error_before_any_chunk(run_script, server: OpenAIServer, status: int) -> None:
    result = run_script("--base-url", server.url(f"status-{status}"))
    assert (result.status, result.out) == (1, "")
    assert f"test server says no ({status})" in result.err
    assert result.err.count("\n") == 1


@pytest.mark.parametrize("scenario", ["error-event", "drop"])
def test_failure_mid_stream_keeps_the_text(run_script, server: OpenAIServer, scenario: str) -> None:
    result = run_script("--base-url", server.url(scenario))
    assert (result.status, result.out) == (1, "Hello there\n")
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    no_traceback(result.err)


def test_error_event_message_is_shown(run_script, server: OpenAIServer) -> None:
    assert "upstream exploded" in run_script("--base-url", server.url("error-event")).err


@pytest.mark.parametrize(("scenario", "partial"), [("silent", ""), ("stall-after-2", "Hello there")])
def test_timeout_ends_a_silent_stream_on_time(run_script, server: OpenAIServer, scenario, partial) -> None:
    started = time.monotonic()
    result = run_script("--base-url", server.url(scenario), "--timeout", "1", timeout=30)
    elapsed = time.monotonic() - started
    assert (result.status, result.out) == (1, piped(partial))
    assert result.err == f"error: {server.url(scenario)}: TimeoutError: no delta within 1s\n"
    assert elapsed < 10  # generous: start-up plus one second; a hang is 30 s


def test_connection_refused(run_script) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        result = run_script("--base-url", f"http://127.0.0.1:{port}/v1")
    assert (result.status, result.out) == (1, "")
    assert result.err.startswith("error: ") and result.err.count("\n") == 1


@pytest.mark.parametrize("url", ["htp//127.0.0.1/v1", "http://127.0.0.1:port/v1", "http:///v1"])
def test_malformed_base_url_is_bad_usage(run_script, url: str) -> None:
    result = run_script("--base-url", url)
    assert (result.status, result.out) == (2, "")
    assert result.err.count("\n") == 1 and url in result.err


def test_utf8_split_across_reads_prints_whole(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("split-utf8"))
    assert (result.status, result.out) == (0, "Привет 👋\n")


def test_two_mib_answer_is_kept_in_full_once(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("big-2048"))
    assert result.status == 0
    assert len(result.out) == 2048 * 1024 + 4 and result.out.endswith("END\n")


# ---- issue 3: the user or the terminal -----------------------------------------------


# Buffering changes what these see: a user's stdout is buffered, unless PYTHONUNBUFFERED is set.
BUFFERING = pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])


@BUFFERING
def test_each_delta_is_on_stdout_before_the_next_arrives(start_script, server, unbuffered: str) -> None:
    proc = start_script("--base-url", server.url("stall-after-2"), env={"PYTHONUNBUFFERED": unbuffered})
    try:
        assert read_within(proc.stdout, len("Hello there"), 5) == b"Hello there"  # the rest never comes
    finally:
        proc.kill()


@BUFFERING
def test_ctrl_c_mid_stream(start_script, server, sigint_reaches_children, unbuffered: str) -> None:
    proc = start_script("--base-url", server.url("stall-after-2"), env={"PYTHONUNBUFFERED": unbuffered})
    try:
        assert read_within(proc.stdout, len("Hello there")) == b"Hello there"
    finally:
        out, err, took = ctrl_c(proc)
    assert took < 3
    assert (proc.returncode, out, err) == (130, "\n", "interrupted\n")  # after the text read


@BUFFERING
def test_reader_that_closes_early_gets_no_noise(start_script, server, unbuffered: str) -> None:
    proc = start_script("--base-url", server.url("big-2048"), env={"PYTHONUNBUFFERED": unbuffered})
    assert proc.stdout is not None and proc.stderr is not None
    assert len(read_within(proc.stdout, 100)) == 100
    proc.stdout.close()  # like `| head -c 100`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 1
    assert err == ""


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_terminal_that_cannot_encode_gets_replacements(run_script, server, encoding: str) -> None:
    result = run_script("--base-url", server.url("split-utf8"), env={"PYTHONIOENCODING": encoding})
    assert result.status == 0
    assert result.out == "?????? ?\n"
    no_traceback(result.err)


def test_stdin_not_utf8_is_refused_in_one_line(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("hello"), "-", stdin=b"caf\xe9")
    assert (result.status, result.out) == (2, "")
    assert result.err.count("\n") == 1 and "not UTF-8" in result.err


def test_empty_stdin_is_bad_usage(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("hello"), "-", stdin=b"  \n")
    assert (result.status, result.out) == (2, "")
    assert "the prompt is empty" in result.err and result.err.count("\n") == 1


def test_unknown_provider_name(run_script) -> None:
    result = run_script("-p", "NoSuchProvider")
    assert (result.status, result.out) == (1, "")
    assert result.err == "error: NoSuchProvider: ProviderNotFoundError: Provider not found: NoSuchProvider\n"


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_api_key_never_appears_in_output(run_script, server: OpenAIServer, how: str) -> None:
    key = "sk-do-not-print-7731"
    args = ["--api-key", key] if how == "flag" else []
    env = {"G4F_API_KEY": key} if how == "environment" else {}
    for scenario in ("status-401", "hello", "drop"):
        result = run_script("-v", "--base-url", server.url(scenario), *args, env=env)
        assert key not in result.out + result.err


# ---- issue 5: fallback, reasoning, report -------------------------------------------


def test_fallback_after_an_http_error(run_script, server: OpenAIServer) -> None:
    result = run_script("-p", server.url("status-500"), "-p", server.url("hello"))
    assert (result.status, result.out, result.err) == (0, "Hello there!\n", "")


def test_fallback_after_silence_takes_about_the_timeout(run_script, server: OpenAIServer) -> None:
    started = time.monotonic()
    result = run_script("-p", server.url("silent"), "-p", server.url("hello"), "--timeout", "1")
    elapsed = time.monotonic() - started
    assert (result.status, result.out) == (0, "Hello there!\n")
    assert 1 <= elapsed < 10


def test_all_providers_fail_each_named_once(run_script, server: OpenAIServer) -> None:
    urls = [server.url("status-429"), server.url("silent"), "http://127.0.0.1:9/v1"]
    result = run_script(*[a for url in urls for a in ("-p", url)], "-p", "NoSuchProvider", "--timeout", "1")
    assert (result.status, result.out) == (1, "")
    lines = result.err.splitlines()
    assert len(lines) == 4
    for line, name in zip(lines, [*urls, "NoSuchProvider"], strict=True):
        assert line.startswith(f"error: {name}: ")
    assert "test server says no (429)" in lines[0]
    assert lines[1].endswith("TimeoutError: no delta within 1s")


def test_no_fallback_once_content_has_started(run_script, server: OpenAIServer) -> None:
    result = run_script("-p", server.url("drop"), "-p", server.url("hello"))
    assert (result.status, result.out) == (1, "Hello there\n")
    assert result.err.count("\n") == 1


def test_reasoning_on_stderr_only(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("reasoning"))
    assert result.out == "Hello there!\n"
    assert "Thinking hard" in result.err and "Hello" not in result.err
    hidden = run_script("--base-url", server.url("reasoning"), "--hide-reasoning")
    assert (hidden.out, hidden.err) == (result.out, "")


def test_verbose_report_fields_and_identical_stdout(run_script, server: OpenAIServer) -> None:
    quiet = run_script("--base-url", server.url("hello"))
    loud = run_script("--base-url", server.url("hello"), "-v")
    assert loud.out == quiet.out and loud.status == quiet.status == 0
    assert f"provider: {server.url('hello')}  model: test-model" in loud.err
    assert "deltas: 3  chars: 12  chars/s: " in loud.err
    assert "usage: 5 prompt + 3 completion = 8 tokens" in loud.err


# ---- the liftable core's fixes, end to end ---------------------------------------------


def test_a_reader_slower_than_the_timeout_gets_every_delta(start_script, server: OpenAIServer) -> None:
    # 300 KiB over 3 s: the pipe (64 KiB) fills and the script blocks in print for
    # over a second at a time, longer than --timeout, while deltas keep coming.
    proc = start_script("--base-url", server.url("drip-300"), "--timeout", "1")
    time.sleep(3.5)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err.decode()) == (0, "")
    assert out.decode() == "d" * 1024 * 300 + "END\n"


def test_ctrl_c_while_stdin_is_read(start_script, server: OpenAIServer, sigint_reaches_children) -> None:
    proc = start_script("--base-url", server.url("hello"), "-", stdin=subprocess.PIPE)
    time.sleep(1.5)  # long past start-up: the script waits for the prompt
    out, err, took = ctrl_c(proc)
    assert (proc.returncode, out, err) == (130, "", "interrupted\n")
    assert took < 2


def test_sigterm_while_stdin_is_read(start_script, server: OpenAIServer) -> None:
    proc = start_script("--base-url", server.url("hello"), "-", stdin=subprocess.PIPE)
    time.sleep(1.5)  # long past start-up: the script waits for the prompt
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    assert (proc.returncode, out, err) == (143, b"", b"terminated\n")


def test_ctrl_c_while_piped_text_is_read_for_words(start_script, server, sigint_reaches_children) -> None:
    proc = start_script("--base-url", server.url("hello"), "Explain", stdin=subprocess.PIPE)
    time.sleep(1.5)  # long past start-up: the script waits for the end of the piped text
    out, err, took = ctrl_c(proc)
    assert (proc.returncode, out, err) == (130, "", "interrupted\n")
    assert took < 2


def test_ctrl_c_while_g4f_is_imported(start_script, server: OpenAIServer, sigint_reaches_children) -> None:
    proc = start_script("--base-url", server.url("hello"), python_args=("-X", "importtime"))
    assert proc.stderr is not None
    for line in proc.stderr:  # each line names a module that finished importing
        if line.split(b"|")[-1].strip().startswith(b"g4f"):  # the first of g4f's: its import goes on
            break
    out, err, took = ctrl_c(proc)
    no_traceback(err)
    assert (proc.returncode, err.splitlines()[-1]) == (130, "interrupted")
    assert out == ""
    assert took < 5


def test_ctrl_c_as_the_script_starts_is_130_without_a_traceback(
    start_script, sigint_reaches_children
) -> None:
    """Sent once the script has loaded its first module (argparse, just after its first lines):
    its other modules, asyncio first, are still loading, before main() could catch anything."""
    proc = start_script("Hi", python_args=("-X", "importtime"))
    assert proc.stderr is not None
    for line in proc.stderr:  # each line names a module that finished importing
        if line.split(b"|")[-1].strip() == b"argparse":
            break
    out, err, _ = ctrl_c(proc)
    no_traceback(err)
    assert (proc.returncode, out, err.splitlines()[-1]) == (130, "", "interrupted")


@BUFFERING
def test_sigterm_mid_stream_is_like_ctrl_c(start_script, server, unbuffered: str) -> None:
    """`docker stop`, systemd, `timeout`: the text so far, one line on stderr, exit 143."""
    proc = start_script("--base-url", server.url("stall-after-2"), env={"PYTHONUNBUFFERED": unbuffered})
    try:
        assert read_within(proc.stdout, len("Hello there")) == b"Hello there"
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert (proc.returncode, out.decode(), err.decode()) == (143, "\n", "terminated\n")  # after the text read


def test_sigterm_on_a_terminal_prints_the_final_line(server: OpenAIServer, backend: str, tmp_path) -> None:
    args, env = ["--base-url", server.url("stall-after-2")], script_env(tmp_path, backend)
    result = on_a_terminal(args, env, tmp_path, signal_after=(b"Hello there", signal.SIGTERM))
    assert (result.status, result.err) == (143, "terminated\n")
    assert result.out == "Hello there" + FINAL + "Hello there\n"


def test_an_ignored_sigint_stays_ignored(start_script, server: OpenAIServer) -> None:
    """`cmd &` in a script starts it with SIGINT ignored: the shell's Ctrl-C is not for it."""
    ignore = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731 - in the child
    proc = start_script("--base-url", server.url("stall-after-2"), preexec_fn=ignore)
    try:
        assert read_within(proc.stdout, len("Hello there")) == b"Hello there"
        proc.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(1)  # it goes on
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert (proc.returncode, out.decode(), err.decode()) == (143, "\n", "terminated\n")  # after the text read


def test_verbose_shows_no_usage_the_server_did_not_send(run_script, server: OpenAIServer) -> None:
    result = run_script("-v", "--base-url", server.url("no-usage"))
    assert (result.status, result.out) == (0, "Hello there!\n")
    assert "deltas: 3  chars: 12" in result.err
    assert "usage:" not in result.err and "finish reason" not in result.err


def test_verbose_shows_a_finish_reason_the_server_sent(run_script, server: OpenAIServer) -> None:
    assert "finish reason: length\n" in run_script("-v", "--base-url", server.url("length")).err


def test_reasoning_then_the_end_is_a_failure(run_script, server: OpenAIServer) -> None:
    result = run_script("--base-url", server.url("reasoning-only"))
    assert (result.status, result.out) == (1, "")
    assert (
        result.err
        == f"Thinking\nerror: {server.url('reasoning-only')}: the stream ended without any answer text\n"
    )


# ---- the examples of --help and of the pages, run as written by a shell ----------------------


def help_examples() -> list[str]:
    """What `python messages_stream.py --help` shows under "examples:"."""
    examples = (messages_stream.__doc__ or "").partition("examples:\n")[2].partition("\n\n")[0]
    return [line.strip().replace("%(prog)s", "python messages_stream.py") for line in examples.splitlines()]


def page_examples() -> list[str]:
    """Each command line of the pages to type as it stands: in `code` or alone on a line of a
    ```sh block, one that runs the script (the setup line, which runs pip, is .ci/run's)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        found += re.findall(r"`((?:[^`|\n]*\\?\| )?python messages_stream\.py[^`\n]*)`", text)
        found += re.findall(r"^(python messages_stream\.py .*)$", text, re.MULTILINE)
    return [example.replace("\\|", "|") for example in found]


def test_help_shows_the_examples_that_run(tmp_path) -> None:
    command = [sys.executable, "messages_stream.py", "--help"]
    shown = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=user_env()).stdout
    assert [line.strip() for line in shown.partition("examples:\n")[2].partition("\n\n")[0].splitlines()] == (
        help_examples()
    )


def activated() -> str:
    """PATH with the venv first, as `. .venv/bin/activate` puts it: `python` is the venv's."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])


def test_the_script_is_executable_in_git_and_runs_as_dot_slash() -> None:
    git = ["git", "ls-files", "-s", "messages_stream.py"]
    assert subprocess.run(git, capture_output=True, text=True, cwd=ROOT).stdout.startswith("100755 ")
    dot_slash = ["./messages_stream.py", "--help"]
    assert (
        subprocess.run(dot_slash, capture_output=True, cwd=ROOT, env=user_env(PATH=activated())).returncode
        == 0
    )


@pytest.mark.parametrize("example", help_examples() + page_examples())
def test_an_example_runs_as_written(example: str, backend: str, tmp_path: Path) -> None:
    """Typed in a shell, in a copy of the project (a git repository, for `git diff`), with the
    venv on PATH as `activate` puts it: the script runs (not 126, 127 or bad usage), and fails,
    offline, in one line a provider, unless it needs no network (--list-providers)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(SCRIPT, project)  # with its mode
    (project / "screenshot.png").write_bytes(PNG)  # the image an `-a` example names
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    env, shell = script_env(tmp_path, backend, PATH=activated()), ["bash", "-c", example]
    run = subprocess.run(shell, capture_output=True, text=True, cwd=project, env=env, timeout=60)
    assert run.returncode in (0, 1), f"{example}: exit status {run.returncode}\n{run.stderr}"
    lines = run.stderr.splitlines()
    if run.returncode == 0:  # needs no network: --list-providers
        assert run.stdout and "Traceback" not in run.stderr, run.stderr
    else:
        assert lines and all(line.startswith(("error: ", "hint: ")) for line in lines), run.stderr
    if ">" in example:
        assert (project / example.rpartition("> ")[2]).read_text() == "", "no answer: an empty file"


# ---- the test server, run alone ----------------------------------------------------------


def test_test_server_on_a_taken_port_says_so_in_one_line(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = [sys.executable, str(SERVER), "--port", str(port)]
        result = subprocess.run(server, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    said = f"error: port {port} on 127.0.0.1 is in use: choose another with --port (0: any)\n"
    assert result.stderr == said


# ---- g4f's known problems, as the README states them ---------------------------------------


def test_a_fastapi_style_401_waits_out_the_timeout_under_curl_cffi_alone(
    run_script, server: OpenAIServer, backend: str
) -> None:
    """A known problem of g4f's (the README's Troubleshooting): should g4f fix it, this fails,
    and the README's line goes. The other known problems are examples in docs/usage.md."""
    started = time.monotonic()
    result = run_script("--base-url", server.url("detail-401"), "--timeout", "2", timeout=30)
    took = time.monotonic() - started
    assert (result.status, result.out) == (1, "")
    if backend == "aiohttp":
        body = '{"detail": "test server says no (401)"}'  # at once; g4f quotes it either way
        said = {
            f"error: {server.url('detail-401')}: MissingAuthError: Response 401: {b}\n"
            for b in (body, body.replace('"', "'"))
        }
        assert result.err in said
    else:
        assert result.err == f"error: {server.url('detail-401')}: TimeoutError: no delta within 2s\n"
        assert took >= 2
