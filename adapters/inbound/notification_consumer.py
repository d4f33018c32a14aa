"""Drives the notifier from video-processed-events (Kafka or the in-process bus): each event
becomes queued deliveries; the message is committed once they are stored."""

from __future__ import annotations

import logging
from uuid import UUID

from anyio import to_thread

from adapters.inbound.messaging import IncomingMessage, PermanentFailure
from application.errors import OutcomeNotRecorded
from application.integration_events import InvalidIntegrationEvent, VideoProcessed, decode
from application.notifier import Notifier

logger = logging.getLogger("vodhub.notifier")


class UndecodableNotification(PermanentFailure):
    """Not a VideoProcessed event: it can never succeed, so it goes to the dead-letter topic."""


class VideoProcessedConsumer:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def __call__(self, message: IncomingMessage, *, attempt: int, final_attempt: bool) -> None:
        try:
            event = decode(message.value, VideoProcessed)
            UUID(event.video_id), event.owner_id and UUID(event.owner_id)
        except (InvalidIntegrationEvent, ValueError) as error:
            raise UndecodableNotification(str(error)) from None
        try:
            queued = await to_thread.run_sync(self.notifier.enqueue, event)
        except Exception as error:
            if final_attempt:  # dead-lettering it would lose its webhooks: keep it until they are queued
                raise OutcomeNotRecorded(f"the deliveries of {event.event_id} could not be queued: {error}") from error
            raise
        if queued:
            logger.info("video %s %s: %d deliveries queued", event.video_id, event.status, queued)
