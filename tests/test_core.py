"""resilient_stream() driven directly with the fake client: each guarantee of the core
in a small, named case."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import math
import time
import types
import weakref
from typing import Any

import pytest
from g4f.providers.response import Reasoning, ToolCalls

import messages_stream
from messages_stream import StreamError, resilient_stream
from tests.conftest import SCRIPT, FakeClient, chunk, convert, pause, stall, swallow, swallow_one


async def collect(stream: Any, each: Any = None) -> str:
    """The documentation's loop: the text of every content delta."""
    text = ""
    async for item in stream:
        if item.choices and item.choices[0].delta.content:
            text += str(item.choices[0].delta.content)
            if each:
                each()
    return text


def outcome(stream: Any) -> tuple[str, str | None, list[str]]:
    """Run the loop: the text it got, the StreamError lines if it failed, and the text
    received before a failure (in the error's place when it did not fail)."""
    received: list[str] = []

    async def loop() -> str:
        async for item in stream:
            if item.choices and item.choices[0].delta.content:
                received.append(str(item.choices[0].delta.content))
        return "".join(received)

    try:
        return asyncio.run(loop()), None, []
    except StreamError as exc:
        return "".join(received), "\n".join(exc.args), list(exc.args)


# ---- the idle timeout counts only the provider's silence ---------------------------


def test_a_consumer_slower_than_the_timeout_still_gets_every_chunk(fake: FakeClient) -> None:
    fake.scripts = [["a", "b", "c"]]
    stream = resilient_stream(fake, timeout=0.1)
    text = asyncio.run(collect(stream, each=lambda: time.sleep(0.25)))  # blocks the loop, as print can
    assert text == "abc"


def test_a_consumer_awaiting_longer_than_the_timeout_is_not_cancelled(fake: FakeClient) -> None:
    fake.scripts = [["a", "b", "c"]]

    async def bot() -> str:  # sends each delta on, awaiting its own network
        text = ""
        async for item in resilient_stream(fake, timeout=0.1):
            if item.choices and item.choices[0].delta.content:
                text += item.choices[0].delta.content
                await asyncio.sleep(0.25)
        return text

    assert asyncio.run(bot()) == "abc"


def test_the_deadline_moves_with_each_delta(fake: FakeClient) -> None:
    fake.scripts = [["a", pause(0.15), "b", pause(0.15), "c", pause(0.15), "d"]]
    assert outcome(resilient_stream(fake, timeout=0.3)) == ("abcd", None, [])


def test_silence_before_the_first_delta_times_out_on_time(fake: FakeClient) -> None:
    fake.scripts = [[stall]]
    started = time.monotonic()
    text, error, _ = outcome(resilient_stream(fake, timeout=0.2))
    assert 0.2 <= time.monotonic() - started < 1
    assert (text, error) == ("", "g4f's automatic choice: TimeoutError: no delta within 0.2s")


def test_silence_mid_stream_keeps_the_text_and_fails(fake: FakeClient) -> None:
    fake.scripts = [["Hel", "lo", stall]]
    assert outcome(resilient_stream(fake, timeout=0.2))[:2] == (
        "Hello",
        "g4f's automatic choice: TimeoutError: no delta within 0.2s",
    )


# ---- a cancel the provider swallows or converts does not leak ----------------------


@pytest.mark.parametrize("cleanup", [swallow, convert, swallow_one], ids=["swallowed", "converted", "once"])
def test_after_a_bad_cleanup_the_next_provider_still_answers(fake: FakeClient, cleanup: Any) -> None:
    fake.scripts = [[cleanup], [pause(0.3), "Hi", pause(0.3), " there"]]
    stream = resilient_stream(fake, providers=["A", "B"], timeout=0.5)
    started = time.monotonic()
    assert outcome(stream) == ("Hi there", None, [])
    assert time.monotonic() - started < 2
    assert stream.provider == "B"
    assert stream.failures == ["A: TimeoutError: no delta within 0.5s"]


@pytest.mark.parametrize("cleanup", [swallow, convert, swallow_one], ids=["swallowed", "converted", "once"])
def test_a_bad_cleanup_mid_stream_is_a_failure_not_a_short_answer(fake: FakeClient, cleanup: Any) -> None:
    fake.scripts = [["Hel", cleanup, "lo"]]
    text, error, _ = outcome(resilient_stream(fake, timeout=0.2))
    assert (text, error) == ("Hel", "g4f's automatic choice: TimeoutError: no delta within 0.2s")


def test_a_cancel_from_outside_stops_a_provider_that_swallows_one(fake: FakeClient) -> None:
    fake.scripts = [["Hel", swallow_one]]

    async def scenario() -> float:
        task = asyncio.ensure_future(collect(resilient_stream(fake, timeout=60)))
        await asyncio.sleep(0.2)
        task.cancel()  # as asyncio.run does on Ctrl-C: once
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1


