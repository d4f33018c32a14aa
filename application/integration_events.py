"""Integration events: the published contract between vodhub processes over Kafka.

These are not domain events. Domain events are the event store's private history;
integration events are a public, versioned summary of it that the relay publishes and
workers (ours or anyone's) consume. They are JSON objects.

Delivery semantics:
- At least once. The relay records its position in the notification log only after the
  broker acknowledged a publish, so a relay killed between the two republishes on
  restart. Consumers must be idempotent: check the aggregate's state (a video already
  processing or ready) or remember the `event_id` they handled.
- Ordered per video. The message key is the video id, so every event of one video lands
  on one partition in publish order. There is no order across videos.
- Evolved only compatibly. Fields are only ever added, with defaults, and
  `schema_version` goes up when they are; consumers ignore fields they do not know.
  A change that cannot be made that way gets a new event type on a new topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypeVar

import msgspec

from application.ports import OutgoingMessage

VIDEO_UPLOADED_TOPIC = "video-uploaded-events"
VIDEO_PROCESSED_TOPIC = "video-processed-events"
TRANSCODE_TASKS_TOPIC = "video-transcode-tasks"
DEAD_LETTER_SUFFIX = ".dlq"

# Naive timestamps are ambiguous between hosts; the contract is timezone-aware (UTC).
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class VideoUploaded(msgspec.Struct, kw_only=True, frozen=True):
    schema_version: int = 1
    event_id: str
    video_id: str
    user_id: str
    raw_key: str
    size: int
    content_type: str
    uploaded_at: AwareDatetime


class RenditionSummary(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    width: int
    height: int
    bitrate: int


class VideoSummary(msgspec.Struct, kw_only=True, frozen=True):
    """The video as it was right after the event: what a webhook's `data` shows."""

    title: str
    visibility: str
    status: str
    playable: bool
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    renditions: list[RenditionSummary] = []


# Version 2 added the statuses processing, playable and deleted, and owner_id and video
# (the notifier routes and fills webhooks with them). Consumers that only want outcomes keep
# the messages whose status is ready or failed and skip the others.
PROCESSED_STATUSES = ("processing", "playable", "ready", "failed", "deleted")
ProcessedStatus = Literal["processing", "playable", "ready", "failed", "deleted"]


class VideoProcessed(msgspec.Struct, kw_only=True, frozen=True):
    schema_version: int = 2
    event_id: str
    video_id: str
    status: ProcessedStatus
    renditions: list[str]
    hls_key: str | None
    dash_key: str | None
    failure_reason: str | None
    processed_at: AwareDatetime  # when the event happened
    owner_id: str | None = None
    video: VideoSummary | None = None


class TranscodeTask(msgspec.Struct, kw_only=True, frozen=True):
    """One task of a recorded plan (PROCESSING.md): any worker of the group may run it."""

    schema_version: int = 1
    event_id: str
    video_id: str
    plan_id: str
    task: str  # "low:3", "audio:0", "high:3"


# --- analytics facts ---------------------------------------------------------------------

VIDEO_VIEWED_TOPIC = "video-viewed-events"


class VideoViewed(msgspec.Struct, kw_only=True, frozen=True):
    """A counted playback start, published by the api (not relayed from the event store):
    at most one per viewer and video per 30 minutes. Keyed by video id. A view may arrive
    twice (a retried batch); `event_id` lets consumers count it once."""

    schema_version: int = 1
    event_id: str
    video_id: str
    user_id: str
    viewed_at: AwareDatetime


IntegrationEvent = VideoUploaded | VideoProcessed | TranscodeTask | VideoViewed
EventT = TypeVar("EventT", VideoUploaded, VideoProcessed, TranscodeTask, VideoViewed)


class InvalidIntegrationEvent(ValueError):
    """Bytes that are not a valid integration event of the expected type."""


def dead_letter_topic(topic: str) -> str:
    return topic + DEAD_LETTER_SUFFIX


def encode(event: IntegrationEvent) -> bytes:
    return msgspec.json.encode(event)


def decode(data: bytes, event_type: type[EventT]) -> EventT:
    """The event in data; unknown fields are ignored so newer producers stay readable."""
    try:
        return msgspec.json.decode(data, type=event_type)
    except msgspec.DecodeError as error:  # includes ValidationError
        raise InvalidIntegrationEvent(f"not a valid {event_type.__name__}: {error}") from error


def to_message(event: IntegrationEvent, topic: str) -> OutgoingMessage:
    """The event as a message keyed by its video id, which is what orders it per video.
    Tasks are keyed by the task too: they need no order, and spread over every partition."""
    key = f"{event.video_id}/{event.task}" if isinstance(event, TranscodeTask) else event.video_id
    return OutgoingMessage(topic=topic, key=key.encode(), value=encode(event))
