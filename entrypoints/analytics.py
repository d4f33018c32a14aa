"""The analytics process: count `video-viewed-events` into the read model (consumer group `analytics`)."""

from __future__ import annotations

import logging

import anyio

from adapters.inbound.analytics_consumer import InProcessViewsConsumer, KafkaViewsConsumer
from adapters.outbound.in_process_bus import InProcessEventBus
from adapters.outbound.sql_analytics import SqlAnalytics
from adapters.outbound.sql_catalog import SqlCatalog
from application.analytics import Analytics
from application.ports import EventPublisher
from entrypoints.projector import build_catalog
from entrypoints.schema_lock import schema_creation_lock
from entrypoints.settings import Settings
from entrypoints.shutdown import cancelled_on_stop, run_until_terminated

logger = logging.getLogger("vodhub.analytics")


def build_views_consumer(
    settings: Settings, catalog: SqlCatalog, bus: EventPublisher | None = None,
) -> KafkaViewsConsumer | InProcessViewsConsumer:
    analytics = Analytics(SqlAnalytics(catalog))
    if isinstance(bus, InProcessEventBus):
        return InProcessViewsConsumer(bus, settings.topic_video_viewed, analytics, settings.analytics_batch_size)
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("vodhub analytics: set VODHUB_KAFKA_BOOTSTRAP_SERVERS (vodhub dev counts views in-process)")
    return KafkaViewsConsumer(
        settings.kafka_bootstrap_servers, settings.topic_video_viewed, analytics,
        batch_size=settings.analytics_batch_size, session_timeout_ms=settings.kafka_session_timeout_ms,
        security=settings.kafka_security(),
    )


def run_analytics(settings: Settings) -> None:
    with schema_creation_lock(settings.database_url):
        catalog = build_catalog(settings)
    consumer = build_views_consumer(settings, catalog)

    async def count() -> None:
        from entrypoints.topics import ensure_topics_exist

        await ensure_topics_exist(settings)
        logger.info("analytics: consuming %s as group analytics", settings.topic_video_viewed)
        # A batch is one transaction in a thread, which a cancellation waits for.
        await run_until_terminated([cancelled_on_stop(consumer.run)], grace_s=settings.shutdown_grace_s,
                                   name="analytics")

    try:
        anyio.run(count)
    except KeyboardInterrupt:
        pass
    finally:
        catalog.close()