def test_a_cancel_from_outside_that_the_provider_converts_stays_a_cancel(fake: FakeClient) -> None:
    # Also after an earlier provider timed out: its cancels must not hide this one.
    fake.scripts = [[stall], ["Hi", convert]]

    async def scenario() -> None:
        task = asyncio.ensure_future(collect(resilient_stream(fake, providers=["A", "B"], timeout=0.5)))
        while len(fake.calls) < 2:  # until A has timed out
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # B has sent "Hi" and waits, well within its timeout
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # not a StreamError: nothing failed
            await task

    asyncio.run(scenario())


def test_the_callers_own_timeout_works_around_it(fake: FakeClient) -> None:
    fake.scripts = [["Hel", swallow_one]]

    async def scenario() -> None:
        async with asyncio.timeout(0.3):
            await collect(resilient_stream(fake, timeout=60))

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(scenario())
    assert time.monotonic() - started < 1


def test_streams_under_gather_keep_their_own_timeouts(fake: FakeClient) -> None:
    slow_but_alive = FakeClient()
    slow_but_alive.scripts = [["a", pause(0.2), "b", pause(0.2), "c", pause(0.2), "d"]]
    fake.scripts = [["x", stall]]

    async def both() -> list[Any]:
        started = time.monotonic()

        async def timed(stream: Any) -> tuple[Any, float]:
            try:
                result: Any = await collect(stream)
            except StreamError as exc:
                result = exc.args
            return result, time.monotonic() - started

        return await asyncio.gather(
            timed(resilient_stream(fake, timeout=0.3)), timed(resilient_stream(slow_but_alive, timeout=0.3))
        )

    (stalled, stalled_at), (alive, alive_at) = asyncio.run(both())
    assert stalled == ("g4f's automatic choice: TimeoutError: no delta within 0.3s",)
    assert 0.3 <= stalled_at < 0.6
    assert alive == "abcd"
    assert alive_at >= 0.6


def test_an_outside_cancel_swallowed_just_before_a_chunk_is_not_lost(fake: FakeClient) -> None:
    fake.scripts = [["Hel", swallow, "lo.", "more"]]

    async def bot() -> str:
        async for item in resilient_stream(fake, timeout=60):
            if str(item.choices[0].delta.content).endswith("."):
                break  # the first sentence is enough
        await asyncio.sleep(0.5)
        return "went on"

    async def scenario() -> None:
        task = asyncio.ensure_future(bot())
        await asyncio.sleep(0.1)  # the provider is in `swallow`
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_cancelled_error_of_the_providers_own_is_a_failure_like_any_other(fake: FakeClient) -> None:
    async def its_own_future_cancelled() -> None:  # as when its HTTP session closes under it
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, future.cancel)
        await future

    fake.scripts = [[its_own_future_cancelled], ["Hi"]]
    stream = resilient_stream(fake, providers=["A", "B"], timeout=5)
    assert outcome(stream) == ("Hi", None, [])
    assert stream.failures == ["A: ConnectionError: the provider's stream was cancelled"]


def test_a_day_long_timeout_still_lets_a_cancel_through(fake: FakeClient) -> None:
    fake.scripts = [["Hel", swallow_one]]

    async def scenario() -> float:
        task = asyncio.ensure_future(collect(resilient_stream(fake, timeout=86400)))
        await asyncio.sleep(0.2)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1


# ---- like the stream create() returns ---------------------------------------------------


class StuckOnClose:
    """A client whose stream, once closed, waits on, as curl_cffi's close awaits the
    end of a transfer that a stalled server never ends."""

    def __init__(self) -> None:
        self.chat = types.SimpleNamespace(completions=types.SimpleNamespace(create=self.create))

    async def create(self, **kwargs: Any) -> Any:
        try:
            yield chunk("Hi")
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(3600)


def test_it_is_an_async_iterator_with_aclose(fake: FakeClient) -> None:
    async def scenario() -> None:
        stream = resilient_stream(fake)
        first = await anext(stream)
        assert first.choices[0].delta.content == "Hello"
        async with contextlib.aclosing(stream):
            assert [str(c.choices[0].delta.content) async for c in stream][:2] == [" there", "!"]
        assert [c async for c in stream] == []  # one stream, not a second request
        assert len(fake.calls) == 1

    asyncio.run(scenario())


def test_closing_a_stream_early_is_bounded_by_the_timeout() -> None:
    async def scenario() -> float:
        stream = resilient_stream(StuckOnClose(), timeout=0.3)
        assert (await anext(stream)).choices[0].delta.content == "Hi"
        started = time.monotonic()
        await stream.aclose()  # what `break` leads to, through the async generator finalizer
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.5


# ---- fallback, and what counts as an answer ---------------------------------------------


