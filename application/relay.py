"""The outbox relay: follow the Videos notification log and publish integration events.

The event store is the outbox: the api only appends domain events, and this relay turns
them into integration events, publishes them and only then records how far it got, in a
tracking table. A crash between the two publishes the batch again (at least once)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from anyio import to_thread
from eventsourcing.application import Application
from eventsourcing.domain import AggregateEvent, DomainEventProtocol
from eventsourcing.persistence import TrackingRecorder

from application.following import LogFollower
from application.integration_events import (
    TRANSCODE_TASKS_TOPIC,
    VIDEO_PROCESSED_TOPIC,
    VIDEO_UPLOADED_TOPIC,
    ProcessedStatus,
    RenditionSummary,
    TranscodeTask,
    VideoProcessed,
    VideoSummary,
    VideoUploaded,
    to_message,
)
from application.ports import EventPublisher, OutgoingMessage, PipelineMetrics
from domain.transcode_jobs import TranscodeJob, first_tasks
from domain.videos import Video


@dataclass(frozen=True)
class Topics:
    video_uploaded: str = VIDEO_UPLOADED_TOPIC
    video_processed: str = VIDEO_PROCESSED_TOPIC
    transcode_tasks: str = TRANSCODE_TASKS_TOPIC


def integration_event_id(event: DomainEventProtocol[UUID]) -> str:
    """Stable across republishing, so consumers can de-duplicate by it."""
    return str(uuid.uuid5(event.originator_id, str(event.originator_version)))


def task_messages(
    job_event: DomainEventProtocol[UUID], video_id: UUID, plan_id: UUID, tasks: list[str], topics: Topics
) -> list[OutgoingMessage]:
    """One message per task, on consecutive partitions from a place of the plan's own, so
    that consecutive tasks go to different workers (and different videos start apart)."""
    start = plan_id.int % 1_000_003
    return [
        dataclasses.replace(to_message(TranscodeTask(
            event_id=str(uuid.uuid5(job_event.originator_id, f"{job_event.originator_version}/{task}")),
            video_id=str(video_id), plan_id=str(plan_id), task=task,
        ), topics.transcode_tasks), spread=start + offset)
        for offset, task in enumerate(tasks)
    ]


def integration_messages(event: DomainEventProtocol[UUID], topics: Topics) -> list[OutgoingMessage]:
    """What a domain event announces: integration events, and the tasks of a recorded plan
    (the first ones when it is recorded, the ladder's once the video is playable)."""
    if isinstance(event, TranscodeJob.Planned):
        return task_messages(event, event.video_id, event.plan_id, first_tasks(event.plan), topics)
    if isinstance(event, TranscodeJob.StageCompleted | TranscodeJob.TasksRedriven):
        return task_messages(event, event.video_id, event.plan_id, event.tasks, topics)
    message = integration_message(event, topics)
    return [message] if message else []


# The domain events announced on video-processed-events (what webhooks are made of), each
# with the status it becomes there, or None when this one is not announced. A rule gets the
# event, the video right after it, and a way to load the video right before it.
NotificationRule = Callable[[Any, Video, Callable[[], Video]], ProcessedStatus | None]
NOTIFIED: dict[type[AggregateEvent], NotificationRule] = {
    Video.ProcessingStarted: lambda event, video, before: "processing",
    # The first rendition of an attempt makes the video playable; later ones only add rungs.
    Video.RenditionPublished: lambda event, video, before: None if before().renditions else "playable",
    Video.Processed: lambda event, video, before: "ready",
    Video.ProcessingFailed: lambda event, video, before: "failed",
    Video.Deleted: lambda event, video, before: "deleted",
}

Announcement = tuple[AggregateEvent, ProcessedStatus, Video]


def video_summary(video: Video) -> VideoSummary:
    return VideoSummary(
        title=video.title, visibility=video.visibility, status="deleted" if video.deleted else video.status,
        playable=video.playable, duration_s=video.duration_s, width=video.width, height=video.height,
        renditions=[
            RenditionSummary(name=r.name, width=r.width, height=r.height, bitrate=r.bitrate)
            for r in video.renditions
        ],
    )


def notification_message(event: AggregateEvent, status: ProcessedStatus, video: Video, topics: Topics) -> OutgoingMessage:
    """The video-processed-events message announcing the event, with the video as it was
    right after it (its owner routes the webhooks)."""
    return to_message(VideoProcessed(
        event_id=integration_event_id(event), video_id=str(event.originator_id), status=status,
        renditions=[r.name for r in video.renditions], hls_key=video.manifests.hls,
        dash_key=video.manifests.dash, failure_reason=video.failure_reason if status == "failed" else None,
        processed_at=event.timestamp, owner_id=str(video.owner_id), video=video_summary(video),
    ), topics.video_processed)


def integration_message(event: DomainEventProtocol[UUID], topics: Topics) -> OutgoingMessage | None:
    """The integration event a domain event announces, if any."""
    if isinstance(event, Video.ProcessingAbandoned) and not event.redrive:
        return None  # a new attempt started at once: nothing to announce
    # A retry or a take-over is planned like a new upload.
    if isinstance(event, Video.Uploaded | Video.RetryRequested | Video.ProcessingAbandoned | Video.ProcessingRedriven):
        return to_message(VideoUploaded(
            event_id=integration_event_id(event), video_id=str(event.originator_id),
            user_id=str(event.owner_id), raw_key=event.source_key, size=event.source_size,
            content_type=event.source_content_type, uploaded_at=event.timestamp,
        ), topics.video_uploaded)
    if isinstance(event, Video.Processed):
        return to_message(VideoProcessed(
            event_id=integration_event_id(event), video_id=str(event.originator_id), status="ready",
            renditions=[r.name for r in event.renditions], hls_key=event.manifests.hls,
            dash_key=event.manifests.dash, failure_reason=None, processed_at=event.timestamp,
        ), topics.video_processed)
    if isinstance(event, Video.ProcessingFailed):
        return to_message(VideoProcessed(
            event_id=integration_event_id(event), video_id=str(event.originator_id), status="failed",
            renditions=[], hls_key=None, dash_key=None, failure_reason=event.reason,
            processed_at=event.timestamp,
        ), topics.video_processed)
    return None


class OutboxRelay(LogFollower):
    def __init__(
        self, source: Application[UUID], tracking: TrackingRecorder, publisher: EventPublisher,
        topics: Topics = Topics(), batch_size: int = 200, metrics: PipelineMetrics | None = None,
        trace_context_of: Callable[[DomainEventProtocol[UUID]], str | None] = lambda event: None,
    ) -> None:
        super().__init__(source, tracking, batch_size)
        self.publisher = publisher
        self.topics = topics
        self.metrics = metrics
        self.trace_context_of = trace_context_of  # so a message continues the trace of the event it announces

    async def handle(self, events: Sequence[DomainEventProtocol[UUID]]) -> None:
        """Publish and return only once the broker acknowledged: then the position may move."""
        announcements = await to_thread.run_sync(self._announcements, events)
        messages: list[OutgoingMessage] = []
        for event, announcement in zip(events, announcements, strict=True):
            if announcement is not None:  # a notification; for outcomes it replaces their v1 message
                announcing = [notification_message(*announcement, self.topics)]
            else:
                announcing = integration_messages(event, self.topics)
            trace_context = self.trace_context_of(event) if announcing else None
            messages.extend(replace(message, trace_context=trace_context) if trace_context else message
                            for message in announcing)
        await self.publisher.publish(messages)

    def _announcements(self, events: Sequence[DomainEventProtocol[UUID]]) -> list[Announcement | None]:
        """For each announced event: the event, its status and the video right after it."""
        return [self._announcement(event) if isinstance(event, AggregateEvent) and type(event) in NOTIFIED else None
                for event in events]

    def _announcement(self, event: AggregateEvent) -> Announcement | None:
        def at(version: int) -> Video:
            return self.source.repository.get(event.originator_id, version=version)

        video = at(event.originator_version)
        status = NOTIFIED[type(event)](event, video, lambda: at(event.originator_version - 1))
        return (event, status, video) if status else None

    async def step(self) -> int:
        relayed = await super().step()
        if self.metrics is not None:
            latest = await to_thread.run_sync(self.source.recorder.max_notification_id)
            self.metrics.relay_position(self.position(), latest or 0, self.source.name)
        return relayed

    async def relay_once(self) -> int:
        """Publish the next batch of pending events; returns how many notifications it covered."""
        return await self.step()
