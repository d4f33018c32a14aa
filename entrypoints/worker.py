"""The worker process: plan uploaded videos and run transcode tasks, in a consumer group."""

from __future__ import annotations

import logging
import os

import anyio

from adapters.inbound.messaging import InProcessConsumerRunner, KafkaConsumerRunner, MessageHandler
from adapters.inbound.processing_consumer import ProcessingConsumer
from adapters.inbound.tracing import traced_handler
from adapters.outbound import tracing
from adapters.outbound.in_process_bus import InProcessEventBus
from adapters.outbound.metrics import PrometheusMetrics
from adapters.outbound.pyav_transcoder import PyAVTranscoder
from application.processing import VideoProcessor
from entrypoints.bootstrap import Vodhub, bootstrap
from entrypoints.settings import Settings
from entrypoints.shutdown import consumer_loop, run_until_terminated

logger = logging.getLogger("vodhub.worker")

Runner = KafkaConsumerRunner | InProcessConsumerRunner


def build_processor(vodhub: Vodhub, metrics: PrometheusMetrics | None = None) -> VideoProcessor:
    settings = vodhub.settings
    return VideoProcessor(
        vodhub.videos, PyAVTranscoder(threads=settings.worker_threads), vodhub.storage, work_dir=settings.work_dir,
        metrics=metrics or PrometheusMetrics(), ladder=settings.ladder_rungs(), chunking=settings.chunking(),
    )


def build_consumers(vodhub: Vodhub) -> list[Runner]:
    """One Kafka consumer for both topics (a worker process runs one thing at a time: add
    processes to use more cores), or runners on the in-process bus."""
    settings = vodhub.settings
    metrics = PrometheusMetrics()
    handler: MessageHandler = ProcessingConsumer(build_processor(vodhub, metrics), settings.topic_transcode_tasks)
    if tracing.enabled():
        handler = traced_handler(handler, settings.worker_group, {settings.topic_video_uploaded: "plan",
                                                           settings.topic_transcode_tasks: "task"})
    topics = [settings.topic_video_uploaded, settings.topic_transcode_tasks]
    backoff = tuple(settings.worker_backoff_s * 2**n for n in range(max(settings.worker_max_attempts - 1, 1)))
    if isinstance(vodhub.publisher, InProcessEventBus):
        # The embedded worker runs a task per core at once, as a group of that many
        # single-task workers would: one video's chunks then use the whole machine.
        slots = [settings.topic_video_uploaded] + [settings.topic_transcode_tasks] * (os.cpu_count() or 1)
        return [
            InProcessConsumerRunner(vodhub.publisher, topic, handler, max_attempts=settings.worker_max_attempts,
                                    backoff_s=backoff)
            for topic in slots
        ]
    assert settings.kafka_bootstrap_servers
    return [KafkaConsumerRunner(
        settings.kafka_bootstrap_servers, topics, settings.worker_group, handler, dead_letter_publisher=vodhub.publisher,
        security=settings.kafka_security(),
        max_attempts=settings.worker_max_attempts, backoff_s=backoff,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 10), metrics=metrics,
    )]


def run_worker(settings: Settings) -> None:
    vodhub = bootstrap(settings, holds_signing_key=False)

    async def work() -> None:
        from entrypoints.topics import ensure_topics_exist

        await ensure_topics_exist(settings)
        logger.info("worker: consuming %s and %s as group %s", settings.topic_video_uploaded,
                    settings.topic_transcode_tasks, settings.worker_group)
        runners = build_consumers(vodhub)
        await run_until_terminated([consumer_loop(runner, settings.shutdown_grace_s) for runner in runners],
                                   grace_s=settings.shutdown_grace_s, name="worker")
        if any(runner.abandoned for runner in runners):
            # A task's encoding thread cannot be interrupted, and the interpreter would wait for
            # it: its message is uncommitted and the group left, so go now.
            logger.info("worker: exiting with an abandoned task; it will be redelivered")
            logging.shutdown()
            os._exit(0)

    try:
        anyio.run(work)
    except KeyboardInterrupt:
        pass
    finally:
        vodhub.close()