def test_providers_are_tried_in_order_until_one_sends_a_delta(fake: FakeClient) -> None:
    fake.scripts = [RuntimeError("down"), [RuntimeError("HTTP 500")], [stall], ["Hi"]]
    stream = resilient_stream(fake, providers=["A", "B", "C", "D"], timeout=0.2)
    assert outcome(stream) == ("Hi", None, [])
    assert [call["provider"] for call in fake.calls] == ["A", "B", "C", "D"]
    assert stream.provider == "D"
    assert stream.failures == [
        "A: RuntimeError: down",
        "B: RuntimeError: HTTP 500",
        "C: TimeoutError: no delta within 0.2s",
    ]


def test_an_empty_or_role_only_chunk_is_not_a_first_delta(fake: FakeClient) -> None:
    fake.scripts = [[chunk(None), chunk(""), RuntimeError("down")], ["Hi"]]
    stream = resilient_stream(fake, providers=["A", "B"])
    assert outcome(stream) == ("Hi", None, [])
    assert stream.provider == "B"


def test_no_fallback_once_a_delta_was_yielded(fake: FakeClient) -> None:
    fake.scripts = [["Hel", RuntimeError("cut")], ["never"]]
    assert outcome(resilient_stream(fake, providers=["A", "B"]))[:2] == ("Hel", "A: RuntimeError: cut")
    assert len(fake.calls) == 1


def test_reasoning_then_the_end_is_a_failure_and_no_fallback(fake: FakeClient) -> None:
    fake.scripts = [[Reasoning("Let me think")], ["never"]]
    error = "A: the stream ended without any answer text"
    assert outcome(resilient_stream(fake, providers=["A", "B"]))[:2] == ("", error)
    assert len(fake.calls) == 1  # its reasoning was shown: another provider's answer would not follow it


