"""Create the Kafka topics a process needs, waiting for the broker if it is not up yet."""

from __future__ import annotations

import logging

import anyio

from application.integration_events import dead_letter_topic
from entrypoints.settings import Settings

logger = logging.getLogger("vodhub")


async def ensure_topics_exist(settings: Settings) -> None:
    if not settings.kafka_bootstrap_servers:
        return
    from adapters.outbound.kafka import ensure_topics

    topics = settings.topics()
    partitions = settings.topic_partitions
    wanted = {topics.video_uploaded: partitions, topics.video_processed: partitions,
              topics.transcode_tasks: settings.task_partitions,
              dead_letter_topic(topics.video_uploaded): 1, dead_letter_topic(topics.transcode_tasks): 1,
              dead_letter_topic(topics.video_processed): 1,
              settings.topic_video_viewed: partitions}
    while True:
        try:
            await ensure_topics(settings.kafka_bootstrap_servers, wanted, security=settings.kafka_security())
            return
        except ConnectionError as error:
            logger.warning("kafka not reachable (%s); retrying", error)
            await anyio.sleep(2)
