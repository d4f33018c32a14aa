"""Inbound messaging: call an async handler for every message of a topic, at least once.

Both runners hand a handler one message at a time, in order, retry transient failures
with backoff, and copy a message that cannot be handled to `<topic>.dlq` so it never
blocks what follows. KafkaConsumerRunner commits a message only after it was handled
or dead-lettered; InProcessConsumerRunner is the embedded default and, like its bus,
forgets a message once taken. Either way handlers must be idempotent: Kafka delivers
again whatever was not committed (a crash, a stop, a rebalance mid-handler).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from adapters.outbound.in_process_bus import InProcessEventBus
from adapters.outbound.kafka_security import PLAINTEXT, KafkaSecurity
from application.errors import OutcomeNotRecorded
from application.integration_events import dead_letter_topic
from application.ports import EventPublisher, OutgoingMessage

log = logging.getLogger("vodhub.messaging")


@dataclass(frozen=True)
class IncomingMessage:
    topic: str
    partition: int
    offset: int
    key: bytes  # b"" when the message has none
    value: bytes
    trace_context: str | None = None  # the W3C traceparent it came with


class MessageHandler(Protocol):
    async def __call__(self, message: IncomingMessage, *, attempt: int, final_attempt: bool) -> None:
        """Handle the message; raise PermanentFailure if it can never succeed, anything
        else to have it retried. On the final attempt a retryable failure should be
        recorded before raising, because the message goes to the dead-letter topic next."""


class ConsumerMetrics(Protocol):
    def consumer_lag(self, group: str, topic: str, partition: int, lag: int) -> None:
        """How many messages the group is behind on one partition."""

    def dead_lettered(self, group: str, topic: str) -> None:
        """The group gave up on a message and copied it to the dead-letter `topic`."""


class PermanentFailure(Exception):
    """The message can never be handled (it does not decode, say): dead-letter it at once."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_s: tuple[float, ...]  # wait before the 2nd, 3rd, … attempt; the last one repeats

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or (self.max_attempts > 1 and not self.backoff_s):
            raise ValueError("a retry policy needs at least one attempt and one backoff")

    def wait_before(self, attempt: int) -> float:
        if not self.backoff_s:
            return 1.0  # one attempt only, yet retried: the outcome could not be recorded
        return self.backoff_s[max(0, min(attempt - 2, len(self.backoff_s) - 1))]


async def deliver(
    message: IncomingMessage, handler: MessageHandler, retry: RetryPolicy, dead_letters: EventPublisher
) -> bool:
    """Handle the message, retrying transient failures; dead-letter it when it cannot be
    handled. Returns once the message may be committed, True if it was dead-lettered; raises
    only if the dead-letter publish fails, and then the message must not be committed.
    A handler that raises OutcomeNotRecorded is retried past max_attempts, at the last
    backoff, until it succeeds or the runner stops: giving up would lose the message."""
    attempt = 0
    while True:
        attempt += 1
        final_attempt = attempt >= retry.max_attempts
        try:
            await handler(message, attempt=attempt, final_attempt=final_attempt)
            return False
        except PermanentFailure:
            log.exception("Dead-lettering %s: it can never be handled", _describe(message))
            break
        except OutcomeNotRecorded:
            log.warning("Attempt %d at %s failed and its outcome could not be recorded; retrying",
                        attempt, _describe(message), exc_info=True)
        except Exception:
            if final_attempt:
                log.exception("Dead-lettering %s after %d failed attempts", _describe(message), attempt)
                break
            log.warning("Attempt %d at %s failed; retrying", attempt, _describe(message), exc_info=True)
        await asyncio.sleep(retry.wait_before(attempt + 1))
    dead_letter = OutgoingMessage(topic=dead_letter_topic(message.topic), key=message.key, value=message.value,
                                  trace_context=message.trace_context)
    await dead_letters.publish([dead_letter])
    return True


