"""Views over the real Kafka-protocol broker and PostgreSQL: the api's buffer keeps views while
the broker is away, and the analytics consumer counts each exactly once, across redeliveries
and restarts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import anyio
import pytest

from adapters.inbound.analytics_consumer import KafkaViewsConsumer
from adapters.outbound.kafka import KafkaEventPublisher, ensure_topics
from adapters.outbound.metrics import InMemoryViewMetrics
from adapters.outbound.sql_analytics import SqlAnalytics
from adapters.outbound.sql_catalog import SqlCatalog
from application.analytics import Analytics, ViewBuffer
from application.integration_events import VideoViewed, to_message

VIDEOS = [uuid.uuid4() for _ in range(3)]
FAN, CRITIC = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def catalog(postgres_url, postgres_schema):
    catalog = SqlCatalog(f"{postgres_url}?schema={postgres_schema}")
    catalog.create_tables()
    yield catalog
    catalog.close()


def viewed(video_id: uuid.UUID, user_id: uuid.UUID, event_id: str | None = None) -> VideoViewed:
    return VideoViewed(event_id=event_id or str(uuid.uuid4()), video_id=str(video_id), user_id=str(user_id),
                       viewed_at=datetime.now(UTC))


async def run_until(consumer: KafkaViewsConsumer, handled: int, timeout: float = 30) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(consumer.run)
        with anyio.fail_after(timeout):
            while consumer.handled < handled:
                await anyio.sleep(0.1)
        group.cancel_scope.cancel()


@pytest.mark.anyio
async def test_the_consumer_counts_every_view_once_across_redelivery_and_restart(
    catalog, kafka_broker, kafka_topic_prefix
):
    topic, group = f"{kafka_topic_prefix}-viewed", f"analytics-{uuid.uuid4().hex[:6]}"
    bootstrap = kafka_broker.bootstrap_servers
    await ensure_topics(bootstrap, {topic: 3})
    publisher = KafkaEventPublisher(bootstrap)
    first = [viewed(VIDEOS[0], FAN), viewed(VIDEOS[1], FAN), viewed(VIDEOS[0], CRITIC), viewed(VIDEOS[2], CRITIC)]
    twice = viewed(VIDEOS[1], CRITIC)
    await publisher.publish([to_message(view, topic) for view in [*first, twice, twice]])  # a retried publish
    analytics = Analytics(SqlAnalytics(catalog))
    consumer = KafkaViewsConsumer(bootstrap, topic, analytics, group_id=group, batch_size=2, session_timeout_ms=3000)
    await run_until(consumer, handled=6)
    assert consumer.counted == 5
    assert [catalog.counts(video)[0] for video in VIDEOS] == [2, 2, 1]

    # Restarted with its broker commits lost (a group the broker has never seen): all is redelivered.
    await publisher.publish([to_message(viewed(VIDEOS[2], FAN), topic)])
    restarted = KafkaViewsConsumer(bootstrap, topic, analytics, group_id=f"{group}-again", session_timeout_ms=3000)
    await run_until(restarted, handled=7)  # all six again, and the new one
    await publisher.close()
    assert restarted.counted == 1
    assert [catalog.counts(video)[0] for video in VIDEOS] == [2, 2, 2]
    by_day = catalog.views_by_day(VIDEOS[0])
    assert len(by_day) == 1 and by_day[0].views == 2
    history = [video_id for video_id, _ in _history(catalog, FAN)]
    assert history == [VIDEOS[2], VIDEOS[1], VIDEOS[0]]


def _history(catalog: SqlCatalog, user_id: uuid.UUID) -> list[tuple[uuid.UUID, datetime]]:
    """The raw history rows (the catalog has no videos in this test to join them with)."""
    table = catalog.audience.history
    with catalog.engine.connect() as conn:
        rows = conn.execute(table.select().where(table.c.user_id == user_id).order_by(table.c.viewed_at.desc()))
        return [(row.video_id, row.viewed_at) for row in rows]


@pytest.mark.anyio
async def test_views_buffered_while_kafka_is_down_are_published_once_it_returns(
    catalog, kafka_broker, kafka_topic_prefix
):
    topic = f"{kafka_topic_prefix}-viewed"
    bootstrap = kafka_broker.bootstrap_servers
    await ensure_topics(bootstrap, {topic: 3})
    metrics = InMemoryViewMetrics()
    publisher = KafkaEventPublisher(bootstrap, timeout_s=2)
    buffer = ViewBuffer(publisher, topic=topic, capacity=5, batch_size=2, metrics=metrics, retry_s=0.2, max_retry_s=1)
    async with anyio.create_task_group() as group:
        group.start_soon(buffer.run)
        kafka_broker.stop()
        offered = [buffer.offer(viewed(VIDEOS[n % 3], uuid.uuid4())) for n in range(7)]  # never waits
        assert offered == [True] * 5 + [False] * 2
        assert (buffer.pending, buffer.dropped, metrics.dropped) == (5, 2, 2)
        await anyio.sleep(3)  # publishing fails meanwhile; nothing is let go
        assert buffer.pending == 5
        kafka_broker.start()  # an in-memory broker comes back empty: the topic is made again
        await ensure_topics(bootstrap, {topic: 3})
        assert await buffer.flush(timeout_s=30)
        group.cancel_scope.cancel()
    await publisher.close()
    consumer = KafkaViewsConsumer(bootstrap, topic, Analytics(SqlAnalytics(catalog)),
                                  group_id=f"analytics-{uuid.uuid4().hex[:6]}", session_timeout_ms=3000)
    async with anyio.create_task_group() as group:
        group.start_soon(consumer.run)
        with anyio.fail_after(30):
            while consumer.counted < 5:
                await anyio.sleep(0.1)
        await anyio.sleep(1)  # a retried batch may have been written twice: let any copy arrive too
        group.cancel_scope.cancel()
    assert consumer.counted == 5 and metrics.published >= 5
    assert sum(catalog.counts(video)[0] for video in VIDEOS) == 5
