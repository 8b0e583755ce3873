"""main() with a fake client: what it prints, where, and the exit status it returns."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shlex
import socket
import sys
import time
from typing import Any

import pytest
from g4f.providers.response import FinishReason, Reasoning, Sources

import messages_stream
from tests.conftest import NO_CHOICES, FakeClient, chunk, pause, stall, usage


def piped(text: str) -> str:
    """What a file or a pipe gets: the answer alone, ending in a line break."""
    return text + "\n" if text and not text.endswith("\n") else text


HINT = "hint: name a provider with -p, or point --base-url at a server you run"
HINT += " (README: Try it without a network)\n"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_final_line_follows_the_answer(run_main, fake: FakeClient, monkeypatch) -> None:
    """The documented example's behaviour, for a person watching."""
    monkeypatch.setattr(sys, "stdout", terminal := Tty())
    assert run_main().status == 0
    assert terminal.getvalue() == "Hello there!\n\nFinal accumulated text: Hello there!\n"


def test_into_a_file_the_answer_alone_once(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hello", " there", "!"], ["Hello\n"], []]
    assert run_main().out == "Hello there!\n"  # ends in a line break, as a text file does
    assert run_main().out == "Hello\n"  # one line break, not two
    assert run_main().out == ""  # a failure writes nothing


def test_streams_each_delta_and_prints_the_final_line(run_main, fake: FakeClient) -> None:
    result = run_main()
    assert result.status == 0
    assert result.out == "Hello there!\n"
    assert result.err == ""
    assert fake.calls[0]["model"] == "gpt-4"
    assert fake.calls[0]["stream"] is True
    assert fake.calls[0]["messages"] == [{"role": "user", "content": "Say hello there!"}]


def test_chunk_without_choices_is_skipped(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hel", NO_CHOICES, "lo"]]
    result = run_main()
    assert (result.status, result.out) == (0, "Hello\n")


def test_none_and_empty_content_are_skipped(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hel", chunk(None), chunk(""), "lo"]]
    result = run_main()
    assert (result.status, result.out) == (0, "Hello\n")


def test_content_that_is_not_a_str_is_shown_as_text(run_main, fake: FakeClient) -> None:
    sources = Sources([{"url": "https://example.org", "title": "Example"}])
    fake.scripts = [["See", sources]]
    result = run_main()
    text = "See" + str(sources)
    assert "[Example](https://example.org)" in text
    assert (result.status, result.out) == (0, piped(text))


def test_error_mid_stream_keeps_the_partial_text(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hello", " there", ConnectionResetError("peer went away")]]
    result = run_main()
    assert result.status == 1
    assert result.out == "Hello there\n"
    assert result.err == "error: g4f's automatic choice: ConnectionResetError: peer went away\n"


def test_error_raised_by_create_itself(run_main, fake: FakeClient) -> None:
    fake.scripts = [OSError("no route to the provider list")]
    result = run_main()
    assert result.status == 1
    assert result.out == ""
    assert result.err == "error: g4f's automatic choice: OSError: no route to the provider list\n" + HINT
    assert "Traceback" not in result.err


def test_multi_line_error_is_reported_on_one_line(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hi", RuntimeError("first\nsecond\n  third")]]
    result = run_main()
    assert result.err == "error: g4f's automatic choice: RuntimeError: first second third\n"


def test_prompt_argument_any_unicode(run_main, fake: FakeClient) -> None:
    assert run_main("Как тебя зовут? 👋").status == 0
    assert fake.calls[0]["messages"] == [{"role": "user", "content": "Как тебя зовут? 👋"}]


def test_prompt_from_stdin(run_main, fake: FakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"Line one\nline two \r\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert run_main("-").status == 0  # without the line break that ends it, and nothing more
    assert fake.calls[0]["messages"] == [{"role": "user", "content": "Line one\nline two "}]


def test_several_words_are_one_prompt(run_main, fake: FakeClient) -> None:
    assert run_main("Why", "is", "the sky", "blue?").status == 0
    assert fake.calls[0]["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]


def test_system_message_comes_before_the_user_message(run_main, fake: FakeClient) -> None:
    assert run_main("-s", "Be brief.", "Hi").status == 0
    assert fake.calls[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_model_and_api_key_reach_the_client(run_main, fake: FakeClient) -> None:
    assert run_main("-m", "llama3.2", "--api-key", "sk-test").status == 0
    assert fake.calls[0]["model"] == "llama3.2"
    assert fake.init_kwargs["api_key"] == "sk-test"


def test_api_key_from_the_environment(run_main, fake: FakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G4F_API_KEY", "sk-from-env")
    assert run_main().status == 0
    assert fake.init_kwargs["api_key"] == "sk-from-env"


@pytest.mark.parametrize("key_args", [["--api-key", "sk-secret-1234"], []])
def test_api_key_never_appears_in_an_error(run_main, fake: FakeClient, monkeypatch, key_args) -> None:
    monkeypatch.setenv("G4F_API_KEY", "sk-secret-1234")
    fake.scripts = [[RuntimeError("401: bad key sk-secret-1234")]]
    result = run_main(*key_args)
    assert result.status == 1
    assert "sk-secret-1234" not in result.out + result.err
    assert result.err == "error: g4f's automatic choice: RuntimeError: 401: bad key ***\n" + HINT


def test_base_url_without_provider_means_a_custom_provider(run_main, fake: FakeClient) -> None:
    assert run_main("--base-url", "http://127.0.0.1:1/v1").status == 0
    provider = fake.calls[0]["provider"]
    assert provider.__name__ == "Custom"
    assert provider.base_url == "http://127.0.0.1:1/v1"
    assert fake.init_kwargs["base_url"] is None  # a client-wide base_url would override it


def test_base_url_with_a_named_provider_goes_to_the_client(run_main, fake: FakeClient) -> None:
    assert run_main("-p", "Ollama", "--base-url", "http://127.0.0.1:1/v1").status == 0
    assert fake.calls[0]["provider"] == "Ollama"
    assert fake.init_kwargs["base_url"] == "http://127.0.0.1:1/v1"


def test_default_provider_is_g4f_automatic_choice(run_main, fake: FakeClient) -> None:
    assert run_main().status == 0
    assert fake.calls[0]["provider"] is None


def test_timeout_before_the_first_delta(run_main, fake: FakeClient) -> None:
    fake.scripts = [[stall]]
    result = run_main("--timeout", "0.2")
    assert (result.status, result.out) == (1, "")
    assert result.err == "error: g4f's automatic choice: TimeoutError: no delta within 0.2s\n" + HINT


def test_timeout_after_some_deltas_keeps_them(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hello", stall]]
    result = run_main("--timeout", "0.2")
    assert (result.status, result.out) == (1, "Hello\n")
    assert result.err == "error: g4f's automatic choice: TimeoutError: no delta within 0.2s\n"


def test_stream_without_any_text_is_a_failure(run_main, fake: FakeClient) -> None:
    fake.scripts = [[NO_CHOICES]]
    result = run_main()
    assert (result.status, result.err) == (
        1,
        "error: g4f's automatic choice: the stream ended without any answer text\n" + HINT,
    )


# ---- bad usage: one line on stderr, exit status 2 ---------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["   "], "the prompt is empty: '   '"),
        ([""], "the prompt is empty: ''"),
        (["--timeout", "-1"], "argument --timeout: must be a positive number of seconds, got -1.0"),
        (["--timeout", "soon"], "argument --timeout: invalid float value: 'soon'"),
        (["--timeout", "0"], "argument --timeout: must be a positive number of seconds, got 0.0"),
        (["--timeout", "nan"], "argument --timeout: must be a positive number of seconds, got nan"),
        (["--timeout", "inf"], "argument --timeout: must be a positive number of seconds, got inf"),
        (["--base-url", "ftp://example.org"], "argument --base-url: not an http(s) URL: 'ftp://example.org'"),
        (["--base-url", "http://"], "argument --base-url: not an http(s) URL: 'http://'"),
        (
            ["--base-url", "http://127.0.0.1:port/v1"],
            "argument --base-url: not an http(s) URL: 'http://127.0.0.1:port/v1': Port could not be",
        ),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["-p", ""], "argument -p/--provider: an empty provider name: ''"),
        (["-c", "", "Hi"], "argument -c/--conversation: an empty file name: ''"),
        (["abc\udcffdef"], "the prompt is not UTF-8"),
        (["-c", "/dev/zero", "Hi"], "argument -c/--conversation: /dev/zero: not a regular file"),
        (
            ["--base-url", "http://a b/v1"],
            "argument --base-url: not an http(s) URL: 'http://a b/v1': a space must",
        ),
        (["-p", "A", "-p", " "], "argument -p/--provider: an empty provider name: ' '"),
        (["-p", "http://a/v1", "--base-url", "http://b/v1"], "give a URL with --provider or with --base-url"),
        (
            ["-p", "PollinationsAI", "-p", "http://a/v1", "--base-url", "http://b/v1"],
            "give a URL with --provider or with --base-url",
        ),
    ],
)
def test_bad_usage_is_one_line_and_status_2(run_main, fake: FakeClient, argv, message) -> None:
    result = run_main(*argv)
    assert result.status == 2
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert ": error: " + message in result.err
    assert fake.calls == []


def test_empty_stdin_is_bad_usage(run_main, fake: FakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    result = run_main("-")
    assert result.status == 2
    assert "error: the prompt is empty: ''" in result.err


def test_stdin_that_is_not_utf8_is_refused(
    run_main, fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9 au lait")))
    result = run_main("-")
    assert result.status == 2
    assert result.err.count("\n") == 1
    assert "standard input is not UTF-8" in result.err
    assert "position 3" in result.err


def test_help_shows_every_option_and_examples(run_main) -> None:
    result = run_main("--help")
    assert result.status == 0
    for option in (
        "--model",
        "--provider",
        "--base-url",
        "--api-key",
        "--system",
        "--timeout",
        "--hide-reasoning",
        "--verbose",
        "examples:",
        "exit status:",
    ):
        assert option in result.out


def test_help_gives_each_option_one_line_on_an_80_column_terminal(run_main, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = run_main("--help").out
    assert [line for line in out.splitlines() if len(line) > 80] == []
    options = out.partition("positional arguments:\n")[2].partition("\n\nexamples:")[0]
    entries = re.split(r"\n(?=  \S)", options.replace("\n\noptions:", ""))
    assert len(entries) == 17  # prompt, -h and every option
    for entry in entries:  # its help: on the line of its name if that leaves room, else below
        first, *rest = entry.splitlines()
        helps = [first[24:]] if first[22:24] == "  " else []
        helps += [line[24:] for line in rest if line.startswith(" " * 24)]
        assert len(helps) == 1 and len(rest) == (0 if first[22:24] == "  " else 1), entry


def help_examples() -> list[str]:
    """The examples of --help, as it shows them."""
    examples = (messages_stream.__doc__ or "").partition("examples:\n")[2].partition("\n\n")[0]
    return [line.strip().replace("%(prog)s", "python messages_stream.py") for line in examples.splitlines()]


@pytest.mark.parametrize("example", help_examples())
def test_each_help_example_runs_as_written(
    run_main, fake: FakeClient, monkeypatch: pytest.MonkeyPatch, tmp_path, proxy_env, example: str
) -> None:
    """Split as a shell splits it, each is a command line the script takes and answers (from
    the fake client). An `echo TEXT |` before it is TEXT on stdin; another command, some text."""
    monkeypatch.chdir(tmp_path)  # -c chat.json
    words = shlex.split(example, comments=True)
    if "|" in words:
        before, words = words[: words.index("|")], words[words.index("|") + 1 :]
        piped = " ".join(before[1:]) if before[0] == "echo" else "some text"
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(piped.encode() + b"\n")))
    if ">" in words:  # into a file: the answer alone
        words = words[: words.index(">")]
    assert words[:2] == ["python", "messages_stream.py"], example
    result = run_main(*words[2:])
    assert result.status == 0, result.err
    assert "error" not in result.err and len(fake.calls) == 1
    if example.startswith("echo"):
        assert fake.calls[0]["messages"][-1]["content"] == piped


# ---- reasoning, fallback and the -v report ---------------------------------------


def test_reasoning_goes_to_stderr_never_stdout(run_main, fake: FakeClient) -> None:
    fake.scripts = [[Reasoning("Thinking"), Reasoning(" more"), "Hello"]]
    result = run_main()
    assert result.out == "Hello\n"
    assert result.err == "Thinking more"


def test_hide_reasoning_drops_it(run_main, fake: FakeClient) -> None:
    fake.scripts = [[Reasoning("Thinking"), "Hello"]]
    result = run_main("--hide-reasoning")
    assert (result.out, result.err) == ("Hello\n", "")


def test_an_error_after_reasoning_starts_a_line_of_its_own(run_main, fake: FakeClient) -> None:
    fake.scripts = [[Reasoning("Let me think about it carefully.")]]
    result = run_main("-p", "A")
    assert (
        result.err == "Let me think about it carefully.\nerror: A: the stream ended without any answer text\n"
    )


def test_an_error_after_text_on_a_terminal_starts_a_line_of_its_own(run_main, fake, monkeypatch) -> None:
    fake.scripts = [["Hello", " there", RuntimeError("cut")]]
    monkeypatch.setattr(sys, "stdout", terminal := Tty())
    assert run_main("-p", "A").status == 1
    assert terminal.getvalue() == "Hello there\n\n\nFinal accumulated text: Hello there\n"


def test_reasoning_is_dimmed_only_on_a_terminal_without_no_color(
    run_main, fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.scripts = [[Reasoning("Thinking"), "Hello"]]
    for stderr, no_color, shown in [
        (Tty(), None, "\x1b[2mThinking\x1b[0m"),
        (Tty(), "1", "Thinking"),
        (io.StringIO(), None, "Thinking"),
    ]:
        monkeypatch.setattr(sys, "stderr", stderr)
        if no_color:
            monkeypatch.setenv("NO_COLOR", no_color)
        else:
            monkeypatch.delenv("NO_COLOR", raising=False)
        assert run_main().status == 0
        assert stderr.getvalue() == shown


def test_providers_are_tried_in_order_until_one_answers(run_main, fake: FakeClient) -> None:
    fake.scripts = [RuntimeError("down"), [RuntimeError("HTTP 500")], [stall], ["Hi"]]
    result = run_main("-p", "A", "-p", "B", "-p", "C", "-p", "D", "--timeout", "0.2")
    assert [call["provider"] for call in fake.calls] == ["A", "B", "C", "D"]
    assert (result.status, result.out, result.err) == (0, "Hi\n", "")


def test_no_fallback_once_content_has_started(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hel", RuntimeError("cut")], ["never shown"]]
    result = run_main("-p", "A", "-p", "B")
    assert [call["provider"] for call in fake.calls] == ["A"]
    assert (result.status, result.out) == (1, "Hel\n")
    assert result.err == "error: A: RuntimeError: cut\n"


def test_when_all_providers_fail_each_is_named(run_main, fake: FakeClient) -> None:
    fake.scripts = [RuntimeError("down"), [stall]]
    result = run_main("-p", "A", "-p", "http://127.0.0.1:1/v1", "--timeout", "0.2")
    assert result.status == 1
    assert result.err == (
        "error: A: RuntimeError: down\nerror: http://127.0.0.1:1/v1: TimeoutError: no delta within 0.2s\n"
    )


def test_verbose_report_on_stderr_and_stdout_unchanged(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hello", " there", usage(5, 3)]]
    quiet = run_main()
    fake.calls.clear()
    loud = run_main("-v")
    assert loud.out == quiet.out
    report = loud.err
    assert "provider: FakeProvider  model: fake-model" in report
    assert "first delta: " in report and "total: " in report
    assert "deltas: 2  chars: 11  chars/s: " in report
    assert "usage: 5 prompt + 3 completion = 8 tokens" in report


def test_chars_per_second_leaves_out_a_failed_providers_wait(run_main, fake: FakeClient) -> None:
    """12 characters at once after a provider that failed after 0.5 s: far more than 24 a second."""
    fake.scripts = [[pause(0.5), RuntimeError("down")], ["Hello there!"]]
    report = run_main("-v", "-p", "A", "-p", "B").err
    rate = int(re.findall(r"chars/s: (\d+)", report)[0])
    assert rate > 12 / 0.5 * 4, report


def test_verbose_names_a_url_provider_by_its_url(run_main, fake: FakeClient) -> None:
    result = run_main("-v", "--base-url", "http://127.0.0.1:1/v1", "--api-key", "sk-hidden")
    assert "provider: http://127.0.0.1:1/v1  model: fake-model" in result.err
    assert "sk-hidden" not in result.err + result.out


def test_verbose_names_the_providers_skipped_before_the_answer(run_main, fake: FakeClient) -> None:
    fake.scripts = [RuntimeError("HTTP 500"), ["Hi"]]
    quiet = run_main("-p", "A", "-p", "B")
    assert quiet.err == ""
    fake.calls.clear()
    loud = run_main("-v", "-p", "A", "-p", "B")
    assert "skipped: A: RuntimeError: HTTP 500\n" in loud.err
    assert "provider: B  model: fake-model" in loud.err
    assert loud.out == quiet.out


def test_verbose_masks_the_password_of_every_url_provider(run_main, fake: FakeClient) -> None:
    fake.scripts = [RuntimeError("HTTP 500"), RuntimeError("HTTP 502"), ["Hi"]]
    urls = [f"http://user:secret-{n}@127.0.0.1:1/v1" for n in (1, 2, 3)]
    result = run_main("-v", *[arg for url in urls for arg in ("-p", url)])
    assert (result.status, result.err.count("skipped: ")) == (0, 2)
    assert "secret" not in result.err + result.out


def test_a_stdout_slower_than_the_timeout_is_not_provider_silence(
    run_main, fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    class SlowTerminal(io.StringIO):
        def write(self, text: str) -> int:
            time.sleep(0.3)  # a pager that is not scrolling: the whole event loop waits
            return super().write(text)

    slow = SlowTerminal()
    monkeypatch.setattr(sys, "stdout", slow)
    fake.scripts = [["Hello", " there", "!"]]
    assert run_main("--timeout", "0.2").status == 0
    assert slow.getvalue() == "Hello there!\n"


def test_verbose_shows_no_usage_when_g4f_made_it_up(run_main, fake: FakeClient) -> None:
    fake.scripts = [["Hello", " there"]]  # no usage: the fake adds g4f's estimate, as g4f does
    result = run_main("-v")
    assert "deltas: 2  chars: 11" in result.err
    assert "usage" not in result.err


def test_verbose_shows_a_finish_reason_other_than_g4f_default(run_main, fake: FakeClient) -> None:
    assert "finish reason" not in run_main("-v").err  # g4f says "stop" also when the provider said nothing
    fake.calls.clear()
    fake.scripts = [["Hello", FinishReason("length")]]
    assert "finish reason: length\n" in run_main("-v").err


def test_a_new_conversation_is_0600_whatever_the_umask(tmp_path) -> None:
    import os

    path, umask = tmp_path / "chat.json", os.umask(0)
    try:
        messages_stream.save_conversation(str(path), [{"role": "user", "content": "private"}])
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o444])
def test_a_saved_conversation_is_never_more_open_than_the_file(tmp_path, monkeypatch, mode: int) -> None:
    import json
    import os

    import messages_stream

    path = tmp_path / "chat.json"
    path.write_text("[]")
    path.chmod(mode)
    modes: list[int] = []
    real_dump = json.dump

    def dump(messages: Any, file: Any, **kwargs: Any) -> None:
        modes.append(os.stat(file.fileno()).st_mode & 0o777)  # the moment the text is written
        real_dump(messages, file, **kwargs)

    monkeypatch.setattr(messages_stream.json, "dump", dump)
    messages_stream.save_conversation(str(path), [{"role": "user", "content": "private"}])
    assert len(modes) == 1 and modes[0] & ~mode & 0o077 == 0  # no one else could read it meanwhile
    assert path.stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["chat.json"]


def test_the_new_copy_holds_the_conversation_when_it_is_synced(tmp_path, monkeypatch) -> None:
    """fsync makes durable what the file holds then: what is still in Python's buffer is lost
    in a crash, and the rename after would put an empty or torn file in place of the old one."""
    import os

    path, messages, synced = tmp_path / "chat.json", [{"role": "user", "content": "Привет " * 2000}], []

    def fsync(fd: int) -> None:
        synced.append(os.pread(fd, 1 << 20, 0))

    monkeypatch.setattr(messages_stream.os, "fsync", fsync)
    messages_stream.save_conversation(str(path), messages)
    assert synced == [path.read_bytes()] and json.loads(synced[0]) == messages


# ---- user names and passwords in URLs: hidden, the scheme and host kept --------------

PROXY = "socks5://user:pw@127.0.0.1:1080"


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() clears NO_PROXY and sets *_proxy when given a proxy: put them back after the test."""
    for name in ("NO_PROXY", "no_proxy", "G4F_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "")
        monkeypatch.setenv(name.lower(), "")
    monkeypatch.setattr(messages_stream, "PROXY_ONLY", set())  # the hook reads it: empty after


def test_the_proxy_after_an_error_keeps_its_scheme_and_host(run_main, fake: FakeClient, proxy_env) -> None:
    fake.scripts = [RuntimeError("down")]
    result = run_main("-p", "A", "--proxy", PROXY)
    assert result.err == "error: A: RuntimeError: down (proxy socks5://***@127.0.0.1:1080)\n"


def test_with_a_proxy_a_connection_around_it_is_refused_and_named(run_main, fake, proxy_env) -> None:
    """What a provider or g4f would send around the proxy, from any thread, fails, named."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]

        async def direct() -> None:
            await asyncio.get_running_loop().run_in_executor(
                None, socket.create_connection, ("127.0.0.1", port)
            )

        fake.scripts = [[direct, "never"]]
        result = run_main("-p", "A", "--proxy", "http://127.0.0.1:1080")
        assert result.err == (
            f"error: A: ConnectionRefusedError: a connection to 127.0.0.1:{port} around the proxy, refused"
            " (proxy http://127.0.0.1:1080)\n"
        )


def test_a_base_url_with_credentials_in_an_error_keeps_its_scheme(run_main, fake: FakeClient) -> None:
    fake.scripts = [RuntimeError("down")]
    result = run_main("--base-url", "http://user:pw@127.0.0.1:1/v1")
    assert result.err == "error: http://***@127.0.0.1:1/v1: RuntimeError: down\n"


def test_a_base_url_with_credentials_in_the_report_keeps_its_scheme(run_main, fake: FakeClient) -> None:
    result = run_main("-v", "--base-url", "http://user:pw@127.0.0.1:1/v1")
    assert "provider: http://***@127.0.0.1:1/v1  model: fake-model\n" in result.err
    assert "pw" not in result.err


@pytest.mark.parametrize("password", ["p/w", "p@w", "p:w", "a/b@c:d@"])
def test_a_password_with_a_slash_at_sign_or_colon_is_hidden_whole(password: str) -> None:
    text = f"socks5://user:{password}@127.0.0.1:1080"
    assert messages_stream.masked(text) == "socks5://***@127.0.0.1:1080"


def test_every_url_in_a_multi_line_text_is_masked() -> None:
    text = "skipped: http://a:b@h/v1: 407\nuser:pw@127.0.0.1:1080 refused\nprovider: https://c:d@h/v1"
    assert messages_stream.masked(text) == (
        "skipped: http://***@h/v1: 407\n***@127.0.0.1:1080 refused\nprovider: https://***@h/v1"
    )


def test_a_url_without_credentials_is_left_alone() -> None:
    text = "error: http://127.0.0.1:1/v1: down"
    assert messages_stream.masked(text) == text


def test_a_misspelt_option_quoting_a_proxy_is_masked(run_main, fake: FakeClient) -> None:
    result = run_main(f"--proxyy={PROXY}")
    assert result.status == 2 and "pw" not in result.err
    assert "unrecognized arguments: --proxyy=socks5://***@127.0.0.1:1080 (see --help)\n" in result.err


# ---- a URL that is refused says what is wrong with it ----------------------------------


def usage_error(result: Any) -> str:
    """The one line of a usage error, between "error: " and " (see --help)"."""
    assert (result.status, result.out, result.err.count("\n")) == (2, "", 1)
    return str(result.err.partition(": error: ")[2].removesuffix(" (see --help)\n"))


def test_a_proxy_without_a_port_says_the_port_is_missing(run_main) -> None:
    result = run_main("--proxy", "socks5://user:pw@127.0.0.1")
    assert usage_error(result) == "argument --proxy: not a proxy URL: 'socks5://***@127.0.0.1': no port"


def test_a_proxy_with_another_scheme_names_the_schemes_allowed(run_main) -> None:
    assert usage_error(run_main("--proxy", "ftp://127.0.0.1:21")) == (
        "argument --proxy: not a proxy URL: 'ftp://127.0.0.1:21': "
        "it must start with http://, https://, socks5:// or socks5h://"
    )


def test_a_base_url_without_a_scheme_says_so(run_main) -> None:
    assert usage_error(run_main("--base-url", "127.0.0.1:8080/v1")) == (
        "argument --base-url: not an http(s) URL: '127.0.0.1:8080/v1': it must start with http:// or https://"
    )


def test_a_base_url_without_a_host_says_so(run_main) -> None:
    result = run_main("--base-url", "http://:8080/v1")
    assert usage_error(result) == "argument --base-url: not an http(s) URL: 'http://:8080/v1': no host"


def test_a_port_that_is_not_a_number_says_so(run_main) -> None:
    assert usage_error(run_main("-p", "http://user:pw@127.0.0.1:port/v1")) == (
        "argument -p/--provider: not an http(s) URL: 'http://***@127.0.0.1:port/v1': "
        "Port could not be cast to integer value as 'port'"
    )


def test_a_port_out_of_range_says_so(run_main) -> None:
    assert usage_error(run_main("--proxy", "socks5://127.0.0.1:99999")) == (
        "argument --proxy: not a proxy URL: 'socks5://127.0.0.1:99999': Port out of range 0-65535"
    )


@pytest.mark.parametrize("password", ["p/w", "12/w", "p?w", "p#w"])
def test_a_slash_in_a_password_says_to_percent_encode_it(run_main, password: str) -> None:
    """Else the URL ends at the '/': its host would be the user name, its port the password."""
    result = run_main("--proxy", f"socks5://user:{password}@127.0.0.1:1080")
    assert usage_error(result) == (
        "argument --proxy: not a proxy URL: 'socks5://***@127.0.0.1:1080': "
        "a / ? or # in the user name or password must be written %2F %3F %23"
    )


# ---- piped text and words: the text first, then a blank line, then the words ----------


def stdin(monkeypatch: pytest.MonkeyPatch, data: bytes, tty: bool = False) -> io.BytesIO:
    """Standard input with `data`, a pipe or a terminal; returns the bytes to see what was read."""
    raw = io.BytesIO(data)
    stream = io.TextIOWrapper(raw)
    monkeypatch.setattr(stream, "isatty", lambda: tty)
    monkeypatch.setattr(sys, "stdin", stream)
    return raw


def sent(fake: FakeClient) -> str:
    return str(fake.calls[0]["messages"][-1]["content"])


def test_piped_text_then_a_blank_line_then_the_words(run_main, fake: FakeClient, monkeypatch) -> None:
    stdin(monkeypatch, b"diff --git a/x b/x\n+hello\n")
    assert run_main("Write", "a commit message for this").status == 0
    assert sent(fake) == "diff --git a/x b/x\n+hello\n\nWrite a commit message for this"


def test_an_empty_pipe_with_words_sends_the_words_alone(run_main, fake: FakeClient, monkeypatch) -> None:
    stdin(monkeypatch, b"")  # as from </dev/null, or a test runner's closed pipe
    assert run_main("Hi", "there").status == 0
    assert sent(fake) == "Hi there"


def test_a_blank_pipe_with_words_sends_the_words_alone(run_main, fake: FakeClient, monkeypatch) -> None:
    stdin(monkeypatch, b" \n\n")
    assert run_main("Hi").status == 0
    assert sent(fake) == "Hi"


@pytest.mark.parametrize("words", [["-"], ["Explain"]])
def test_a_byte_order_mark_on_piped_text_is_dropped(run_main, fake: FakeClient, monkeypatch, words) -> None:
    """Notepad and PowerShell 5 start UTF-8 with one; it is no part of the prompt."""
    stdin(monkeypatch, b"\xef\xbb\xbfcode\n")
    assert run_main(*words).status == 0
    assert sent(fake) == ("code" if words == ["-"] else "code\n\nExplain")


def test_a_dash_alone_sends_stdin_alone(run_main, fake: FakeClient, monkeypatch) -> None:
    stdin(monkeypatch, b"only this\n")
    assert run_main("-").status == 0
    assert sent(fake) == "only this"


def test_without_words_stdin_is_left_unread(run_main, fake: FakeClient, monkeypatch) -> None:
    raw = stdin(monkeypatch, b"not for the prompt")
    assert run_main().status == 0
    assert sent(fake) == "Say hello there!" and raw.tell() == 0


def test_a_terminal_is_not_read_for_words(run_main, fake: FakeClient, monkeypatch) -> None:
    raw = stdin(monkeypatch, b"typed ahead", tty=True)
    assert run_main("Hi").status == 0
    assert sent(fake) == "Hi" and raw.tell() == 0


def test_no_stdin_at_all_sends_the_words(run_main, fake: FakeClient, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)  # started with standard input closed
    assert run_main("Hi").status == 0
    assert sent(fake) == "Hi"


def test_piped_text_that_is_not_utf8_with_words_is_bad_usage(run_main, fake: FakeClient, monkeypatch) -> None:
    stdin(monkeypatch, b"caf\xe9")
    result = run_main("Explain")
    assert usage_error(result).startswith("standard input is not UTF-8: ")
    assert fake.calls == []