def test_a_tool_call_is_an_answer(fake: FakeClient) -> None:
    call = {"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    fake.scripts = [[ToolCalls([call])], ["never"]]
    stream = resilient_stream(fake, providers=["A", "B"], tools=[{"type": "function"}])

    async def calls() -> list[str]:
        return [
            c.choices[0].delta.tool_calls[0].function.name
            async for c in stream
            if c.choices[0].delta.tool_calls
        ]

    assert asyncio.run(calls()) == ["get_weather"]
    assert (len(fake.calls), stream.provider, stream.failures) == (1, "A", [])


def test_the_cause_is_the_last_providers_own(fake: FakeClient) -> None:
    fake.scripts = [[RuntimeError("A broke")], [chunk(None)]]  # B just ends without text
    with pytest.raises(StreamError) as caught:
        asyncio.run(collect(resilient_stream(fake, providers=["A", "B"])))
    assert caught.value.args[1] == "B: the stream ended without any answer text"
    assert caught.value.__cause__ is None  # not A's exception


def test_a_stream_with_no_delta_at_all_falls_back(fake: FakeClient) -> None:
    fake.scripts = [[chunk(None)], ["Hi"]]
    stream = resilient_stream(fake, providers=["A", "B"])
    assert outcome(stream) == ("Hi", None, [])
    assert stream.failures == ["A: the stream ended without any answer text"]


def test_every_provider_failing_names_each_masks_the_key_and_keeps_the_cause(fake: FakeClient) -> None:
    last = RuntimeError("401: key sk-secret-1 refused")
    fake.scripts = [RuntimeError("Error 400: Error 400: sk-secret-1?"), [last]]
    stream = resilient_stream(fake, providers=["A", "http://127.0.0.1:1/v1"], api_key="sk-secret-1")
    with pytest.raises(StreamError) as caught:
        asyncio.run(collect(stream))
    assert caught.value.args == (
        "A: RuntimeError: Error 400: ***?",
        "http://127.0.0.1:1/v1: RuntimeError: 401: key *** refused",
    )
    assert caught.value.__cause__ is last


@pytest.mark.parametrize("key", ["sk-secret-77\n", "sk-secret  77"], ids=["trailing newline", "two spaces"])
def test_a_key_with_white_space_is_masked_too(fake: FakeClient, key: str) -> None:
    fake.scripts = [[RuntimeError(f"bad key 'Bearer {key.strip()}', or {key!s}")]]
    stream = resilient_stream(fake, api_key=key)
    error = outcome(stream)[1]
    assert error is not None and "secret" not in error and "***" in error


def test_a_url_is_g4f_custom_provider_with_the_model_given(fake: FakeClient) -> None:
    stream = resilient_stream(fake, providers=["http://127.0.0.1:1/v1"], api_key="sk-1", model="m-1")
    assert outcome(stream)[1] is None
    provider = fake.calls[0]["provider"]
    assert (provider.__name__, provider.base_url, provider.api_key) == (
        "Custom",
        "http://127.0.0.1:1/v1",
        "sk-1",
    )
    assert provider.models == ["m-1"]  # so g4f does not fetch the model list with an untimed request
    assert (fake.calls[0]["stream"], fake.calls[0]["model"]) == (True, "m-1")


# ---- liftable: the block works pasted alone into a new module --------------------------


def test_the_core_block_runs_alone(fake: FakeClient) -> None:
    source = SCRIPT.read_text(encoding="utf-8")
    start, end = source.index("# ---- the streaming core"), source.index("# ---- end of the core")
    imports = [
        ast.get_source_segment(source, node)
        for node in ast.parse(source).body
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    module = types.ModuleType("lifted")
    exec(
        compile("\n".join(map(str, imports)) + "\n" + source[start:end], "lifted.py", "exec"), module.__dict__
    )
    assert not hasattr(module, "main") and not hasattr(module, "parse_args")  # no command line came along
    fake.scripts = [[stall], ["Hi", " there"]]
    stream = module.resilient_stream(fake, providers=["A", "B"], timeout=0.2)
    assert asyncio.run(collect(stream)) == "Hi there"
    assert stream.failures == ["A: TimeoutError: no delta within 0.2s"]
    fake.scripts = [[RuntimeError("down")]]
    with pytest.raises(module.StreamError):
        asyncio.run(collect(module.resilient_stream(fake)))
    assert module.StreamError is not messages_stream.StreamError


# ---- what a long-running bot would notice ------------------------------------------------


def test_no_timer_is_left_running_after_a_stream(fake: FakeClient) -> None:
    async def scenario() -> list[Any]:
        for _ in range(3):
            assert await collect(resilient_stream(fake, timeout=5)) == "Hello there!"
        await asyncio.sleep(0.2)  # a tick or two later
        return [h for h in asyncio.get_running_loop()._scheduled if not h.cancelled()]  # type: ignore[attr-defined]

    assert asyncio.run(scenario()) == []


def test_a_caller_cancelled_between_chunks_leaves_no_error_behind(fake: FakeClient) -> None:
    fake.scripts = [["Hel", pause(5), "lo"]]
    errors: list[Any] = []

    async def bot() -> None:
        async for item in resilient_stream(fake, timeout=60):
            if item.choices and item.choices[0].delta.content:
                await asyncio.sleep(5)  # its own slow work, where the cancel lands

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        task = asyncio.ensure_future(bot())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)  # the stream is closed by the event loop, in a task of its own

    asyncio.run(scenario())
    assert errors == []


def test_a_wait_in_another_task_is_timed_there_and_cancels_nothing_else(fake: FakeClient) -> None:
    fake.scripts = [["Hel", stall]]

    async def scenario() -> tuple[Any, float, int]:
        stream = resilient_stream(fake, timeout=0.3)
        assert (await anext(stream)).choices[0].delta.content == "Hel"  # in this task
        started, hits = time.monotonic(), 0
        reader = asyncio.ensure_future(anext(stream))  # the next wait, in a task of its own
        while not reader.done() and time.monotonic() - started < 2:
            try:
                await asyncio.sleep(0.05)  # this task's own work meanwhile
            except asyncio.CancelledError:
                hits += 1
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
        error = reader.exception() if reader.done() else None
        return error, time.monotonic() - started, hits

    error, took, hits = asyncio.run(scenario())
    assert isinstance(error, StreamError) and "no delta within 0.3s" in error.args[0]
    assert took < 1 and hits == 0


def test_closing_from_another_task_after_the_reader_was_cancelled_is_clean(fake: FakeClient) -> None:
    fake.scripts = [["Hel", "lo"]]

    async def scenario() -> None:
        stream = resilient_stream(fake, timeout=5)

        async def worker() -> None:
            async for _ in stream:
                await asyncio.sleep(10)  # its own time, where the cancel lands

        task = asyncio.ensure_future(worker())
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stream.aclose()  # a supervisor closes it: no cancel of the worker's leaks here

    asyncio.run(scenario())


def test_a_stream_left_at_a_chunk_keeps_no_timer(fake: FakeClient) -> None:
    async def scenario() -> list[Any]:
        kept = []
        for _ in range(5):
            stream = resilient_stream(fake, timeout=5)
            async for _ in stream:
                break  # the first chunk is enough; the stream is kept, not closed
            kept.append(stream)
        await asyncio.sleep(0.3)
        return [h for h in asyncio.get_running_loop()._scheduled if not h.cancelled()]  # type: ignore[attr-defined]

    assert asyncio.run(scenario()) == []


# ---- a drop-in in long-lived programs ------------------------------------------------


async def with_a_cancel_left_over() -> None:
    """Leave the current task as a worker that caught a /stop leaves it: cancelling() == 1."""
    with contextlib.suppress(asyncio.CancelledError):
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)


