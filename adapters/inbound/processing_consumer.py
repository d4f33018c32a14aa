"""Drives processing from Kafka (or the in-process bus): VideoUploaded plans a video's work,
TranscodeTask runs one task of a recorded plan."""

from __future__ import annotations

import logging
from uuid import UUID

from adapters.inbound.messaging import IncomingMessage, PermanentFailure
from application.integration_events import (
    TRANSCODE_TASKS_TOPIC,
    InvalidIntegrationEvent,
    TranscodeTask,
    VideoUploaded,
    decode,
)
from application.processing import VideoProcessor
from domain.errors import ValidationError
from domain.transcode_jobs import parse_task_key

logger = logging.getLogger("vodhub.worker")


class UndecodableMessage(PermanentFailure):
    """Not an event this consumer knows: it can never succeed, so it goes to the dead-letter topic."""


class ProcessingConsumer:
    def __init__(self, processor: VideoProcessor, tasks_topic: str = TRANSCODE_TASKS_TOPIC) -> None:
        self.processor = processor
        self.tasks_topic = tasks_topic

    async def __call__(self, message: IncomingMessage, *, attempt: int, final_attempt: bool) -> None:
        if message.topic == self.tasks_topic:
            await self._task(message, attempt, final_attempt)
            return
        try:
            event = decode(message.value, VideoUploaded)
            video_id = UUID(event.video_id)
        except (InvalidIntegrationEvent, ValueError) as error:
            raise UndecodableMessage(str(error)) from None
        outcome = await self.processor.plan(video_id, final_attempt=final_attempt)
        logger.info("video %s (attempt %d): %s", video_id, attempt, outcome)

    async def _task(self, message: IncomingMessage, attempt: int, final_attempt: bool) -> None:
        try:
            task = decode(message.value, TranscodeTask)
            video_id, plan_id = UUID(task.video_id), UUID(task.plan_id)
            pass_name, chunk = parse_task_key(task.task)
        except (InvalidIntegrationEvent, ValueError) as error:
            raise UndecodableMessage(str(error)) from None
        logger.info("video %s task %s (attempt %d): starting", video_id, task.task, attempt)
        try:
            outcome = await self.processor.run_task(video_id, plan_id, pass_name, chunk, final_attempt=final_attempt)
        except ValidationError as error:  # a task the plan does not have: it can never succeed
            raise UndecodableMessage(str(error)) from None
        logger.info("video %s task %s (attempt %d): %s", video_id, task.task, attempt, outcome)
