#!/usr/bin/env python3
# /// script
# requires-python = ">=3.11"
# dependencies = ["g4f>=7.7.7", "aiohttp_socks>=0.8", "PySocks>=1.7.1"]
# ///
"""Stream a chat completion with g4f, printing the answer as it arrives.

examples:
  %(prog)s  # asks gpt-4: Say hello there!
  %(prog)s -s "Be brief." "Как тебя зовут?"
  echo "Write a haiku" | %(prog)s -
  git diff | %(prog)s Explain this  # the diff, then the words
  git diff | %(prog)s Write a commit message > msg.txt
  %(prog)s --base-url http://localhost:11434/v1 -m llama3.2 Hi
  %(prog)s -p http://localhost:8080/v1 -p PollinationsAI -v Hi
  %(prog)s -c chat.json Hi, I am Ada.
  %(prog)s -c chat.json "Who am I?"  # with the turn before
  %(prog)s --proxy socks5://127.0.0.1:1080 --temperature 0 Hi

On a terminal the answer is followed by a blank line and "Final accumulated
text: ..."; into a file or a pipe goes the answer alone, ending in a line break.
Reasoning, errors and the -v report go to stderr.
exit status: 0 done, 1 failed, 2 bad usage, 130 Ctrl-C, 143 SIGTERM
"""

from __future__ import annotations

import os
import signal
import sys


def stopped(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM while the modules load, before run() takes over: the documented
    line and exit status, not a traceback from inside an import."""
    os.write(2, b"interrupted\n" if signum == signal.SIGINT else b"terminated\n")
    os._exit(128 + signum)


# ruff: noqa: E402 - the handler comes before the imports below, which take most of the start-up
CAUGHT = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # as the run began
CAUGHT = {s: h for s, h in CAUGHT.items() if h in (signal.default_int_handler, signal.SIG_DFL)}
try:  # not those ignored (`cmd &` ignores SIGINT): ignored they stay
    for caught in CAUGHT:
        signal.signal(caught, stopped)
except ValueError:  # imported outside the main thread: nothing to do
    pass

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import re
import shutil
import socket
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

# ---- the streaming core: copy from here to "end of the core", with the imports the README names ----


class StreamError(Exception):
    """The stream failed: one arg per provider tried, "NAME: what went wrong" (API key
    masked); the last provider's exception is the __cause__."""


class Idle:
    """Awaits a chunk that had to wait (`pending.send(None)` gave `yielded`), one timer a wait. Each
    cancel thrown in passes here: level-triggered without polling, as curl_cffi swallows one. As in
    asyncio.timeout, own cancels are taken back; only a count above the wait's start is the task's."""

    task: Any = None
    cancelled: Any = None  # the args of a CancelledError thrown in (not it: no cycle)

    def on(self, pending: Any, yielded: Any, timeout: float) -> Any:
        self.inner, self.first, self.timeout, self.task = pending, [yielded], timeout, asyncio.current_task()
        mark = self.task.cancelling() - getattr(self.task, "_must_cancel", False)  # one asked, not delivered
        self.mark, self.cancels, self.cancelled, self.fired = mark, 0, None, False
        self.handle = asyncio.get_running_loop().call_later(timeout, self.cancel, True)
        return self

    def __await__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return self.first.pop() if self.first else self.step(self.inner.send, None)

    def throw(self, exc: Any, *rest: Any) -> Any:
        if isinstance(exc, asyncio.CancelledError) and (self.cancelled is None or exc.args):
            self.cancelled = exc.args  # a message (the task's: ours have none) wins over none
        return self.step(self.inner.throw, exc, *rest)

    def step(self, resume: Any, *args: Any) -> Any:
        try:
            yielded = resume(*args)
        except BaseException as exc:  # StopIteration too: the chunk
            self.handle.cancel()
            task, self.task = self.task, None
            for _ in range(self.cancels):
                task.uncancel()
            if self.fired and task.cancelling() <= self.mark:
                raise TimeoutError(f"no delta within {self.timeout:g}s") from None
            if self.cancelled is not None and task.cancelling() > self.mark:  # the task's: it stands
                raise asyncio.CancelledError(*self.cancelled) from None
            if isinstance(exc, asyncio.CancelledError):  # nobody cancelled the task: the provider's own
                raise ConnectionError("the provider's stream was cancelled") from exc
            raise
        if self.cancelled is not None and (self.fired or self.task.cancelling() > self.mark + self.cancels):
            asyncio.get_running_loop().call_later(0.01, self.cancel)  # swallowed: again, until it lets go
        return yielded

    def cancel(self, expired: bool = False) -> None:
        if self.task is not None:
            self.fired, self.cancels = self.fired or expired, self.cancels + 1
            self.task.cancel()


async def end_transfer(stream: Any) -> None:
    """Cancels a wait on the provider, within 64 chunks read: closed at a yield, curl_cffi goes on."""
    if getattr(asyncio.get_running_loop(), "_asyncgens_shutdown_called", False):
        return  # as the loop shuts down, it closes every generator itself
    with contextlib.suppress(Exception):  # StopAsyncIteration, or the timeout (ours)
        for _ in range(64):
            with contextlib.suppress(StopIteration):  # a chunk already read: the next
                await Idle().on(pending := stream.__anext__(), pending.send(None), 0)
        await stream.aclose()


def follow(old: Any, new: Any, callback: Any) -> Any:
    """Moves a done-callback from task `old` to task `new` (either may be None); returns `new`."""
    if old is not None:
        old.remove_done_callback(callback)
    if new is not None:
        new.add_done_callback(callback)
    return new


def one_line(text: str, secret: str | None) -> str:
    """A failure as one line, the secret masked (also as a server may quote it: trimmed), and a URL's
    user and password: all of a word up to its last @, after the scheme (a password may hold / @ :)."""
    for part in filter(None, {secret, (secret or "").strip()}):
        text = text.replace(part, "***")
    text = re.sub(r"(?<!\S)(\S*?://)?\S*@", r"\1***@", " ".join(text.split()))
    return re.sub(r"(Error \d+: )\1+", r"\1", text)  # g4f: "Error 400: Error 400: "


# The task reading, looked up at every chunk: asyncio.current_task is C from 3.12 on, where the dict
# below may no longer be kept; on 3.11 it is Python code around that dict, a quarter of a chunk's cost.
current_task: Any = asyncio.current_task
if not isinstance(current_task, type(len)):  # 3.11
    current_task = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]


