"""The notifier process: consume video-processed-events (group `notifications`) into the
delivery queue, and deliver signed webhooks from it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from adapters.inbound.messaging import InProcessConsumerRunner, KafkaConsumerRunner, MessageHandler
from adapters.inbound.notification_consumer import VideoProcessedConsumer
from adapters.inbound.tracing import traced_handler
from adapters.outbound import tracing
from adapters.outbound.http_webhooks import HttpWebhookSender
from adapters.outbound.in_process_bus import InProcessEventBus
from adapters.outbound.metrics import PrometheusMetrics
from application.notifier import Notifier, WebhookDispatcher
from entrypoints.bootstrap import Vodhub, bootstrap
from entrypoints.settings import Settings

logger = logging.getLogger("vodhub.notifier")
CONSUMER_GROUP = "notifications"


def notifier_tasks(vodhub: Vodhub) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """The consumer that queues deliveries and the dispatcher that makes them."""
    settings = vodhub.settings
    webhooks = vodhub.webhooks
    assert webhooks is not None
    handler: MessageHandler = VideoProcessedConsumer(Notifier(webhooks.store, webhooks.clock))
    if tracing.enabled():  # a webhook's queueing joins the trace of the upload it announces
        handler = traced_handler(handler, CONSUMER_GROUP, {settings.topic_video_processed: "queue webhooks"})
    topic = settings.topic_video_processed
    consumer: InProcessConsumerRunner | KafkaConsumerRunner
    if isinstance(vodhub.publisher, InProcessEventBus):
        consumer = InProcessConsumerRunner(vodhub.publisher, topic, handler, max_attempts=5, backoff_s=(1, 2, 4, 8))
    else:
        assert settings.kafka_bootstrap_servers
        consumer = KafkaConsumerRunner(
            settings.kafka_bootstrap_servers, topic, CONSUMER_GROUP, handler, dead_letter_publisher=vodhub.publisher,
            security=settings.kafka_security(),
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 10), metrics=PrometheusMetrics(),
        )
    sender = HttpWebhookSender(allow_http=settings.webhooks_allow_http, allow_private=settings.webhooks_allow_private)
    dispatcher = WebhookDispatcher(webhooks.store, webhooks.box, sender, webhooks.clock,
                                   first_retry_s=settings.webhooks_first_retry_s)
    return [consumer.run, dispatcher.run]


def run_notifier(settings: Settings) -> None:
    from entrypoints.shutdown import cancelled_on_stop, run_until_terminated

    vodhub = bootstrap(settings, holds_signing_key=False)

    async def notify() -> None:
        from entrypoints.topics import ensure_topics_exist

        await ensure_topics_exist(settings)
        logger.info("notifier: consuming %s as group %s", settings.topic_video_processed, CONSUMER_GROUP)
        # Queueing and claiming are transactions in threads: cancelling stops between them.
        await run_until_terminated([cancelled_on_stop(task) for task in notifier_tasks(vodhub)],
                                   grace_s=settings.shutdown_grace_s, name="notifier")

    try:
        anyio.run(notify)
    except KeyboardInterrupt:
        pass
    finally:
        vodhub.close()
