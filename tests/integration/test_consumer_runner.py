"""KafkaConsumerRunner against a real Kafka-protocol broker (Tansu): ordering, commits,
long handlers, group membership, redelivery after a crash, retries and dead letters."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import pytest
from aiokafka import AIOKafkaConsumer

from adapters.inbound.messaging import IncomingMessage, KafkaConsumerRunner, MessageHandler, PermanentFailure
from adapters.outbound.kafka import KafkaEventPublisher, ensure_topics
from adapters.outbound.metrics import InMemoryMetrics
from application.integration_events import dead_letter_topic
from application.ports import OutgoingMessage

pytestmark = pytest.mark.anyio

# Tansu takes about two thirds of the session timeout to complete a join, so keep it
# short; heartbeats every 200 ms still leave ample margin on a busy machine.
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 200}
KEYS_OVER_ALL_PARTITIONS = [f"video-{n}" for n in range(6, 12)]  # hash to all three partitions
WAIT_S = 15


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiokafka is asyncio-only


@pytest.fixture
async def publisher(kafka_broker) -> AsyncIterator[KafkaEventPublisher]:
    publisher = KafkaEventPublisher(kafka_broker.bootstrap_servers)
    yield publisher
    await publisher.close()


@pytest.fixture
def new_topic(kafka_broker, kafka_topic_prefix) -> Callable:
    async def create(partitions: int) -> str:
        topic = f"{kafka_topic_prefix}-events"
        # Auto-created topics get one partition on Tansu, so create both up front.
        await ensure_topics(kafka_broker.bootstrap_servers, {topic: partitions, dead_letter_topic(topic): 1})
        return topic

    return create


@pytest.fixture
def new_runner(kafka_broker, kafka_topic_prefix, publisher) -> Callable[..., KafkaConsumerRunner]:
    def build(topic: str, handler: MessageHandler, **options) -> KafkaConsumerRunner:
        return KafkaConsumerRunner(
            kafka_broker.bootstrap_servers, topic, f"{kafka_topic_prefix}-group", handler,
            dead_letter_publisher=publisher, **(FAST_GROUP | options),
        )

    return build


@dataclass
class Handled:
    """What a handler saw, in the order it saw it."""

    by: str
    message: IncomingMessage
    attempt: int
    final_attempt: bool


@dataclass
class Journal:
    entries: list[Handled] = field(default_factory=list)

    def values(self, by: str | None = None) -> list[bytes]:
        return [entry.message.value for entry in self.entries if by in (None, entry.by)]

    def recording(self, by: str, then: Callable[[IncomingMessage, int], Awaitable[None]] | None = None) -> MessageHandler:
        """A handler that records each call, then awaits then(message, attempt) if given."""

        async def handle(message: IncomingMessage, *, attempt: int, final_attempt: bool) -> None:
            self.entries.append(Handled(by, message, attempt, final_attempt))
            if then is not None:
                await then(message, attempt)

        return handle


@asynccontextmanager
async def running(*runners: KafkaConsumerRunner) -> AsyncIterator[None]:
    """The runners run while the block does; stopped (and their errors raised) after."""
    tasks = [asyncio.create_task(runner.run()) for runner in runners]
    try:
        yield
    finally:
        for runner in runners:
            await runner.stop()
        for task in tasks:
            await task


async def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    with anyio.fail_after(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


def settled(runners: Iterable[KafkaConsumerRunner], partitions: int) -> Callable[[], bool]:
    """Every runner joined and the partitions are split between them without overlap."""

    def check() -> bool:
        assignments = [runner.assigned_partitions for runner in runners]
        if any(assignment is None for assignment in assignments):
            return False
        owned = [partition for assignment in assignments for partition in assignment]
        return sorted(owned) == list(range(partitions))

    return check


def message(topic: str, key: str, value: str) -> OutgoingMessage:
    return OutgoingMessage(topic=topic, key=key.encode(), value=value.encode())


async def dead_letters(bootstrap_servers: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        dead_letter_topic(topic), bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    values = []
    try:
        with anyio.fail_after(WAIT_S):
            async for record in consumer:
                values.append(record.value)
                if len(values) == count:
                    return values
    finally:
        await consumer.stop()
    return values


async def test_messages_are_handled_in_order_per_key_and_not_again_after_a_restart(
    new_topic, new_runner, publisher
):
    topic = await new_topic(3)
    journal = Journal()
    sent = [message(topic, key, f"{key}:{n}") for n in range(4) for key in KEYS_OVER_ALL_PARTITIONS]
    await publisher.publish(sent)

    metrics = InMemoryMetrics()
    async with running(new_runner(topic, journal.recording("first"), metrics=metrics)):
        await wait_until(lambda: len(journal.entries) == len(sent))
    assert set(metrics.lag.values()) == {0}  # every partition handled to its end

    values_by_key = defaultdict(list)
    for entry in journal.entries:
        values_by_key[entry.message.key].append(entry.message.value)
    for key in KEYS_OVER_ALL_PARTITIONS:
        assert values_by_key[key.encode()] == [f"{key}:{n}".encode() for n in range(4)]

    await publisher.publish([message(topic, "video-6", "after-restart")])
    async with running(new_runner(topic, journal.recording("second"))):
        await wait_until(lambda: b"after-restart" in journal.values())
    assert journal.values("second") == [b"after-restart"]


async def test_a_handler_slower_than_max_poll_interval_runs_once_without_a_rebalance(
    new_topic, new_runner, publisher
):
    topic = await new_topic(1)
    journal = Journal()

    async def slow_for_the_first(message: IncomingMessage, attempt: int) -> None:
        if message.value == b"slow":
            await asyncio.sleep(4.5)

    # aiokafka would leave the group after 1.5 s without a poll, three times over.
    runners = [
        new_runner(topic, journal.recording(name, slow_for_the_first), max_poll_interval_ms=1500)
        for name in ("a", "b")
    ]
    async with running(*runners):
        await wait_until(settled(runners, partitions=1))
        assignments = [runner.assigned_partitions for runner in runners]
        await publisher.publish([message(topic, "video-1", "slow"), message(topic, "video-1", "next")])
        await wait_until(lambda: b"next" in journal.values())
        assert [runner.assigned_partitions for runner in runners] == assignments

    assert journal.values() == [b"slow", b"next"]


async def test_two_runners_split_the_partitions_and_handle_every_message_once(new_topic, new_runner, publisher):
    topic = await new_topic(3)
    journal = Journal()
    runners = {name: new_runner(topic, journal.recording(name)) for name in ("a", "b")}
    sent = [message(topic, key, f"{key}:{n}") for n in range(3) for key in KEYS_OVER_ALL_PARTITIONS]

    async with running(*runners.values()):
        await wait_until(settled(runners.values(), partitions=3))
        await publisher.publish(sent)
        await wait_until(lambda: len(journal.entries) >= len(sent))
        await asyncio.sleep(0.5)  # room for a duplicate to show up

        assert sorted(journal.values()) == sorted(outgoing.value for outgoing in sent)
        for entry in journal.entries:
            assert entry.message.partition in runners[entry.by].assigned_partitions
    assert {entry.by for entry in journal.entries} == {"a", "b"}


async def test_a_message_whose_runner_stopped_mid_handler_goes_to_the_other_runner(
    new_topic, new_runner, publisher
):
    topic = await new_topic(1)
    journal = Journal()
    first_delivery_cancelled = asyncio.Event()

    async def hang_the_first_time(message: IncomingMessage, attempt: int) -> None:
        if len(journal.entries) == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                first_delivery_cancelled.set()
                raise

    runners = {name: new_runner(topic, journal.recording(name, hang_the_first_time)) for name in ("a", "b")}
    async with running(*runners.values()):
        await wait_until(settled(runners.values(), partitions=1))
        await publisher.publish([message(topic, "video-1", "transcode me")])
        await wait_until(lambda: len(journal.entries) == 1)
        crashed = journal.entries[0].by

        await runners[crashed].stop()  # the handler is cancelled and nothing is committed

        assert first_delivery_cancelled.is_set()
        await wait_until(lambda: len(journal.entries) == 2)
    [survivor] = set(runners) - {crashed}
    assert [(entry.by, entry.message.value) for entry in journal.entries] == [
        (crashed, b"transcode me"), (survivor, b"transcode me"),
    ]


async def test_a_permanent_failure_is_dead_lettered_and_the_next_message_handled(
    kafka_broker, kafka_topic_prefix, new_topic, new_runner, publisher
):
    topic = await new_topic(1)
    journal = Journal()

    async def reject_poison(message: IncomingMessage, attempt: int) -> None:
        if message.value == b"poison":
            raise PermanentFailure("undecodable")

    await publisher.publish([message(topic, "video-1", "poison"), message(topic, "video-1", "good")])
    metrics = InMemoryMetrics()
    runner = new_runner(topic, journal.recording("a", reject_poison), metrics=metrics)
    async with running(runner):
        await wait_until(lambda: b"good" in journal.values())

    assert journal.values() == [b"poison", b"good"]
    assert await dead_letters(kafka_broker.bootstrap_servers, topic, count=1) == [b"poison"]
    assert metrics.dead_letters == [(f"{kafka_topic_prefix}-group", dead_letter_topic(topic))]


async def test_transient_failures_are_retried_and_dead_lettered_once_attempts_run_out(
    kafka_broker, kafka_topic_prefix, new_topic, new_runner, publisher
):
    topic = await new_topic(1)
    journal = Journal()

    async def fail_flaky_once_and_doomed_always(message: IncomingMessage, attempt: int) -> None:
        if message.value == b"doomed" or (message.value == b"flaky" and attempt == 1):
            raise ConnectionError("storage hiccup")

    await publisher.publish([message(topic, "video-1", value) for value in ("flaky", "doomed", "after")])
    metrics = InMemoryMetrics()
    runner = new_runner(topic, journal.recording("a", fail_flaky_once_and_doomed_always), max_attempts=3, backoff_s=[0.05],
                        metrics=metrics)
    async with running(runner):
        await wait_until(lambda: b"after" in journal.values())

    assert [(entry.message.value, entry.attempt, entry.final_attempt) for entry in journal.entries] == [
        (b"flaky", 1, False), (b"flaky", 2, False),
        (b"doomed", 1, False), (b"doomed", 2, False), (b"doomed", 3, True),
        (b"after", 1, False),
    ]
    assert await dead_letters(kafka_broker.bootstrap_servers, topic, count=1) == [b"doomed"]
    assert metrics.dead_letters == [(f"{kafka_topic_prefix}-group", dead_letter_topic(topic))]  # "flaky" succeeded on retry


async def test_a_message_whose_partition_was_rebalanced_mid_handler_is_handled_again(
    new_topic, new_runner, publisher
):
    topic = await new_topic(1)
    journal = Journal()
    release_first = asyncio.Event()

    async def hold_the_first(message: IncomingMessage, attempt: int) -> None:
        if len(journal.entries) == 1:
            await release_first.wait()

    first, second = (new_runner(topic, journal.recording(name, hold_the_first)) for name in ("first", "second"))
    async with running(first):
        await wait_until(settled([first], partitions=1))
        await publisher.publish([message(topic, "video-1", "slow")])
        await wait_until(lambda: len(journal.entries) == 1)
        async with running(second):
            await wait_until(settled([first, second], partitions=1))
            # Polls go on meanwhile; were a partition assigned back not paused again, they
            # would fetch (and lose) the message that is still being handled.
            await asyncio.sleep(2)
            release_first.set()  # finishes after losing its partition, so it must not commit
            await publisher.publish([message(topic, "video-1", "next")])
            await wait_until(lambda: b"next" in journal.values())

    assert journal.values() == [b"slow", b"slow", b"next"]


async def test_stopping_with_a_grace_lets_the_message_in_hand_finish_and_commits_it(
    new_topic, new_runner, publisher
):
    topic = await new_topic(1)
    journal = Journal()
    release = asyncio.Event()

    async def wait_for_release(message: IncomingMessage, attempt: int) -> None:
        if message.value == b"long task":
            await release.wait()

    first = new_runner(topic, journal.recording("first", wait_for_release))
    task = asyncio.create_task(first.run())
    await wait_until(lambda: first.assigned_partitions == frozenset({0}))
    await publisher.publish([message(topic, "video-1", "long task")])
    await wait_until(lambda: len(journal.entries) == 1)

    stopping = asyncio.create_task(first.stop(grace_s=60))
    await asyncio.sleep(0.2)
    assert not stopping.done()  # it waits for the message in hand
    release.set()
    await stopping
    await task
    assert not first.abandoned

    second = new_runner(topic, journal.recording("second"))
    await publisher.publish([message(topic, "video-1", "next")])
    async with running(second):
        await wait_until(lambda: b"next" in journal.values("second"))
    assert journal.values("second") == [b"next"]  # the finished one was committed


async def test_stopping_abandons_a_handler_stuck_in_a_thread_uncommitted_and_leaves_the_group(
    new_topic, new_runner, publisher
):
    import threading

    topic = await new_topic(1)
    journal = Journal()
    unblock = threading.Event()

    async def block_a_thread_the_first_time(message: IncomingMessage, attempt: int) -> None:
        if len(journal.entries) == 1:
            await anyio.to_thread.run_sync(unblock.wait)  # like an encoder: cancelling waits for it

    runners = {name: new_runner(topic, journal.recording(name, block_a_thread_the_first_time)) for name in ("a", "b")}
    try:
        async with running(*runners.values()):
            await wait_until(settled(runners.values(), partitions=1))
            await publisher.publish([message(topic, "video-1", "transcode me")])
            await wait_until(lambda: len(journal.entries) == 1)
            stuck = journal.entries[0].by

            await runners[stuck].stop(grace_s=0.5)

            assert runners[stuck].abandoned
            await wait_until(lambda: len(journal.entries) == 2)
    finally:
        unblock.set()
    [survivor] = set(runners) - {stuck}
    assert [(entry.by, entry.message.value) for entry in journal.entries] == [
        (stuck, b"transcode me"), (survivor, b"transcode me"),
    ]