class resilient_stream:  # lower case: called like a function, as contextlib.aclosing is
    """A drop-in for `client.chat.completions.create(stream=True, **request)` yielding g4f's chunks,
    with fallback in order through `providers` (g4f names, OpenAI URLs, None: g4f's choice) until
    one sends a delta, an idle `timeout` per wait, and StreamError for any failure. Then `provider`,
    `failures` and `first_delta` (seconds from the first read to the first delta) tell. Its generator
    holds its __dict__, not it: no cycle."""

    __slots__ = ("__dict__", "__weakref__", "chunks")

    def __init__(
        self, client: Any, *, providers: Any = (None,), timeout: float = 120.0, api_key: Any = None, **request
    ) -> None:
        bad = type(providers) is str or "provider" in request or not request.pop("stream", 1)
        if bad or not 0 < timeout < float("inf"):  # not nan: a NaN deadline corrupts the loop's timers
            raise TypeError("resilient_stream() streams from providers=[...], a list, in 0 < timeout < inf s")
        if api_key and getattr(client, "api_key", None) is None:  # else g4f sends the client's
            request["api_key"] = api_key
        api_key = api_key or getattr(client, "api_key", None)  # masked in every failure
        self.provider, self.first_delta, self.failures = None, 0.0, list[str]()
        self.chunks = self.stream(vars(self), client, providers, timeout, api_key, request)

    def __aiter__(self) -> Any:  # like create(stream=True): one async generator, made once
        return self.chunks

    def __anext__(self) -> Any:
        return self.chunks.__anext__()

    def aclose(self) -> Any:
        return self.chunks.aclose()

    @staticmethod
    async def stream(seen: Any, client: Any, providers: Any, timeout: float, key: Any, request: Any) -> Any:
        cause, reader, started, loop = None, None, time.perf_counter(), asyncio.get_running_loop()
        stream: Any = None  # the provider's

        # The task we last yielded to failed, or was cancelled, with us at a yield: aiohttp.web keeps
        # such a frame (and us) in a cycle. Until then, this callback on it keeps the provider's stream
        # from the GC. One that returned (a task a chunk, as wait_for makes on 3.11) is no letting go.
        def left(task: Any) -> None:
            nonlocal reader
            failed = task.cancelled() or getattr(task, "_exception", None) is not None  # not retrieved
            if failed and task is reader and getattr(stream, "ag_frame", None) and not stream.ag_running:
                reader = None  # a task that reads on finds the answer cut: a failure, not an end
                asyncio.ensure_future(end_transfer(stream))  # noqa: RUF006 - held by Idle's timer

        for spec in providers:
            provider, stream, shown, answered = spec, None, False, False
            if isinstance(spec, str) and "://" in spec:
                from g4f.client import create_custom_provider

                # models: else g4f first asks for the server's models, blocking and untimed
                provider = create_custom_provider(spec, key, name="Custom", models=[request.get("model", "")])
            try:
                stream = client.chat.completions.create(provider=provider, stream=True, **request)
                next_chunk = stream.__anext__  # bound once: a chunk costs less
                while True:
                    try:  # a chunk already read, else what it waits on
                        chunk = (pending := next_chunk()).send(None)
                        chunk = await Idle().on(pending, chunk, timeout)  # one a wait: no stale timer
                    except StopIteration as ready:
                        chunk = ready.value
                    except StopAsyncIteration:
                        break
                    if not answered and chunk.choices:  # until the answer starts: has it?
                        delta = chunk.choices[0].delta
                        if delta.content or delta.reasoning or delta.tool_calls:
                            if not shown:
                                seen.update(provider=spec, first_delta=time.perf_counter() - started)
                            shown, answered = True, bool(delta.content or delta.tool_calls)
                    if (task := current_task(loop)) is not reader:  # a new reader: its end, ours
                        reader = follow(reader, task, left)
                    yield chunk
                if answered and reader:
                    return
                failure, cause = "the stream ended without any answer text", None
                if answered:  # no reader: the task it was left to ended, and the transfer with it
                    failure = "the task reading it ended first"
            except Exception as exc:
                failure, cause = f"{type(exc).__name__}: {exc}", exc
            finally:  # no callback left on a task that reads for days; then, if left at a yield,
                reader = follow(reader, None, left)  # end it in a task of its own, as a cancel inside
                if getattr(stream, "ag_frame", None):  # aclose() leaves it marked as running on 3.11-3.12
                    await asyncio.ensure_future(end_transfer(stream))
            who = getattr(spec, "__name__", spec or "g4f's automatic choice")
            seen["failures"].append(one_line(f"{who}: {failure}", key))
            if shown:
                break  # the caller has seen this provider's output: another's would not continue it
        raise StreamError(*seen["failures"]) from cause


