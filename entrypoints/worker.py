"""The worker process: consume VideoUploaded events and transcode, in a consumer group."""

from __future__ import annotations

import logging

import anyio

from adapters.inbound.messaging import InProcessConsumerRunner, KafkaConsumerRunner
from adapters.inbound.video_uploaded_consumer import VideoUploadedConsumer
from adapters.outbound.in_process_bus import InProcessEventBus
from adapters.outbound.metrics import PrometheusMetrics
from adapters.outbound.pyav_transcoder import PyAVTranscoder
from application.processing import VideoProcessor
from entrypoints.bootstrap import Vodhub, bootstrap
from entrypoints.settings import Settings

logger = logging.getLogger("vodhub.worker")
CONSUMER_GROUP = "video-processing"


def build_consumer(vodhub: Vodhub) -> KafkaConsumerRunner | InProcessConsumerRunner:
    settings = vodhub.settings
    metrics = PrometheusMetrics()
    processor = VideoProcessor(vodhub.videos, PyAVTranscoder(), vodhub.storage, work_dir=settings.work_dir,
                               metrics=metrics)
    handler = VideoUploadedConsumer(processor)
    topic = settings.topic_video_uploaded
    backoff = tuple(settings.worker_backoff_s * 2**n for n in range(max(settings.worker_max_attempts - 1, 1)))
    if isinstance(vodhub.publisher, InProcessEventBus):
        return InProcessConsumerRunner(vodhub.publisher, topic, handler, max_attempts=settings.worker_max_attempts,
                                       backoff_s=backoff)
    assert settings.kafka_bootstrap_servers
    return KafkaConsumerRunner(
        settings.kafka_bootstrap_servers, topic, CONSUMER_GROUP, handler, dead_letter_publisher=vodhub.publisher,
        max_attempts=settings.worker_max_attempts, backoff_s=backoff,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 10), metrics=metrics,
    )


def run_worker(settings: Settings) -> None:
    vodhub = bootstrap(settings)

    async def work() -> None:
        from entrypoints.topics import ensure_topics_exist

        await ensure_topics_exist(settings)
        logger.info("worker: consuming %s as group %s", settings.topic_video_uploaded, CONSUMER_GROUP)
        await build_consumer(vodhub).run()

    try:
        anyio.run(work)
    except KeyboardInterrupt:
        pass
    finally:
        vodhub.close()
