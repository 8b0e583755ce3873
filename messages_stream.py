#!/usr/bin/env python3
# /// script
# requires-python = ">=3.11"
# dependencies = ["g4f>=8.8.6"]
# ///
"""Stream a chat completion with g4f, printing each piece of the answer as it arrives.

examples:
  python messages_stream.py                    # asks gpt-4: Say hello there!
  python messages_stream.py "Как тебя зовут?"
  echo "Write a haiku" | python messages_stream.py -
  python messages_stream.py --base-url http://localhost:11434/v1 -m llama3.2 -s "Be brief." "Hi"
  python messages_stream.py -p http://localhost:8080/v1 -p PollinationsAI --timeout 20 -v "Hi"

The answer goes to stdout, then a blank line and "Final accumulated text: ...".
Reasoning, errors and the -v report go to stderr.
exit status: 0 done, 1 failed, 2 bad usage, 130 interrupted
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, TextIO
from urllib.parse import urlsplit

from g4f.client import AsyncClient, create_custom_provider

DEFAULT_PROMPT = "Say hello there!"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        """Bad usage is one line on stderr and exit status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def http_url(value: str) -> str:
    """An http(s) URL with a host and a valid port."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad URL {value!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value


def url_or_name(value: str) -> str:
    """A provider name, or an OpenAI-compatible base URL."""
    return http_url(value) if "://" in value else value


def seconds(value: str) -> float:
    """A positive, finite number of seconds."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {value!r}")
    return number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line; `-` as the prompt reads it from standard input."""
    first, _, examples = (__doc__ or "").partition("\n\n")
    parser = Parser(description=first, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add(
        "prompt",
        nargs="?",
        default=DEFAULT_PROMPT,
        help=f"the user message, - for stdin ({DEFAULT_PROMPT!r})",
    )
    add("-m", "--model", default="gpt-4", help="the model (default: gpt-4)")
    add(
        "-p",
        "--provider",
        action="append",
        type=url_or_name,
        metavar="NAME|URL",
        help="a g4f provider name or OpenAI-compatible base URL; repeat to fall back in that order",
    )
    add("--base-url", type=http_url, metavar="URL", help="an OpenAI-compatible endpoint, e.g. Ollama's")
    add("--api-key", default=os.environ.get("G4F_API_KEY"), help="API key (default: $G4F_API_KEY)")
    add("-s", "--system", help="a system message, sent before the prompt")
    add("--timeout", type=seconds, default=120.0, metavar="SECONDS", help="longest wait for each delta (120)")
    add("--hide-reasoning", action="store_true", help="drop the model's reasoning (else shown on stderr)")
    add("-v", "--verbose", action="store_true", help="report provider, timing and usage on stderr")
    args = parser.parse_args(argv)
    if args.prompt == "-":
        try:
            args.prompt = sys.stdin.buffer.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            parser.error(f"standard input is not UTF-8: {exc}")
    if not args.prompt.strip():
        parser.error(f"the prompt is empty: {args.prompt!r}")
    if args.base_url and args.provider and any("://" in p for p in args.provider):
        parser.error("give a URL with --provider or with --base-url, not both")
    return args


class Watchdog:
    """Cancels the running task after `timeout` seconds without progress, and
    keeps cancelling a task that is being cancelled until it lets go.

    Why not asyncio.timeout: with curl_cffi installed, g4f closes a stalled stream
    by awaiting the end of the transfer (curl_cffi's Response.aclose), which
    swallows one cancellation. A single cancel, from a timeout or from Ctrl-C in
    asyncio.run, then hangs until the process is killed. A periodic check also
    costs nothing per chunk, where asyncio.wait_for would start a task per chunk.
    """

    TICK = 0.05

    def __init__(self, timeout: float) -> None:
        task = asyncio.current_task()
        assert task is not None, "runs inside a task"
        self.loop, self.task, self.timeout = asyncio.get_running_loop(), task, timeout
        self.message = f"no delta within {timeout:g}s (--timeout)"
        self.cancels = 0  # our cancellations that the task has not caught yet
        self.reset()
        self.handle = self.loop.call_later(self.TICK, self._tick)

    def reset(self) -> None:
        """Progress: the next deadline is `timeout` seconds from now."""
        self.deadline = self.loop.time() + self.timeout

    def _tick(self) -> None:
        if self.task.done():
            return
        if self.task.cancelling() or self.loop.time() >= self.deadline:
            self.cancels += 1
            self.task.cancel()
        self.handle = self.loop.call_later(self.TICK, self._tick)

    def caught(self) -> bool:
        """Call on CancelledError: True when it was only this watchdog's timeout,
        which is then undone so the task can go on; False for a real cancel."""
        for _ in range(self.cancels):
            self.task.uncancel()
        timed_out, self.cancels = self.cancels > 0, 0
        self.reset()
        return timed_out and not self.task.cancelling()

    def close(self) -> None:
        self.handle.cancel()


class StreamError(Exception):
    """A failure already put in words: one line (an arg) per provider tried."""


def provider_for(spec: str | None, api_key: str | None, model: str) -> Any:
    """A g4f provider for a name or for an OpenAI-compatible base URL."""
    if spec and "://" in spec:
        # models=[model]: without it, g4f first asks the server for its model list
        # with a blocking, untimed request that neither --timeout nor Ctrl-C stops.
        return create_custom_provider(spec, api_key, name="Custom", models=[model])
    return spec  # g4f resolves a name itself, or picks one for None


def label(provider: Any) -> str:
    """How to name a provider to the user: a URL provider by its URL."""
    return str(getattr(provider, "url", provider or "g4f's automatic choice"))


def one_line(exc: BaseException, secret: str | None = None) -> str:
    """An exception as one line, with the API key masked."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text.replace(secret, "***") if secret else text


async def replay(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The stream again from its first delta."""
    yield first
    async for chunk in rest:
        yield chunk


async def open_stream(
    client: Any, providers: list[Any], watchdog: Watchdog, secret: str | None, **request: Any
) -> tuple[Any, AsyncIterator[Any], list[str]]:
    """Start the stream on the first provider that sends a delta within the timeout.

    Returns that provider, its stream from the first delta on, and how the
    providers before it failed. Not g4f's
    IterListProvider: it cannot bound the wait for a provider's first delta, so
    one silent provider would hold the whole list hostage, and its circuit
    breaker reorders the list.
    """
    failures: list[str] = []
    for provider in providers:
        watchdog.reset()
        try:
            stream = client.chat.completions.create(provider=provider, stream=True, **request)
            async for chunk in stream:
                if chunk.choices and (chunk.choices[0].delta.content or chunk.choices[0].delta.reasoning):
                    return provider, replay(chunk, stream), failures
            failure = "the stream ended without any text"
        except asyncio.CancelledError:
            if not watchdog.caught():
                raise
            failure = watchdog.message
        except Exception as exc:
            failure = one_line(exc, secret)
        failures.append(f"{label(provider)}: {failure}")
    raise StreamError(*failures)


def dim(text: str, stream: TextIO) -> str:
    """Reasoning is dimmed on a terminal, unless NO_COLOR is set."""
    if stream.isatty() and not os.environ.get("NO_COLOR") and os.name != "nt":
        return f"\x1b[2m{text}\x1b[0m"
    return text


async def stream_chat(client: Any, args: argparse.Namespace, out: TextIO, err: TextIO) -> str:
    """Print the answer's deltas to `out` as they arrive and return the whole answer.

    Whatever happens, the text received so far is printed in the final line.
    Raises StreamError when no provider answers or the stream goes silent.
    """
    messages = [{"role": "user", "content": args.prompt}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    providers = [provider_for(p, args.api_key, args.model) for p in args.provider or [args.base_url]]
    watchdog = Watchdog(args.timeout)
    parts: list[str] = []  # joined once at the end: linear, however long the answer
    started = time.perf_counter()
    try:
        provider, stream, skipped = await open_stream(
            client, providers, watchdog, args.api_key, model=args.model, messages=messages
        )
        first_delta = time.perf_counter()
        try:
            async for chunk in stream:
                watchdog.reset()
                if chunk.choices and chunk.choices[0].delta.reasoning and not args.hide_reasoning:
                    print(dim(chunk.choices[0].delta.reasoning, err), end="", flush=True, file=err)
                if chunk.choices and chunk.choices[0].delta.content:
                    content = str(chunk.choices[0].delta.content)  # may be Sources, not a str
                    parts.append(content)
                    print(content, end="", flush=True, file=out)
        except asyncio.CancelledError:
            if not watchdog.caught():
                raise
            raise StreamError(watchdog.message) from None
        if args.verbose:
            report(provider, skipped, chunk, started, first_delta, parts, err)
    finally:
        watchdog.close()
        text = "".join(parts)
        print("\n\nFinal accumulated text:", text, file=out, flush=True)
    return text


def report(
    provider: Any, skipped: list[str], last: Any, started: float, first: float, parts: list[str], err: TextIO
) -> None:
    """The -v report: who answered (and who failed first), how fast, how much."""
    total = time.perf_counter() - started
    chars = sum(map(len, parts))
    usage = getattr(last, "usage", None)
    lines = [f"skipped: {failure}" for failure in skipped] + [
        f"provider: {label(provider) if provider else last.provider}  model: {last.model}",
        f"first delta: {first - started:.3f}s  total: {total:.3f}s",
        f"deltas: {len(parts)}  chars: {chars}  chars/s: {chars / total:.0f}",
        f"finish reason: {last.choices[0].finish_reason if last.choices else None}",
    ]
    if usage and usage.prompt_tokens:  # otherwise g4f made the numbers up from the delta count
        lines.append(
            f"usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
            f" = {usage.total_tokens} tokens"
        )
    print("\n" + "\n".join(lines), file=err)


async def run(args: argparse.Namespace) -> int:
    """Create the client and stream; returns the exit status."""
    try:
        client = AsyncClient(api_key=args.api_key, base_url=args.base_url if args.provider else None)
        await stream_chat(client, args, sys.stdout, sys.stderr)
    except StreamError as exc:
        for line in exc.args:
            print(f"error: {line}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except Exception as exc:
        print(f"error: {one_line(exc, args.api_key)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status: 0 done, 1 failed,
    2 bad usage, 130 interrupted."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a terminal that cannot show every character
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. From the signal module's docs.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