# ---- end of the core ----------------------------------------------------------------------

DEFAULT_PROMPT = "Say hello there!"
ROLES = ("system", "user", "assistant")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        """Bad usage is one line on stderr and exit status 2, any URL in it masked."""
        self.exit(2, f"{self.prog}: error: {masked(message)} (see --help)\n")


def masked(text: str) -> str:
    """`text` with the user name and password of every URL in it as ***, its scheme and host
    kept: all of a word up to its last @, after the scheme, as a password may hold / @ or :."""
    return re.sub(r"(?<!\S)(\S*?://)?\S*@", r"\1***@", text)


def url(value: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """A URL with one of `schemes`, a host and a valid port; a proxy's must have a port.
    Else the usage error says what is wrong (Parser.error masks the user and password)."""
    proxy = "socks5" in schemes
    try:
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            *others, last = (f"{scheme}://" for scheme in schemes)
            wrong = f"it must start with {', '.join(others)} or {last}"
        elif any(c.isspace() for c in value):  # else a password's part after it is not masked
            wrong = "a space must be written %20"
        elif "@" in value and "@" not in parts.netloc:  # else the user name is taken for the host
            wrong = "a / ? or # in the user name or password must be written %2F %3F %23"
        elif not parts.hostname:
            wrong = "no host"
        elif not parts.port and proxy:  # .port first: it checks the port of every URL
            wrong = "no port"
        else:
            return value
    except ValueError as exc:  # the port is not a number, or out of range, ...
        wrong = str(exc)
    hidden = re.sub(r"(://).*@", r"\1***@", value)  # up to the last @, spaces and all
    raise argparse.ArgumentTypeError(f"not {'a proxy' if proxy else 'an http(s)'} URL: {hidden!r}: {wrong}")


def name(value: str) -> str:
    """A provider's name, not blank (`-p "$PROVIDER"` with the variable unset)."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"an empty provider name: {value!r}")
    return value


def read_stdin() -> str:
    """Standard input as UTF-8, less the line break that ends it. Ctrl-C and SIGTERM stop the
    read at once: under asyncio's own handlers, the read would go on until end of input."""
    stop = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: stopped}
    handlers = {s: signal.signal(s, stop[s]) for s in CAUGHT}  # those not ignored
    try:
        return sys.stdin.buffer.read().decode("utf-8-sig").removesuffix("\n").removesuffix("\r")
    finally:
        for caught, handler in handlers.items():
            signal.signal(caught, handler)


