"""Views: beacon throughput against a trivial request, and the analytics consumer's rate.

1. `vodhub api` on PostgreSQL, Redis and the Kafka-protocol broker: POST /api/videos/{id}/views
   against GET /health/live, same client, same concurrency, same run. Target: a beacon costs at
   most 2x a trivial request (it must not wait for the broker).
2. KafkaViewsConsumer on PostgreSQL counting views already in the topic. Target: >= 2,000 views/s.

Run: make bench (or .venv/bin/pytest tests/bench/bench_audience.py -o python_files='bench_*.py' -s).
BENCH_SECONDS and BENCH_VIEWS change the durations."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from datetime import UTC, datetime

import anyio
import httpx

from adapters.inbound.analytics_consumer import KafkaViewsConsumer
from adapters.outbound.kafka import KafkaEventPublisher, ensure_topics
from adapters.outbound.sql_analytics import SqlAnalytics
from adapters.outbound.sql_catalog import SqlCatalog
from application.analytics import Analytics
from application.integration_events import VideoViewed, to_message
from tests.e2e.test_audience_stack import sign_up
from tests.e2e.test_dev_playback import upload
from tests.fixtures.processes import vodhub_process
from tests.media_factory import write_clip

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
VIEWS = int(os.environ.get("BENCH_VIEWS", "20000"))
CONCURRENCY = 16


async def hammer(base_url: str, requests: list[tuple[str, str, dict]]) -> float:
    """Requests per second over SECONDS, CONCURRENCY at a time, cycling through `requests`."""
    done = 0
    cycle = itertools.cycle(requests)
    deadline = time.perf_counter() + SECONDS
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                method, path, headers = next(cycle)
                response = await client.request(method, path, headers=headers)
                assert response.status_code in (200, 202), response.text
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return done / (time.perf_counter() - started)


def test_beacon_throughput_against_a_trivial_request(tmp_path, postgres_url, postgres_schema, redis_url, redis_prefix,
                                                     kafka_broker, kafka_topic_prefix):
    env = {
        "VODHUB_DATABASE_URL": f"{postgres_url}?schema={postgres_schema}", "VODHUB_REDIS_URL": redis_url,
        "VODHUB_REDIS_PREFIX": redis_prefix, "VODHUB_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "VODHUB_TOPIC_VIDEO_VIEWED": f"{kafka_topic_prefix}-viewed", "VODHUB_RATE_LIMITS": "off",
        "VODHUB_DATA_DIR": str(tmp_path / "data"), "VODHUB_LOG_LEVEL": "WARNING",
    }
    clip = write_clip(tmp_path / "clip.mp4").read_bytes()
    with vodhub_process("api", cwd=tmp_path, env=env) as base_url:
        viewers = [sign_up(base_url, f"viewer{n}") for n in range(4)]
        videos = [upload(base_url, viewers[0], clip) for _ in range(10)]
        beacons = [("POST", f"/api/videos/{video}/views", headers) for video in videos for headers in viewers]
        live = anyio.run(hammer, base_url, [("GET", "/health/live", {})])
        beacon = anyio.run(hammer, base_url, beacons)
        live_again = anyio.run(hammer, base_url, [("GET", "/health/live", {})])
    trivial = (live + live_again) / 2
    print(f"\n  GET /health/live     {trivial:8.0f} requests/s\n  POST …/views         {beacon:8.0f} requests/s"
          f"\n  a beacon costs {trivial / beacon:.2f}x a trivial request (target <= 2x)")


def test_analytics_consumer_rate(postgres_url, postgres_schema, kafka_broker, kafka_topic_prefix):
    topic = f"{kafka_topic_prefix}-viewed"
    catalog = SqlCatalog(f"{postgres_url}?schema={postgres_schema}")
    catalog.create_tables()
    videos, users = [uuid.uuid4() for _ in range(200)], [uuid.uuid4() for _ in range(2000)]

    async def fill() -> None:
        await ensure_topics(kafka_broker.bootstrap_servers, {topic: 3})
        publisher = KafkaEventPublisher(kafka_broker.bootstrap_servers)
        views = [VideoViewed(event_id=str(uuid.uuid4()), video_id=str(videos[n % len(videos)]),
                             user_id=str(users[(n * 7) % len(users)]), viewed_at=datetime.now(UTC))
                 for n in range(VIEWS)]
        for start in range(0, VIEWS, 1000):
            await publisher.publish([to_message(view, topic) for view in views[start:start + 1000]])
        await publisher.close()

    async def count() -> float:
        consumer = KafkaViewsConsumer(kafka_broker.bootstrap_servers, topic, Analytics(SqlAnalytics(catalog)),
                                      group_id=f"bench-{uuid.uuid4().hex[:6]}")
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            group.start_soon(consumer.run)
            while consumer.handled < VIEWS:
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()
        assert consumer.counted == VIEWS
        return VIEWS / (time.perf_counter() - started)

    anyio.run(fill)
    rate = anyio.run(count)
    catalog.close()
    print(f"\n  analytics consumer   {rate:8.0f} views/s on PostgreSQL (target >= 2000)")
