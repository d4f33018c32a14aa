"""KafkaEventPublisher and ensure_topics against a real Kafka-protocol broker (Tansu)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator

import anyio
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from adapters.outbound.kafka import BrokerUnavailable, KafkaEventPublisher, ensure_topics
from application.ports import OutgoingMessage

pytestmark = pytest.mark.anyio

# Short, so the broker-down tests stay quick; production uses the 10 s default.
TIMEOUT_S = 2.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiokafka is asyncio-only


@pytest.fixture
async def publisher(kafka_broker) -> AsyncIterator[KafkaEventPublisher]:
    publisher = KafkaEventPublisher(kafka_broker.bootstrap_servers, timeout_s=TIMEOUT_S)
    yield publisher
    await publisher.close()


@pytest.fixture
async def topic(kafka_broker, kafka_topic_prefix) -> str:
    name = f"{kafka_topic_prefix}-events"
    await ensure_topics(kafka_broker.bootstrap_servers, {name: 3})
    return name


@pytest.fixture
def restartable_broker(kafka_broker):
    """The session broker, running again when the test ends whatever happened."""
    yield kafka_broker
    if not kafka_broker.running:
        kafka_broker.start()


def messages_for(topic: str, keys: list[str], per_key: int) -> list[OutgoingMessage]:
    # Interleaved across keys, so order per key is not an accident of batching.
    return [
        OutgoingMessage(topic=topic, key=key.encode(), value=f"{key}:{n}".encode())
        for n in range(per_key)
        for key in keys
    ]


async def consume(bootstrap_servers: str, topic: str, count: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of the first count records, reading from the start."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    records = []
    try:
        with anyio.fail_after(10):
            async for record in consumer:
                records.append((record.partition, record.key, record.value))
                if len(records) == count:
                    return records
    finally:
        await consumer.stop()
    return records


async def partition_counts(bootstrap_servers: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return {info["topic"]: len(info["partitions"]) for info in await admin.describe_topics(topics)}
    finally:
        await admin.close()


async def test_messages_of_each_key_arrive_in_publish_order(kafka_broker, publisher, topic):
    keys = [f"video-{n}" for n in range(6, 12)]  # these hash to all three partitions
    await publisher.publish(messages_for(topic, keys[:3], per_key=5))
    await publisher.publish(messages_for(topic, keys, per_key=5))

    records = await consume(kafka_broker.bootstrap_servers, topic, count=45)

    values_by_key: dict[bytes, list[bytes]] = defaultdict(list)
    partitions_by_key: dict[bytes, set[int]] = defaultdict(set)
    for partition, key, value in records:
        values_by_key[key].append(value)
        partitions_by_key[key].add(partition)
    for key in keys[:3]:
        expected = [f"{key}:{n}".encode() for n in range(5)] * 2
        assert values_by_key[key.encode()] == expected
    for key in keys[3:]:
        assert values_by_key[key.encode()] == [f"{key}:{n}".encode() for n in range(5)]
    assert all(len(partitions) == 1 for partitions in partitions_by_key.values())
    assert len(set().union(*partitions_by_key.values())) > 1, "keys should spread over partitions"


async def test_spread_messages_go_to_consecutive_partitions(kafka_broker, publisher, kafka_topic_prefix):
    """What spreads a video's tasks over a group: with the round-robin assignor, consecutive
    partitions belong to different members."""
    name = f"{kafka_topic_prefix}-tasks"
    await ensure_topics(kafka_broker.bootstrap_servers, {name: 4})
    await publisher.publish([
        OutgoingMessage(topic=name, key=b"same-key", value=str(spread).encode(), spread=spread) for spread in range(7, 13)
    ])
    records = await consume(kafka_broker.bootstrap_servers, name, 6)
    assert sorted((int(value), partition) for partition, _, value in records) == [
        (spread, spread % 4) for spread in range(7, 13)
    ]


async def test_publishing_nothing_needs_no_broker():
    await KafkaEventPublisher("127.0.0.1:1", timeout_s=TIMEOUT_S).publish([])


async def test_ensure_topics_creates_only_what_is_missing(kafka_broker, kafka_topic_prefix):
    first, second = f"{kafka_topic_prefix}-a", f"{kafka_topic_prefix}-b"
    await ensure_topics(kafka_broker.bootstrap_servers, {first: 3})
    await ensure_topics(kafka_broker.bootstrap_servers, {first: 5, second: 2})

    assert await partition_counts(kafka_broker.bootstrap_servers, [first, second]) == {first: 3, second: 2}


async def test_publish_while_the_broker_is_down_fails_in_bounded_time_then_recovers(
    restartable_broker, publisher, topic
):
    await publisher.publish(messages_for(topic, ["video-1"], per_key=1))
    restartable_broker.stop()

    with anyio.fail_after(TIMEOUT_S * 2), pytest.raises(BrokerUnavailable):
        await publisher.publish(messages_for(topic, ["video-1"], per_key=1))

    restartable_broker.start()
    # The in-memory broker forgot its topics; a real cluster keeps them.
    await ensure_topics(restartable_broker.bootstrap_servers, {topic: 3})
    await publisher.publish(messages_for(topic, ["video-2"], per_key=1))
    [(_, key, value)] = await consume(restartable_broker.bootstrap_servers, topic, count=1)
    assert (key, value) == (b"video-2", b"video-2:0")


async def test_ping_fails_fast_when_the_broker_is_down(restartable_broker, publisher):
    await publisher.ping()
    restartable_broker.stop()

    with anyio.fail_after(TIMEOUT_S), pytest.raises(BrokerUnavailable):
        await publisher.ping()


async def test_ping_fails_fast_when_nothing_ever_listened():
    with anyio.fail_after(TIMEOUT_S), pytest.raises(BrokerUnavailable):
        await KafkaEventPublisher("127.0.0.1:1", timeout_s=TIMEOUT_S).ping()