def _traceparent(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    for name, value in headers or ():
        if name == "traceparent" and value:
            return value.decode("ascii", "replace")
    return None


def _describe(message: IncomingMessage) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"


# How long a stop waits for a cancelled handler to end (a transcode in a thread cannot be
# interrupted): past it, the handler is abandoned to the process's exit, uncommitted.
ABANDON_WAIT_S = 2.0


class _StoppableRunner(ABC):
    """run() consumes until stop(); stop() takes no more messages, gives the one being handled
    a grace period, then cancels it, so an unfinished message is never committed."""

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._handling = False
        self.abandoned = False  # stop() cut a handler short: its threads may still run, exit the process

    async def run(self) -> None:
        """Consume until stop() is called; raises if consuming fails for good."""
        if self._stopping:
            return
        self._task = asyncio.current_task()
        try:
            await self._consume()
        except asyncio.CancelledError:
            # Swallow only stop()'s own cancellation, not one from whoever runs us.
            if not self._stopping or self._task.uncancel() > 0:
                raise

    async def stop(self, grace_s: float = 0.0) -> None:
        """Take no more messages. The one being handled has grace_s to finish (and be
        committed); then it is cancelled, and not committed, so the group delivers it again.
        Returns once run() has ended."""
        self._stopping = True
        if self._task is None or self._task.done():
            return
        if self._handling and grace_s > 0:
            await asyncio.wait({self._task}, timeout=grace_s)  # run() ends by itself after it
        if not self._task.done():
            self._task.cancel()
        await asyncio.wait({self._task})

    async def _finish_or_abandon(self, delivery: asyncio.Task) -> None:
        """After the handler finished, or a cancellation: wait for it to end, but not for long
        while stopping (a thread it runs may go on regardless: the process should exit)."""
        finished = delivery.done()
        delivery.cancel()  # a no-op once it finished
        await asyncio.wait({delivery}, timeout=ABANDON_WAIT_S if self._stopping else None)
        if not finished and self._stopping:
            self.abandoned = True
            log.warning("Abandoned the message in hand at shutdown; it was not committed and will be redelivered")

    @abstractmethod
    async def _consume(self) -> None:
        """Take messages and deliver them, until stopping."""


class KafkaConsumerRunner(_StoppableRunner):
    """A member of a consumer group that handles one message at a time.

    Offsets are committed by hand, one message at a time, after the handler returned or
    the message was dead-lettered: a crash or stop() mid-handler means the group delivers
    it again. Messages of one partition are handled in offset order.

    Long handlers (a transcode takes minutes) keep the membership: aiokafka heartbeats
    from a background task whatever we do, but it leaves the group on its own when
    neither getone() nor getmany() has been called for max_poll_interval_ms (its
    coordinator checks the fetcher's idle time). So the handler runs as a task while
    every assigned partition is paused and getmany(timeout_ms=0) is called every
    second or so; paused partitions return nothing, so this only resets the idle clock.

    A rebalance while a handler runs: the handler finishes, but its message is not
    committed, because the partition may have been owned and committed further by
    another member meanwhile; whoever owns the partition now gets the message again and
    the idempotent handler makes that harmless. Revocation does not wait for the
    handler, so a long transcode never stalls the whole group's rebalance.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str | Sequence[str],
        group_id: str,
        handler: MessageHandler,
        *,
        dead_letter_publisher: EventPublisher,
        max_attempts: int = 5,
        backoff_s: Sequence[float] = (1, 2, 4, 8),
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
        client_id: str = "vodhub",
        metrics: ConsumerMetrics | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        super().__init__()
        self._topics = [topic] if isinstance(topic, str) else list(topic)
        self._group_id = group_id
        self._metrics = metrics
        self._handler = handler
        self._retry = RetryPolicy(max_attempts, tuple(backoff_s))
        self._dead_letters = dead_letter_publisher
        self._consumer_settings = dict(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_poll_interval_ms=max_poll_interval_ms,
            **security.client_options(),
        )
        self._keepalive_s = min(1.0, max_poll_interval_ms / 1000 / 4)
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def assigned_partitions(self) -> frozenset[int] | None:
        """The partitions this member owns now; None until it has joined its group."""
        if self._consumer is None:
            return None
        return frozenset(partition.partition for partition in self._consumer.assignment())

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(**self._consumer_settings)
        handling = _HandlingTracker(consumer)
        consumer.subscribe(self._topics, listener=handling)
        try:
            await consumer.start()  # returns once the group assigned us our partitions
            self._consumer = consumer
            while not self._stopping:
                polled = await consumer.getmany(timeout_ms=1000, max_records=1)
                for partition, records in polled.items():  # one record at most
                    for record in records:
                        await self._handle(consumer, handling, partition, record)
        finally:
            self._consumer = None
            await consumer.stop()  # leaves the group, so our partitions move on at once

    async def _handle(
        self, consumer: AIOKafkaConsumer, handling: _HandlingTracker, partition: TopicPartition, record: ConsumerRecord
    ) -> None:
        message = IncomingMessage(
            topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key or b"", value=record.value or b"", trace_context=_traceparent(record.headers),
        )
        handling.begin(partition)
        self._handling = True
        try:
            dead_lettered = await self._deliver_keeping_membership(consumer, message)
        finally:
            self._handling = False
            partition_kept = handling.end()
        if dead_lettered and self._metrics is not None:
            self._metrics.dead_lettered(self._group_id, dead_letter_topic(record.topic))
        if not partition_kept:
            log.info("Not committing %s: its partition was rebalanced meanwhile", _describe(message))
            return
        try:
            await consumer.commit({partition: record.offset + 1})
        except CommitFailedError:
            log.info("Not committing %s: a rebalance began as it finished", _describe(message))
            return
        end = consumer.highwater(partition)
        if self._metrics is not None and end is not None:
            self._metrics.consumer_lag(self._group_id, record.topic, record.partition, end - record.offset - 1)

    async def _deliver_keeping_membership(self, consumer: AIOKafkaConsumer, message: IncomingMessage) -> bool:
        delivery = asyncio.create_task(deliver(message, self._handler, self._retry, self._dead_letters))
        try:
            while True:
                done, _ = await asyncio.wait({delivery}, timeout=self._keepalive_s)
                if done:
                    return delivery.result()
                await consumer.getmany(timeout_ms=0)  # resets aiokafka's max_poll_interval clock
        finally:
            await self._finish_or_abandon(delivery)  # it finished, or stop() or a failed poll


class _HandlingTracker(ConsumerRebalanceListener):
    """Keeps every partition paused while a message is handled, and notes whether a
    rebalance took the message's partition away meanwhile.

    A rebalance replaces every partition's state, pauses included, so new assignments
    are paused again here. aiokafka calls on_partitions_assigned before it looks up the
    committed offsets, so no record of a new partition is fetched in between.
    """

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._partition: TopicPartition | None = None
        self._partition_kept = True

    def begin(self, partition: TopicPartition) -> None:
        self._partition, self._partition_kept = partition, True
        self._consumer.pause(*self._consumer.assignment())

    def end(self) -> bool:
        """Resume fetching; whether the partition stayed ours all along."""
        self._partition = None
        self._consumer.resume(*self._consumer.assignment())
        return self._partition_kept

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self._partition in revoked:
            self._partition_kept = False

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        for topic in sorted({tp.topic for tp in assigned}):
            log.info("assigned partitions of %s %s", topic, sorted(tp.partition for tp in assigned if tp.topic == topic))
        if self._partition is not None:
            self._consumer.pause(*assigned)


class InProcessConsumerRunner(_StoppableRunner):
    """The embedded default: the same handling, retries and dead letters on the in-process
    bus. The bus hands each message out once and never again, so a message being handled
    when stop() is called is lost, as is everything else the process held. Offsets count
    the messages this runner took, partition is always 0."""

    def __init__(
        self,
        bus: InProcessEventBus,
        topic: str,
        handler: MessageHandler,
        *,
        max_attempts: int = 5,
        backoff_s: Sequence[float] = (1, 2, 4, 8),
    ) -> None:
        super().__init__()
        self._bus = bus
        self._topic = topic
        self._handler = handler
        self._retry = RetryPolicy(max_attempts, tuple(backoff_s))

    async def _consume(self) -> None:
        offsets = itertools.count()
        async with aclosing(self._bus.subscribe(self._topic)) as subscription:
            async for outgoing in subscription:
                message = IncomingMessage(
                    topic=outgoing.topic, partition=0, offset=next(offsets), key=outgoing.key, value=outgoing.value,
                    trace_context=outgoing.trace_context,
                )
                await deliver(message, self._handler, self._retry, self._bus)