def read_conversation(args: argparse.Namespace) -> list[Any]:
    """The messages in the -c file ([] before the first turn), which this run holds while
    `args` lives: a second run at once fails before it sends anything, as a turn it stored
    would have been asked without this run's. flock (POSIX) is dropped however a run ends."""
    import fcntl  # here: on Windows, -c alone is refused

    path = args.conversation = os.path.realpath(args.conversation)  # a link: the file it names
    if os.path.exists(path) and not os.path.isfile(path):  # a folder, /dev/zero: never read
        raise ValueError("not a regular file")
    args.lock = open(f"{path}.lock", "a")  # noqa: SIM115 - held, never written
    fcntl.flock(args.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: another run holds it
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as file:
        messages = json.load(file)
        if not isinstance(messages, list):
            raise ValueError("not a JSON list of messages")
        for n, m in enumerate(messages, 1):
            if not (isinstance(m, dict) and m.get("role") in ROLES and type(m.get("content")) is str):
                raise ValueError(f"message {n} is not {{role: system|user|assistant, content: text}}")
        return messages
    return []


def save_conversation(path: str, messages: list[Any]) -> None:
    """Replace `path` whole or not at all: a new file beside it (private, never a link that was
    there), given the file's permissions, written to disk, then renamed over it."""
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=os.path.basename(path))
    try:
        with contextlib.suppress(FileNotFoundError):
            shutil.copymode(path, temp)
        with open(fd, "w", encoding="utf-8") as file:
            json.dump(messages, file, ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as exc:
        os.unlink(temp)
        raise OSError(f"could not save {path}: {exc}") from None
    except BaseException:  # never a stray copy beside it
        os.unlink(temp)
        raise


PROXY_ONLY: set[Any] = set()  # with a proxy: its addresses, the only ones this process connects to


def proxy_only(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook: once a run has a proxy, a connection from any of the process's Python
    sockets (its threads' too) to anywhere but the proxy is refused, and the error names it."""
    address = args[1] if event == "socket.connect" else None
    if isinstance(address, tuple) and PROXY_ONLY and address[:2] not in PROXY_ONLY:
        raise ConnectionRefusedError(f"a connection to {address[0]}:{address[1]} around the proxy, refused")


def only_through(proxy: str) -> None:
    """From here on, what `requests` sends (g4f's provider and model lists: g4f gives it no
    proxy) goes through `proxy`, and any other connection around it is refused. libcurl's
    sockets are not Python's: it reads the same variables as `requests`."""
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = ""  # else libcurl skips even this proxy for them
    for variable in ("http_proxy", "https_proxy", "all_proxy"):
        os.environ[variable] = os.environ[variable.upper()] = proxy
    parts = urlsplit(proxy)
    try:
        addresses = socket.getaddrinfo(parts.hostname, parts.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OSError(f"the proxy's host {parts.hostname}: {exc}") from None
    if not PROXY_ONLY:  # once: a hook stays for the life of the process
        sys.addaudithook(proxy_only)
    PROXY_ONLY.update(address[4][:2] for address in addresses)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line; `-` as the prompt reads it from standard input, and words after
    piped text are sent after it, with a blank line between."""
    first, _, examples = (__doc__ or "").partition("\n\n")
    if sys.argv[0].endswith(".py"):  # examples that run as written, the file's mode aside
        examples = examples.replace("%(prog)s", "python %(prog)s")
    parser = Parser(description=first, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("prompt", nargs="*", help="the message, after any piped text; - reads stdin alone")
    add("-m", "--model", default="gpt-4", metavar="NAME", help="the model (default: gpt-4)")
    add(
        "-p",
        "--provider",
        action="append",
        type=lambda v: url(v) if "://" in v else name(v),
        metavar="NAME|URL",
        help="g4f provider or base URL; repeat to fall back in order",
    )
    add("--base-url", type=url, metavar="URL", help="an OpenAI-compatible endpoint, e.g. Ollama's")
    add("--api-key", default=os.getenv("G4F_API_KEY"), metavar="KEY", help="API key (default: $G4F_API_KEY)")
    add("-s", "--system", metavar="TEXT", help="a system message, sent first (replaces a stored one)")
    add("--timeout", type=float, default=120.0, metavar="SECONDS", help="longest wait for each delta (120)")
    add("-c", "--conversation", metavar="FILE", help="JSON messages to send first; gets the new turn")
    # aiohttp_socks is a dependency: g4f over aiohttp (a plain `pip install g4f`) needs it for any proxy.
    proxy = ("http", "https", "socks5", "socks5h")
    add(
        "--proxy",
        type=lambda v: url(v, proxy),
        default=os.getenv("G4F_PROXY") or None,
        metavar="URL",
        help="http(s):// or socks5(h):// proxy (default: $G4F_PROXY)",
    )
    add("--temperature", type=float, metavar="T", help="from 0 to 2 (default: the provider's)")
    add("--max-tokens", type=int, metavar="N", help="at most N tokens (g4f also stops after N chunks)")
    add("--hide-reasoning", action="store_true", help="drop the model's reasoning (else shown on stderr)")
    add("-v", "--verbose", action="store_true", help="report provider, timing and usage on stderr")
    add("-i", "--interactive", action="store_true", help="a chat: each line a turn; Ctrl-C stops an answer")
    add("-a", "--attach", action="append", metavar="FILE", help="an image sent with the (first) prompt")
    add("--list-providers", action="store_true", help="g4f's provider names, those needing no API key first")
    args = parser.parse_args(argv)
    if args.interactive and (args.prompt or os.name == "nt"):  # Windows: no loop.add_signal_handler()
        parser.error("-i takes no prompt: type each one at the > prompt" if args.prompt else "-i needs POSIX")
    words = " ".join(args.prompt)  # several words need no quotes
    try:
        if words == "-":
            args.prompt = read_stdin()
        elif args.prompt and sys.stdin and not sys.stdin.isatty():  # `git diff | messages_stream.py Explain`
            args.prompt = "\n\n".join(part for part in (read_stdin(), words) if part.strip()) or words
        else:  # no words, or a terminal (its read would wait for Ctrl-D): stdin is left alone
            args.prompt = words if args.prompt else DEFAULT_PROMPT
    except UnicodeDecodeError as exc:
        parser.error(f"standard input is not UTF-8: {exc}")
    for flag, ok, want in (
        ("timeout", math.isfinite(args.timeout) and args.timeout > 0, "a positive number of seconds"),
        ("temperature", args.temperature is None or 0 <= args.temperature <= 2, "from 0 to 2"),
        ("max_tokens", args.max_tokens is None or args.max_tokens > 0, "1 or more"),
    ):
        if not ok:
            parser.error(f"argument --{flag.replace('_', '-')}: must be {want}, got {getattr(args, flag)}")
    if args.conversation is not None and not args.conversation.strip():
        parser.error(f"argument -c/--conversation: an empty file name: {args.conversation!r}")
    try:
        args.prompt.encode()
    except UnicodeEncodeError:  # a byte in the words that is not UTF-8 (held as a surrogate)
        parser.error("the prompt is not UTF-8")
    if not args.prompt.strip():
        parser.error(f"the prompt is empty: {args.prompt!r}")
    if args.proxy and urlsplit(args.proxy).scheme == "https" and not importlib.util.find_spec("curl_cffi"):
        parser.error(
            "argument --proxy: g4f runs over aiohttp here (no curl_cffi), which cannot use an https:// "
            "proxy: use http:// or socks5://, or install curl_cffi"
        )
    if args.base_url and args.provider and any("://" in p for p in args.provider):
        parser.error("give a URL with --provider or with --base-url, not both")
    args.media = read_attachments(parser, args.attach or [])
    try:
        args.history = read_conversation(args) if args.conversation else []
    except BlockingIOError:
        parser.exit(1, f"error: {args.conversation} is in use by another run\n")
    except (OSError, ValueError, ImportError) as exc:  # ImportError: no fcntl (Windows)
        parser.error(f"argument -c/--conversation: {args.conversation}: {exc}")
    return args


def report(
    stream: resilient_stream,
    last: Any,
    messages: list[Any],
    parts: list[str],
    started: float,
    tried: list[float],
) -> None:
    """The -v report on stderr: who answered (and who failed first), how fast, how much (chars/s
    from when the answering provider was asked, `tried[-1]`), and the finish reason and usage
    when the provider gave them (g4f fills in "stop" and an estimate)."""
    ended, chars, usage = time.perf_counter(), sum(map(len, parts)), last.usage
    lines = [f"skipped: {failure}" for failure in stream.failures] + [
        f"provider: {stream.provider or last.provider}  model: {last.model}",
        f"first delta: {stream.first_delta:.3f}s  total: {ended - started:.3f}s",
        f"deltas: {len(parts)}  chars: {chars}  chars/s: {chars / (ended - tried[-1]):.0f}",
    ]
    if last.choices and last.choices[0].finish_reason not in (None, "stop"):
        lines.append(f"finish reason: {last.choices[0].finish_reason}")
    with contextlib.suppress(ImportError):  # g4f's estimate: 4 bytes a token
        from g4f.tools.run_tools import caculate_prompt_tokens

        made_up = caculate_prompt_tokens(messages), sum(round(len(p.encode()) / 4) for p in parts)
        usage = None if usage and (usage.prompt_tokens, usage.completion_tokens) == made_up else usage
    if usage:
        lines.append(f"usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion")
        lines[-1] += f" = {usage.total_tokens} tokens"
    print(masked("\n" + "\n".join(lines)), file=sys.stderr)


def read_attachments(parser: Parser, paths: list[str]) -> list[tuple[bytes, str]] | None:
    """-a: each file as g4f's create() takes it, (data, filename). A file that cannot be read,
    or that g4f would drop unsent (neither an image nor audio to it), is bad usage."""
    media = []
    for path in paths:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as exc:
            parser.error(f"argument -a/--attach: cannot read {path}: {exc.strerror or exc}")
        media.append((data, os.path.basename(path)))
        if not sendable(*media[-1]):
            parser.error(f"argument -a/--attach: {path}: not an image or audio file g4f can send")
    return media or None


def sendable(data: bytes, name: str) -> bool:
    """Whether g4f sends this file, as it drops others unsent (is_valid_media: by name, else first
    bytes) or fails on them (is_data_an_media: an image must be one by its first bytes too)."""
    try:
        from g4f.image import is_data_an_media, is_valid_media
    except ImportError:  # without g4f, main() says what to install
        return True
    with contextlib.suppress(ValueError):  # "Invalid image format (from magic code)"
        return bool(data and is_valid_media(data, name) and is_data_an_media(data, name))
    return False


def list_providers() -> int:
    """--list-providers: the names -p takes of g4f's working providers, one a line on stdout,
    those that need no API key first; a line on stderr says where the others start."""
    from g4f.Provider import ProviderUtils

    working = []
    for name in ProviderUtils.convert.keys():  # noqa: SIM118 - g4f's mapping loads a provider per item
        with contextlib.suppress(Exception):  # one that fails to load (offline, ...) is left out
            if (provider := ProviderUtils.convert[name]).working:
                working.append((bool(provider.needs_auth), name))
    keyless = sum(not needs_key for needs_key, _ in working)
    print("".join(f"{name}\n" for _, name in sorted(working, key=lambda w: (w[0], w[1].lower()))), end="")
    print(f"{keyless} need no API key, listed first; {len(working) - keyless} need one", file=sys.stderr)
    return 0


def read_line() -> str | None:
    """The next line typed at the `> ` prompt, None at Ctrl-D, "" for one to drop. Ctrl-C drops the
    text typed (as readline tells), else raises KeyboardInterrupt, and SIGTERM CancelledError, as
    the loop's own handlers would not stop input(). A line that is not UTF-8 is refused."""
    wanted: dict[Any, Any] = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: stop_reading}
    handlers = {s: signal.signal(s, h) for s, h in wanted.items() if s in CAUGHT}
    try:
        line = input("> ")
        line.encode()  # UnicodeEncodeError: a byte that is not UTF-8, held as a surrogate
        return line
    except (EOFError, KeyboardInterrupt, UnicodeError, asyncio.CancelledError) as exc:
        print()  # what follows on a line of its own
        if isinstance(exc, UnicodeError):
            print("error: the line is not UTF-8: not sent", file=sys.stderr)
            return ""
        if isinstance(exc, EOFError):
            return None
        readline = sys.modules.get("readline")
        if isinstance(exc, KeyboardInterrupt) and readline and readline.get_line_buffer():
            return ""
        raise
    finally:
        for caught, handler in handlers.items():
            signal.signal(caught, handler)


def stop_reading(signum: int, frame: Any) -> None:
    """SIGTERM at the prompt: the session ends as a cancelled one does (143)."""
    raise asyncio.CancelledError


async def interruptible(answer: Any) -> int | None:
    """Awaits one turn, its status; Ctrl-C cancels it alone (the core releases the provider's
    connection): None."""
    task, loop = asyncio.ensure_future(answer), asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        if (session := asyncio.current_task()) and session.cancelling():  # the session's own
            raise
        print("stopped: this turn is left out of the conversation", file=sys.stderr)
        return None
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def chat(client: Any, args: argparse.Namespace) -> int:
    """-i: each line typed is a turn of one conversation, kept in args.history (and -c). Ends
    at Ctrl-D (0) or at Ctrl-C at the prompt (130); -a files go with each turn until one is whole."""
    with contextlib.suppress(ImportError):  # where it exists: line editing, and ↑ for earlier lines
        import readline  # noqa: F401
    while (line := read_line()) is not None:
        if line.strip():
            args.prompt = line
            if await interruptible(turn(client, args)) == 0:
                args.media = None  # sent with a whole turn: the model has seen it
    return 0


async def main(argv: list[str] | None = None) -> int:
    """The documentation's example with a command line around it; returns the exit status:
    0 done, 1 failed, 2 bad usage (run() adds 130 for Ctrl-C)."""
    try:
        args = parse_args(argv)
        import g4f.debug
        from g4f.client import AsyncClient  # here: --help and bad usage need no g4f

        g4f.debug.version_check = False  # else a provider may have g4f print its own line on stdout
    except SystemExit as exc:
        return int(exc.code or 0)
    except ImportError as exc:
        print(f"error: {exc}: install it with `pip install -r requirements.txt`", file=sys.stderr)
        return 1
    if args.list_providers:
        return list_providers()
    if args.proxy:
        only_through(args.proxy)
    client = AsyncClient(api_key=args.api_key, base_url=args.base_url if args.provider else None)
    return await (chat(client, args) if args.interactive else turn(client, args))


async def turn(client: Any, args: argparse.Namespace) -> int:
    """The documentation's loop, for one turn: args.prompt after args.history, streamed; a whole
    answer is kept in args.history (and the -c file), for a chat's next turn. 0, or 1: failed."""
    messages = [*args.history, {"role": "user", "content": args.prompt}]
    if args.system:  # in place of the conversation's own system message, else first
        messages[: messages[0]["role"] == "system"] = [{"role": "system", "content": args.system}]
    asked = [dict(m) for m in messages]  # to store: g4f edits the messages it sends, in place
    request = {
        k: v for k in ("proxy", "temperature", "max_tokens", "media") if (v := getattr(args, k)) is not None
    }
    providers, dim = args.provider or [args.base_url], sys.stderr.isatty() and not os.getenv("NO_COLOR")
    terminal, tried = sys.stdout.isatty(), list[float]()  # the final line is for a person to read

    def timed(providers: list[Any]) -> Any:  # the core asks for the next provider once one failed
        for provider in providers:
            tried.append(time.perf_counter())
            yield provider

    stream = resilient_stream(
        client,
        providers=timed(providers),
        timeout=args.timeout,
        api_key=args.api_key,
        **request,
        model=args.model,
        messages=messages,
    )
    parts: list[str] = []  # joined once at the end: linear, however long the answer
    started, chunk, last = time.perf_counter(), None, ("\n", sys.stdout)  # the last text printed, where
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                content = str(chunk.choices[0].delta.content)  # may be Sources, not a str
                parts.append(content)
                print(content, end="", flush=True)
                last = content, sys.stdout
            elif chunk.choices and chunk.choices[0].delta.reasoning and not args.hide_reasoning:
                reasoning = str(chunk.choices[0].delta.reasoning)  # to stderr, dimmed on a terminal
                print(f"\x1b[2m{reasoning}\x1b[0m" if dim else reasoning, end="", flush=True, file=sys.stderr)
                last = reasoning, sys.stderr
    except StreamError as exc:
        if not last[0].endswith("\n") and (terminal or last[1] is sys.stderr or one_file()):  # the error
            print(file=last[1], flush=True)  # on a line of its own; a file alone gets the answer as it came
            last = "\n", last[1]
        via = f" (proxy {masked(args.proxy)})" if args.proxy else ""
        print("".join(f"error: {masked(line)}{via}\n" for line in exc.args), end="", file=sys.stderr)
        if None in providers and not parts:  # the default failed, offline perhaps: what else to try
            hint = "name a provider with -p, or point --base-url at a server you run"
            print(f"hint: {hint} (README: Try it without a network)", file=sys.stderr)
        return 1
    finally:
        text = "".join(parts)
        if args.interactive:  # a chat shows each answer once, and the next prompt on a line of its own
            if not last[0].endswith("\n"):
                print(flush=True)
        elif terminal:
            print("\n\nFinal accumulated text:", text, flush=True)
        elif text and last != ("\n", sys.stdout) and not text.endswith("\n"):  # into a file or a pipe:
            print(flush=True)  # the answer alone, once, ending as a text file does
    args.history = [*asked, {"role": "assistant", "content": text}]  # a whole answer only
    if args.conversation:
        save_conversation(args.conversation, args.history)
    if args.verbose:
        report(stream, chunk, messages, parts, started, tried)
    return 0


def one_file() -> bool:
    """Whether stdout and stderr are one file (`> log 2>&1`), where an error must start a line."""
    with contextlib.suppress(OSError):  # closed, or not a file at all
        return os.path.sameopenfile(sys.stdout.fileno(), sys.stderr.fileno())
    return False


async def sigterm_cancels(coro: Any) -> Any:
    """Awaits `coro` in a task that SIGTERM cancels, as asyncio.run's Ctrl-C cancels it: from the
    signal handler itself, so that it counts even while g4f blocks the event loop."""
    task, loop = asyncio.current_task(), asyncio.get_running_loop()

    def terminate(signum: int, frame: Any) -> None:
        task.cancel()  # type: ignore[union-attr]
        loop.call_soon_threadsafe(lambda: None)  # wake the loop, as asyncio.run does for Ctrl-C

    if task and signal.SIGTERM in CAUGHT:  # unless it was ignored
        signal.signal(signal.SIGTERM, terminate)
    return await coro


def run() -> int:
    """The command line's entry point: main() plus Ctrl-C (130), SIGTERM (143), a closed stdout."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a terminal that cannot show every character
    try:
        if signal.SIGINT in CAUGHT:  # from here asyncio.run's own handler, which cancels main()
            signal.signal(signal.SIGINT, signal.default_int_handler)
        return asyncio.run(sigterm_cancels(main()))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except asyncio.CancelledError:  # SIGTERM: main() printed what had arrived
        print("terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Python's docs show,
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else exit flushes into it
        return 1
    except OSError as exc:  # saving the conversation: the disk is full, ...
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
with contextlib.suppress(ValueError):  # imported: the handlers it found, back
    for caught, handler in CAUGHT.items():
        signal.signal(caught, handler)