def test_a_cancel_count_left_from_before_changes_nothing(fake: FakeClient) -> None:
    async def its_own_future_cancelled() -> None:  # a stray CancelledError, as curl_cffi has
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, future.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await future  # and the provider goes on

    fake.scripts = [[RuntimeError("HTTP 500")], ["Hel", pause(0.2), its_own_future_cancelled, "lo"]]

    async def scenario() -> tuple[str, int]:
        await with_a_cancel_left_over()
        text = await collect(resilient_stream(fake, providers=["A", "B"], timeout=1))
        return text, asyncio.current_task().cancelling()  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == ("Hello", 1)


def test_a_cancel_count_left_from_before_still_lets_the_timeout_fire(fake: FakeClient) -> None:
    fake.scripts = [["Hel", stall]]

    async def scenario() -> tuple[str | None, int]:
        await with_a_cancel_left_over()
        try:
            await collect(resilient_stream(fake, timeout=0.2))
        except StreamError as exc:
            return exc.args[0], asyncio.current_task().cancelling()  # type: ignore[union-attr]
        return None, -1

    assert asyncio.run(scenario()) == ("g4f's automatic choice: TimeoutError: no delta within 0.2s", 1)


def test_a_stream_let_go_is_closed_without_the_garbage_collector(fake: FakeClient) -> None:
    closed = []

    async def provider(**_: Any) -> Any:
        try:
            yield chunk("Hi")
            await stall()
        finally:
            closed.append(time.monotonic())

    fake.chat.completions.create = provider

    async def scenario() -> float:
        async def reply() -> None:
            async for _ in resilient_stream(fake, timeout=5):
                break  # and the stream is dropped with this frame

        await reply()
        left = time.monotonic()
        await asyncio.sleep(0.1)
        return closed[0] - left if closed else math.inf

    gc.disable()
    try:
        assert asyncio.run(scenario()) < 0.05
    finally:
        gc.enable()


def break_then_close(fake: FakeClient, provider: Any) -> None:
    """Stream from `provider`, leave the loop at the first chunk, then close, as a bot's /stop."""
    fake.chat.completions.create = provider

    async def scenario() -> None:
        stream = resilient_stream(fake, timeout=5)
        async for _ in stream:
            break
        await stream.aclose()

    asyncio.run(scenario())


def test_closing_ends_the_providers_wait_not_only_its_generator(fake: FakeClient) -> None:
    """curl_cffi ends a transfer only when a wait on it is cancelled, not when its generator
    is closed at a yield: closing must resume the provider and cancel that wait."""
    ended = []

    async def provider(**_: Any) -> Any:
        yield chunk("Hi")
        try:
            await stall()
        except asyncio.CancelledError:
            ended.append("transfer ended")
            raise

    break_then_close(fake, provider)
    assert ended == ["transfer ended"]


def test_a_waiting_stream_runs_nothing_until_its_deadline(fake: FakeClient) -> None:
    fake.scripts = [[pause(0.5), "Hi"]]

    async def scenario() -> int:
        loop, timers = asyncio.get_running_loop(), []
        real = loop.call_at

        def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            timers.append(callback)
            return real(when, callback, *args, **kwargs)

        loop.call_at = call_at  # type: ignore[method-assign,assignment]
        assert await collect(resilient_stream(fake, timeout=30)) == "Hi"
        return len(timers)

    assert asyncio.run(scenario()) <= 2  # the provider's sleep and our one deadline


@pytest.mark.parametrize(
    "call",
    [{"provider": "A"}, {"providers": "http://127.0.0.1:1/v1"}, {"stream": False}, {"timeout": 0}],
    ids=str,
)
def test_a_keyword_it_cannot_honour_is_a_type_error_before_any_request(fake: FakeClient, call) -> None:
    with pytest.raises(TypeError, match="providers="):
        resilient_stream(fake, **call)
    assert fake.calls == []


def test_no_timeout_is_a_type_error_before_any_request(fake: FakeClient) -> None:
    with pytest.raises(TypeError):
        resilient_stream(fake, timeout=None)  # type: ignore[arg-type]
    assert fake.calls == []


def test_stream_true_is_taken_as_create_takes_it(fake: FakeClient) -> None:
    assert outcome(resilient_stream(fake, stream=True)) == ("Hello there!", None, [])
    assert fake.calls[0]["stream"] is True


def test_a_cancel_asked_while_the_task_runs_is_a_cancel(fake: FakeClient) -> None:
    """Ctrl-C's handler in asyncio.run cancels the task while it runs, between two chunks: the
    cancel is delivered in the next wait, and must stay a cancel, not a provider failure."""
    fake.scripts = [["Hel", pause(0.1), "lo"], ["Hi"]]

    async def scenario() -> None:
        async for _ in resilient_stream(fake, providers=["A", "B"], timeout=5):
            asyncio.current_task().cancel()  # type: ignore[union-attr]

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())
    assert len(fake.calls) == 1


async def stubborn() -> None:
    """Swallows every cancel for 0.3 s, then lets one through."""
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.01)
    await stall()


