"""EventPublisher on Kafka (aiokafka), and the topic set-up the processes run at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import ExitStack

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from adapters.outbound import tracing
from adapters.outbound.kafka_security import PLAINTEXT, KafkaSecurity
from application.ports import OutgoingMessage

log = logging.getLogger(__name__)


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached, or did not acknowledge in time.

    A ConnectionError, so callers can catch it without importing this adapter."""


async def _partition(producer: AIOKafkaProducer, message: OutgoingMessage) -> int | None:
    """The partition a spread message goes to; None lets the key choose."""
    if message.spread is None:
        return None
    partitions = sorted(await producer.partitions_for(message.topic))
    return partitions[message.spread % len(partitions)]


class KafkaEventPublisher:
    """Publishes with acks="all" and returns only once every message is acknowledged.

    Order: messages of one publish are handed to the producer in order, and aiokafka
    keeps at most one request in flight per broker, so a retried batch cannot overtake
    a later one on the same partition.

    Idempotence is off: Tansu (the broker the tests run on) rejects InitProducerId. A
    retried batch may therefore be written twice, which the contract already allows
    (consumers are idempotent; see application/integration_events.py).

    After any failure the producer is thrown away and the next call starts a fresh one,
    so a publisher outlives broker restarts without stale connections or metadata.
    """

    def __init__(
        self, bootstrap_servers: str, client_id: str = "vodhub", timeout_s: float = 10.0,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._security = security
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        # One publish at a time, so two callers' messages never interleave on a key.
        self._publishing = asyncio.Lock()

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        async with self._publishing:
            try:
                # aiokafka bounds each step by request_timeout, but a send can wait on
                # metadata and then on delivery; this bounds the whole call.
                async with asyncio.timeout(self._timeout_s * 1.5):
                    producer = await self._started_producer()
                    with ExitStack() as spans:  # a traced message's span lasts until it is acknowledged
                        deliveries = [
                            await producer.send(message.topic, message.value, key=message.key,
                                                partition=await _partition(producer, message),
                                                headers=_trace_headers(message, spans))
                            for message in messages
                        ]
                        await asyncio.gather(*deliveries)
            except (KafkaError, TimeoutError) as error:
                await self._discard_producer()
                raise BrokerUnavailable(
                    f"Kafka at {self._bootstrap_servers} did not acknowledge {len(messages)} message(s): {error!r}"
                ) from error

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                producer = await self._started_producer()
                await producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError) as error:
            raise BrokerUnavailable(f"Kafka at {self._bootstrap_servers} is unreachable: {error!r}") from error

    async def close(self) -> None:
        """Deliver what is pending and disconnect."""
        async with self._starting:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _started_producer(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap_servers,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=False,
                    request_timeout_ms=int(self._timeout_s * 1000),
                    **self._security.client_options(),
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()  # releases the connections start() opened
                    raise
                self._producer = producer
            return self._producer

    async def _discard_producer(self) -> None:
        async with self._starting:
            producer, self._producer = self._producer, None
        if producer is None:
            return
        # stop() flushes, which cannot succeed while the broker is away; give up on it
        # rather than hang, the pending deliveries have already been reported as failed.
        try:
            async with asyncio.timeout(self._timeout_s):
                await producer.stop()
        except (KafkaError, TimeoutError) as error:
            log.warning("Discarded a Kafka producer that did not stop cleanly: %r", error)


def _trace_headers(message: OutgoingMessage, spans: ExitStack) -> list[tuple[str, bytes]] | None:
    """The `traceparent` header continuing the trace of what the message announces: through a
    publish span of this process when it traces, else passed on as it came."""
    if not message.trace_context:
        return None
    span = spans.enter_context(tracing.span_from(
        message.trace_context, f"publish {message.topic}", tracing.SpanKind.PRODUCER,
        {"messaging.system": "kafka", "messaging.destination.name": message.topic,
         "messaging.kafka.message.key": message.key.decode("utf-8", "replace")},
    ))
    traceparent = tracing.current_traceparent() if span is not None else message.trace_context
    return [(tracing.TRACEPARENT, (traceparent or message.trace_context).encode("ascii"))]


async def ensure_topics(
    bootstrap_servers: str, topics: dict[str, int], replication_factor: int = 1, timeout_s: float = 10.0,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create the topics (name -> partition count) that do not exist yet; existing
    topics are left as they are, whatever their partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000),
                                **security.client_options())
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
                for name, partitions in topics.items()
                if name not in existing
            ]
            if not missing:
                return
            response = await admin.create_topics(missing)
    except (KafkaError, TimeoutError) as error:
        raise BrokerUnavailable(f"Kafka at {bootstrap_servers} is unreachable: {error!r}") from error
    finally:
        await admin.close()
    for topic, error_code, *_ in response.topic_errors:
        error_type = for_code(error_code)
        # Another process may have created it between list_topics and create_topics.
        if error_code and error_type is not TopicAlreadyExistsError:
            raise error_type(f"cannot create topic {topic}")
