"""The outbox relay: follow the Videos notification log and publish integration events.

The event store is the outbox: the api only appends domain events, and this relay turns
them into integration events, publishes them and only then records how far it got, in a
tracking table. A crash between the two publishes the batch again (at least once)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from anyio import to_thread
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification, Tracking, TrackingRecorder

from application.integration_events import (
    VIDEO_PROCESSED_TOPIC,
    VIDEO_UPLOADED_TOPIC,
    VideoProcessed,
    VideoUploaded,
    to_message,
)
from application.ports import EventPublisher, OutgoingMessage
from domain.videos import Video

logger = logging.getLogger("vodhub.relay")


@dataclass(frozen=True)
class Topics:
    video_uploaded: str = VIDEO_UPLOADED_TOPIC
    video_processed: str = VIDEO_PROCESSED_TOPIC


def integration_event_id(event: DomainEventProtocol) -> str:
    """Stable across republishing, so consumers can de-duplicate by it."""
    return str(uuid.uuid5(event.originator_id, str(event.originator_version)))


def integration_message(event: DomainEventProtocol, topics: Topics) -> OutgoingMessage | None:
    """The integration event a domain event announces, if any."""
    if isinstance(event, Video.Uploaded):
        return to_message(VideoUploaded(
            event_id=integration_event_id(event), video_id=str(event.originator_id),
            user_id=str(event.owner_id), raw_key=event.source_key, size=event.source_size,
            content_type=event.source_content_type, uploaded_at=event.timestamp,
        ), topics.video_uploaded)
    if isinstance(event, Video.Processed):
        return to_message(VideoProcessed(
            event_id=integration_event_id(event), video_id=str(event.originator_id), status="ready",
            renditions=[r["name"] for r in event.renditions], hls_key=event.manifests.get("hls"),
            dash_key=event.manifests.get("dash"), failure_reason=None, processed_at=event.timestamp,
        ), topics.video_processed)
    if isinstance(event, Video.ProcessingFailed):
        return to_message(VideoProcessed(
            event_id=integration_event_id(event), video_id=str(event.originator_id), status="failed",
            renditions=[], hls_key=None, dash_key=None, failure_reason=event.reason,
            processed_at=event.timestamp,
        ), topics.video_processed)
    return None


class OutboxRelay:
    def __init__(
        self, source: Application, tracking: TrackingRecorder, publisher: EventPublisher,
        topics: Topics = Topics(), batch_size: int = 200,
    ) -> None:
        self.source = source
        self.tracking = tracking
        self.publisher = publisher
        self.topics = topics
        self.batch_size = batch_size

    def position(self) -> int:
        """The last notification id whose integration event the broker acknowledged."""
        return self.tracking.max_tracking_id(self.source.name) or 0

    async def relay_once(self) -> int:
        """Publish the next batch of pending events; returns how many notifications it covered."""
        notifications: Sequence[Notification] = await to_thread.run_sync(self._pending)
        if not notifications:
            return 0
        messages = [
            message for notification in notifications
            if (message := integration_message(self.source.mapper.to_domain_event(notification), self.topics))
        ]
        await self.publisher.publish(messages)
        last = notifications[-1].id
        await to_thread.run_sync(self.tracking.insert_tracking, Tracking(self.source.name, last))
        return len(notifications)

    def _pending(self) -> Sequence[Notification]:
        return self.source.recorder.select_notifications(start=self.position() + 1, limit=self.batch_size)

    async def run(self, poll_interval: float = 0.2, max_backoff: float = 10.0) -> None:
        """Relay until cancelled; while the broker is away, retry with growing pauses."""
        backoff = poll_interval
        while True:
            try:
                relayed = await self.relay_once()
                backoff = poll_interval
            except Exception as error:  # the broker or the store is away: keep trying, loudly
                logger.warning("relay: %s; retrying in %.1f s", error, backoff)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff)
                continue
            if relayed < self.batch_size:
                await anyio.sleep(poll_interval)