def test_a_cancel_from_outside_after_the_deadline_stays_a_cancel(fake: FakeClient) -> None:
    fake.scripts = [[stubborn]]

    async def scenario() -> None:
        asyncio.get_running_loop().call_later(0.2, asyncio.current_task().cancel)  # type: ignore[union-attr]
        await collect(resilient_stream(fake, timeout=0.1))

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())


# ---- found by a cold review ------------------------------------------------------------------


def test_the_api_key_reaches_a_named_provider(fake: FakeClient) -> None:
    assert outcome(resilient_stream(fake, providers=["A"], api_key="sk-for-A")) == ("Hello there!", None, [])
    assert fake.calls[0]["api_key"] == "sk-for-A"


def test_the_clients_own_key_is_masked_too(fake: FakeClient) -> None:
    fake.api_key = "sk-client-7"  # type: ignore[attr-defined]
    fake.scripts = [[RuntimeError("401: bad key sk-client-7")]]
    _, error, _ = outcome(resilient_stream(fake, providers=["A"]))
    assert error == "A: RuntimeError: 401: bad key ***"
    assert "api_key" not in fake.calls[0]  # g4f sends the client's own


def test_closing_early_does_not_read_the_rest_of_a_fast_answer(fake: FakeClient) -> None:
    produced = []

    async def provider(**_: Any) -> Any:
        for n in range(10_000):  # all of it already read: no wait between chunks
            produced.append(n)
            yield chunk("x")

    break_then_close(fake, provider)
    assert len(produced) <= 100


def test_a_stream_closed_from_another_task_just_ends(fake: FakeClient) -> None:
    fake.scripts = [["Hel", "lo", stall]]

    async def scenario() -> list[str]:
        stream, got = resilient_stream(fake, timeout=5), []

        async def relay() -> None:
            async for item in stream:
                got.append(str(item.choices[0].delta.content))
                await asyncio.sleep(0.1)  # the bot's own work, where /stop closes the stream

        task = asyncio.create_task(relay())
        await asyncio.sleep(0.05)
        await stream.aclose()  # /stop
        await task  # it ends, no RuntimeError('anext(): asynchronous generator is already running')
        return got

    assert asyncio.run(scenario()) == ["Hel"]


def test_a_stream_can_be_weakly_referenced_as_g4fs_can(fake: FakeClient) -> None:
    stream = resilient_stream(fake)
    assert weakref.ref(stream)() is stream


def test_a_cancel_sent_again_for_one_provider_never_reaches_the_next(fake: FakeClient) -> None:
    async def swallow_then_fail() -> None:  # as curl_cffi: swallows the cancel, ends a moment later
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await asyncio.sleep(0.001)
        raise ConnectionResetError("closed")

    fake.scripts = [[swallow_then_fail], [pause(0.05), "Hi"]]
    stream = resilient_stream(fake, providers=["A", "B"], timeout=0.1)
    assert outcome(stream) == ("Hi", None, [])
    assert stream.failures == ["A: TimeoutError: no delta within 0.1s"]


# ---- inputs and messages -----------------------------------------------------------------


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -math.inf, 0, -1, "30", None], ids=repr)
def test_a_timeout_that_is_not_a_finite_positive_number_is_a_type_error(fake: FakeClient, timeout) -> None:
    with pytest.raises(TypeError):
        resilient_stream(fake, timeout=timeout)
    assert fake.calls == []


def test_a_urls_password_is_masked_in_every_failure_line(fake: FakeClient) -> None:
    url = "http://ada:pw-s3cret@127.0.0.1:1/v1"
    fake.scripts = [[RuntimeError(f"cannot reach {url}/chat/completions")], [stall]]
    _, error, lines = outcome(resilient_stream(fake, providers=[url, f"{url}/other"], timeout=0.1))
    assert error is not None and "pw-s3cret" not in error and "ada" not in error
    assert lines == [
        "http://***@127.0.0.1:1/v1: RuntimeError: cannot reach http://***@127.0.0.1:1/v1/chat/completions",
        "http://***@127.0.0.1:1/v1/other: TimeoutError: no delta within 0.1s",
    ]


def cancelled_with_a_message(fake: FakeClient, timeout: float, after: float) -> tuple[Any, ...]:
    """The args of the CancelledError a reader gets, cancelled with a message `after` seconds."""

    async def scenario() -> tuple[Any, ...]:
        task = asyncio.ensure_future(collect(resilient_stream(fake, timeout=timeout)))
        await asyncio.sleep(after)
        task.cancel("user pressed /stop")
        try:
            await task
        except asyncio.CancelledError as exc:
            return exc.args
        return ("not cancelled",)

    return asyncio.run(scenario())


