"""The relay on PostgreSQL and the real Kafka-protocol broker: uploads go on while the broker
is away, and every pending event is published once it is back, in order."""

from __future__ import annotations

import uuid

import anyio
import pytest
from aiokafka import AIOKafkaConsumer

from adapters.outbound.clock import RandomIdGenerator, SettableClock
from adapters.outbound.kafka import KafkaEventPublisher, ensure_topics
from adapters.outbound.object_storage import InMemoryObjectStorage
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from application.integration_events import VideoUploaded, decode
from application.relay import OutboxRelay, Topics
from application.videos import Videos
from entrypoints.bootstrap import _tracking_recorder
from tests.fixtures.videos import add_video


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def videos(postgres_eventstore_env):
    app = Videos(storage=InMemoryObjectStorage(), inspector=PyAVMediaInspector(), clock=SettableClock(),
                 ids=RandomIdGenerator(), max_upload_bytes=10**9, env=postgres_eventstore_env)
    yield app
    app.close()


async def consume(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"check-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    received = []
    try:
        with anyio.fail_after(timeout):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    received.extend(records)
    finally:
        await consumer.stop()
    return received


@pytest.mark.anyio
async def test_uploads_while_kafka_is_down_are_all_published_when_it_returns(
    videos, postgres_eventstore_env, kafka_broker, kafka_topic_prefix
):
    topics = Topics(video_uploaded=f"{kafka_topic_prefix}-uploaded", video_processed=f"{kafka_topic_prefix}-processed")
    await ensure_topics(kafka_broker.bootstrap_servers, {topics.video_uploaded: 3, topics.video_processed: 3})
    publisher = KafkaEventPublisher(kafka_broker.bootstrap_servers, timeout_s=3)
    relay = OutboxRelay(videos, _tracking_recorder("relay", postgres_eventstore_env), publisher, topics)
    for _ in range(3):
        add_video(videos)
    assert await relay.relay_once() == 3

    kafka_broker.stop()
    during = [add_video(videos) for _ in range(4)]  # the event store keeps taking uploads
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert relay.position() == 3

    kafka_broker.start()  # an in-memory broker comes back empty: topics are made again
    await ensure_topics(kafka_broker.bootstrap_servers, {topics.video_uploaded: 3, topics.video_processed: 3})
    with anyio.fail_after(60):
        while relay.position() < 7:
            try:
                await relay.relay_once()
            except ConnectionError:
                await anyio.sleep(0.5)
    records = await consume(kafka_broker.bootstrap_servers, topics.video_uploaded, count=4)
    published = [decode(record.value, VideoUploaded).video_id for record in records]
    assert sorted(published) == sorted(str(video.id) for video in during)  # none lost, none doubled
    assert all(record.key.decode() == decode(record.value, VideoUploaded).video_id for record in records)
    upload_order = [str(video.id) for video in during]
    for partition in {record.partition for record in records}:  # each partition keeps upload order
        in_partition = [decode(r.value, VideoUploaded).video_id for r in records if r.partition == partition]
        assert in_partition == [v for v in upload_order if v in in_partition]
    await publisher.close()
