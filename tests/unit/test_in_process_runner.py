"""InProcessConsumerRunner and the retry policy it shares with the Kafka runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing

import anyio
import pytest

from adapters.inbound.messaging import (
    IncomingMessage,
    InProcessConsumerRunner,
    MessageHandler,
    PermanentFailure,
    RetryPolicy,
)
from adapters.outbound.in_process_bus import InProcessEventBus
from application.ports import OutgoingMessage

pytestmark = pytest.mark.anyio

TOPIC = "video-uploaded-events"
DEAD_LETTERS = "video-uploaded-events.dlq"
NO_WAIT = (0.0,)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def bus() -> InProcessEventBus:
    return InProcessEventBus()


class Calls(list):
    """(value, attempt, final_attempt) of every call, in order."""

    def handler(self, then: Callable[[IncomingMessage, int], Awaitable[None]] | None = None) -> MessageHandler:
        async def handle(message: IncomingMessage, *, attempt: int, final_attempt: bool) -> None:
            self.append((message.value, attempt, final_attempt))
            if then is not None:
                await then(message, attempt)

        return handle


async def publish(bus: InProcessEventBus, *values: bytes, topic: str = TOPIC) -> None:
    await bus.publish([OutgoingMessage(topic=topic, key=b"video-1", value=value) for value in values])


async def dead_letters(bus: InProcessEventBus) -> list[bytes]:
    """Takes every dead letter waiting on the bus."""
    async with aclosing(bus.subscribe(DEAD_LETTERS)) as subscription:
        return [(await anext(subscription)).value for _ in range(bus.pending(DEAD_LETTERS))]


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(2):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def start(bus) -> AsyncIterator[Callable[..., InProcessConsumerRunner]]:
    runners: list[tuple[InProcessConsumerRunner, asyncio.Task]] = []

    def start_runner(handler: MessageHandler, **retry) -> InProcessConsumerRunner:
        runner = InProcessConsumerRunner(bus, TOPIC, handler, **({"backoff_s": NO_WAIT} | retry))
        runners.append((runner, asyncio.create_task(runner.run())))
        return runner

    yield start_runner
    for runner, task in runners:
        await runner.stop()
        await task


async def test_messages_are_handled_in_publish_order(bus, start):
    calls = Calls()
    start(calls.handler())
    await publish(bus, b"1", b"2", b"3")

    await wait_until(lambda: len(calls) == 3)

    assert calls == [(b"1", 1, False), (b"2", 1, False), (b"3", 1, False)]


async def test_a_permanent_failure_is_dead_lettered_at_once_and_the_next_message_handled(bus, start):
    async def reject_poison(message: IncomingMessage, attempt: int) -> None:
        if message.value == b"poison":
            raise PermanentFailure("undecodable")

    calls = Calls()
    start(calls.handler(reject_poison))
    await publish(bus, b"poison", b"good")

    await wait_until(lambda: len(calls) == 2)

    assert calls == [(b"poison", 1, False), (b"good", 1, False)]
    assert await dead_letters(bus) == [b"poison"]


async def test_transient_failures_are_retried_until_the_final_attempt_then_dead_lettered(bus, start):
    async def fail_flaky_once_and_doomed_always(message: IncomingMessage, attempt: int) -> None:
        if message.value == b"doomed" or (message.value == b"flaky" and attempt == 1):
            raise ConnectionError("storage hiccup")

    calls = Calls()
    start(calls.handler(fail_flaky_once_and_doomed_always), max_attempts=3)
    await publish(bus, b"flaky", b"doomed", b"after")

    await wait_until(lambda: (b"after", 1, False) in calls)

    assert calls == [
        (b"flaky", 1, False), (b"flaky", 2, False),
        (b"doomed", 1, False), (b"doomed", 2, False), (b"doomed", 3, True),
        (b"after", 1, False),
    ]
    assert await dead_letters(bus) == [b"doomed"]


async def test_retries_wait_the_backoff_between_attempts(bus, start):
    attempted_at: list[float] = []

    async def always_fail(message: IncomingMessage, attempt: int) -> None:
        attempted_at.append(asyncio.get_running_loop().time())
        raise ConnectionError("down")

    start(Calls().handler(always_fail), max_attempts=3, backoff_s=[0.1, 0.2])
    await publish(bus, b"doomed")

    await wait_until(lambda: bus.pending(DEAD_LETTERS) == 1)

    first, second, third = attempted_at
    assert second - first >= 0.1
    assert third - second >= 0.2


async def test_stop_cancels_the_message_being_handled_and_ends_run(bus, start):
    cancelled = asyncio.Event()

    async def hang(message: IncomingMessage, attempt: int) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    calls = Calls()
    runner = start(calls.handler(hang))
    await publish(bus, b"long")
    await wait_until(lambda: len(calls) == 1)

    with anyio.fail_after(1):
        await runner.stop()

    assert cancelled.is_set()
    assert bus.pending(DEAD_LETTERS) == 0


async def test_run_after_stop_returns_at_once(bus):
    runner = InProcessConsumerRunner(bus, TOPIC, Calls().handler())
    await runner.stop()

    with anyio.fail_after(1):
        await runner.run()


async def test_an_outside_cancellation_is_not_swallowed(bus):
    runner = InProcessConsumerRunner(bus, TOPIC, Calls().handler())
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


def test_the_last_backoff_repeats_once_the_list_runs_out():
    policy = RetryPolicy(max_attempts=5, backoff_s=(1, 2))

    assert [policy.wait_before(attempt) for attempt in (2, 3, 4, 5)] == [1, 2, 2, 2]


@pytest.mark.parametrize("max_attempts, backoff_s", [(0, (1,)), (2, ())])
def test_a_retry_policy_needs_an_attempt_and_a_backoff_to_retry_with(max_attempts, backoff_s):
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts, backoff_s)