@pytest.mark.parametrize("provider", [stall, swallow_one, swallow, convert], ids=lambda p: p.__name__)
def test_a_cancel_keeps_its_message(fake: FakeClient, provider: Any) -> None:
    fake.scripts = [["Hel", provider]]
    assert cancelled_with_a_message(fake, timeout=60, after=0.1) == ("user pressed /stop",)


def test_a_cancel_keeps_its_message_after_the_deadline_fired(fake: FakeClient) -> None:
    """The deadline's own cancel, swallowed and sent again, must not stand in for the task's."""

    fake.scripts = [["Hel", stubborn]]
    # after 0.2 s the deadline has fired, and the provider swallows its cancels
    assert cancelled_with_a_message(fake, timeout=0.1, after=0.2) == ("user pressed /stop",)


def test_first_delta_is_seconds_from_the_first_read_to_the_first_delta(fake: FakeClient) -> None:
    fake.scripts = [[stall], [pause(0.1), "Hi", pause(0.15), ",", pause(0.15), " there"]]

    async def scenario() -> tuple[float, float]:
        stream = resilient_stream(fake, providers=["A", "B"], timeout=0.2)
        before = stream.first_delta
        await asyncio.sleep(0.3)  # made, not read yet: not counted
        await collect(stream)
        return before, stream.first_delta

    before, first_delta = asyncio.run(scenario())
    assert before == 0.0
    assert 0.3 <= first_delta < 0.55  # A's silence, then B's 0.1 s; not the next delta's 0.6 s


def test_first_delta_is_the_first_shown_reasoning_too(fake: FakeClient) -> None:
    fake.scripts = [[pause(0.1), Reasoning("Let me think"), pause(0.3), "Hi"]]
    stream = resilient_stream(fake, timeout=5)
    assert outcome(stream) == ("Hi", None, [])
    assert 0.1 <= stream.first_delta < 0.35  # when the reasoning came, not the text 0.3 s later


def test_any_chunk_restarts_the_timeout_a_chunk_without_a_delta_too(fake: FakeClient) -> None:
    """As the README says: the timeout bounds each wait for a chunk (g4f drops empty deltas)."""
    fake.scripts = [["Hel", pause(0.2), chunk(None), pause(0.2), chunk(""), pause(0.2), "lo"]]
    assert outcome(resilient_stream(fake, timeout=0.3)) == ("Hello", None, [])


# ---- what a sample of hand-made bugs showed unpinned ----------------------------------------


def test_a_provider_that_catches_a_cancel_of_its_own_future_still_gives_a_whole_answer(
    fake: FakeClient,
) -> None:
    async def catches_its_own_cancel() -> None:  # as curl_cffi can: its own future cancelled, caught
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, future.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await future
        await asyncio.sleep(0.05)  # and the next chunk 50 ms later

    fake.scripts = [["Hel", catches_its_own_cancel, "lo", pause(0.05), "!"]]
    stream = resilient_stream(fake, timeout=5)
    assert outcome(stream) == ("Hello!", None, [])
    assert stream.failures == []


def test_content_then_reasoning_is_an_answer(fake: FakeClient) -> None:
    fake.scripts = [["Hel", Reasoning("on second thought"), "lo"], ["never"]]
    stream = resilient_stream(fake, providers=["A", "B"])
    assert outcome(stream) == ("Hello", None, [])
    assert (len(fake.calls), stream.failures) == (1, [])


def test_content_then_reasoning_at_the_end_is_an_answer(fake: FakeClient) -> None:
    fake.scripts = [["Hel", Reasoning("done thinking")]]
    assert outcome(resilient_stream(fake)) == ("Hel", None, [])


# ---- released however the app lets go --------------------------------------------------


def transfer(ended: list[str]) -> Any:
    """A provider that sends "Hi", then waits: its transfer ends only when that wait is cancelled
    (as curl_cffi's); closed at its yield, or by the GC, it records nothing."""

    async def provider(**_: Any) -> Any:
        yield chunk("Hi")
        try:
            await stall()
        except asyncio.CancelledError:
            ended.append("transfer ended")
            raise

    return provider


def test_a_stream_left_at_a_yield_by_a_task_that_ended_ends_its_transfer(fake: FakeClient) -> None:
    """aiohttp.web: the handler's task is done, its frame (and the stream) kept in a cycle."""
    ended: list[str] = []
    fake.chat.completions.create = transfer(ended)
    kept: list[Any] = []

    async def handler() -> None:
        stream = resilient_stream(fake, timeout=5)
        kept.append(stream)  # as the cycle keeps it
        async for _ in stream:
            raise ConnectionResetError("Cannot write to closing transport")

    async def scenario() -> None:
        with contextlib.suppress(ConnectionResetError):
            await asyncio.create_task(handler())
        await asyncio.sleep(0.1)

    asyncio.run(scenario())
    assert ended == ["transfer ended"]


