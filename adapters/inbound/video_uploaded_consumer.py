"""Drives processing from VideoUploaded integration events (Kafka or the in-process bus)."""

from __future__ import annotations

import logging
from uuid import UUID

from adapters.inbound.messaging import IncomingMessage, PermanentFailure
from application.integration_events import InvalidIntegrationEvent, VideoUploaded, decode
from application.processing import VideoProcessor

logger = logging.getLogger("vodhub.worker")


class UndecodableMessage(PermanentFailure):
    """Not a VideoUploaded event: it can never succeed, so it goes to the dead-letter topic."""


class VideoUploadedConsumer:
    def __init__(self, processor: VideoProcessor) -> None:
        self.processor = processor

    async def __call__(self, message: IncomingMessage, *, attempt: int, final_attempt: bool) -> None:
        try:
            event = decode(message.value, VideoUploaded)
            video_id = UUID(event.video_id)
        except (InvalidIntegrationEvent, ValueError) as error:
            raise UndecodableMessage(str(error)) from None
        outcome = await self.processor.process(video_id, final_attempt=final_attempt)
        logger.info("video %s (attempt %d): %s", video_id, attempt, outcome)