@pytest.mark.parametrize("peek_ends", [0, 0.02], ids=["at once", "while the relay works"])
def test_a_stream_read_on_in_another_task_is_not_ended_with_the_first(
    fake: FakeClient, peek_ends: float
) -> None:
    async def provider(**_: Any) -> Any:
        yield chunk("Hel")
        yield chunk("lo")  # already read when the relay asks: it takes it without a wait
        await asyncio.sleep(0.1)
        yield chunk(" there!")

    fake.chat.completions.create = provider

    async def scenario() -> str:
        stream = resilient_stream(fake, timeout=5)

        async def relay() -> str:
            text = ""
            async for item in stream:
                text += str(item.choices[0].delta.content or "")
                await asyncio.sleep(0.05)  # its own work, the stream at a yield
            return text

        async def peek() -> Any:  # a handler that checks the first delta, then hands the stream on
            first = await anext(stream)
            rest = asyncio.create_task(relay())
            if peek_ends:  # else it ends at once: the relay reads the second before its end is seen
                await asyncio.sleep(peek_ends)  # it ends while the relay works on the second
            return first, rest

        first, rest = await asyncio.create_task(peek())
        return str(first.choices[0].delta.content) + await rest

    assert asyncio.run(scenario()) == "Hello there!"


def test_a_stream_in_a_cycle_freed_by_the_gc_ends_its_transfer(fake: FakeClient) -> None:
    """The GC finalizes every generator of a cycle at once: the provider's, closed at its yield,
    would leave curl_cffi's transfer running."""
    ended: list[str] = []
    fake.chat.completions.create = transfer(ended)

    async def scenario() -> None:
        stream = resilient_stream(fake, timeout=5)
        async for _ in stream:
            break
        cycle: list[Any] = [stream]
        cycle.append(cycle)
        del stream, cycle
        gc.collect()
        await asyncio.sleep(0.1)

    gc.disable()
    try:
        asyncio.run(scenario())
    finally:
        gc.enable()
    assert ended == ["transfer ended"]


def test_a_long_lived_task_keeps_nothing_of_the_streams_it_read(fake: FakeClient) -> None:
    """A bot's worker reads stream after stream for days: none stays referenced from it."""
    made: list[Any] = []
    create = fake.create

    def recorded(**kwargs: Any) -> Any:
        made.append(weakref.ref(stream := create(**kwargs)))
        return stream

    fake.chat.completions.create = recorded

    async def worker() -> list[bool]:
        for n in range(3):
            stream = resilient_stream(fake, timeout=5)
            async for _ in stream:
                if n == 1:
                    break  # one left at a yield
            await stream.aclose()
            del stream
        await asyncio.sleep(0.1)
        return [ref() is None for ref in made]

    gc.disable()
    try:
        assert asyncio.run(worker()) == [True, True, True]
    finally:
        gc.enable()


@pytest.mark.parametrize("ends", ["fails", "returns"])
def test_a_stream_handed_on_after_its_reader_ended(fake: FakeClient, ends: str) -> None:
    """A handler peeks at the first delta and hands the stream to a task that reads it after the
    handler's task has ended. Failed (a write to a gone client), the handler let the stream go: the
    transfer ended with it, and the rest must not look whole. Returned, it let go of nothing."""
    fake.scripts = [["Hel", pause(0.1), "lo"]]

    async def scenario() -> Any:
        stream = resilient_stream(fake, timeout=5)

        async def relay() -> str:
            await asyncio.sleep(0.05)  # its own work first
            return await collect(stream)

        async def peek() -> Any:
            await anext(stream)
            rest.append(asyncio.create_task(relay()))
            if ends == "fails":
                raise ConnectionResetError("the client left")

        rest: list[Any] = []
        with contextlib.suppress(ConnectionResetError):
            await asyncio.create_task(peek())
        try:
            return await rest[0]
        except StreamError as exc:
            return exc.args

    expected = {"fails": ("g4f's automatic choice: the task reading it ended first",), "returns": "lo"}
    assert asyncio.run(scenario()) == expected[ends]


@pytest.mark.parametrize("how", ["a task", "wait_for"])
def test_a_chunk_read_in_a_task_of_its_own_each_time_gives_the_whole_answer(
    fake: FakeClient, how: str
) -> None:
    """A keep-alive loop reads each chunk in a task of its own (as asyncio.wait_for does on 3.11),
    and does its own work between: each such task's end is not the app letting go."""
    fake.scripts = [["Hel", pause(0.05), "lo", pause(0.05), " there!"]]

    async def scenario() -> str:
        text, it = "", aiter(resilient_stream(fake, timeout=5))
        while True:
            read = asyncio.ensure_future(anext(it)) if how == "a task" else asyncio.wait_for(anext(it), 5)
            try:
                item = await read
            except StopAsyncIteration:
                return text
            text += str(item.choices[0].delta.content or "")
            await asyncio.sleep(0.1)  # its own work: sends the text on

    assert asyncio.run(scenario()) == "Hello there!"
