"""Views: the playback beacon publishes `VideoViewed` facts (never events of the Video
aggregate, whose stream would then grow with its popularity), and the analytics consumer turns
them into per-video counts, views per day, co-views and watch histories, exactly once.

The beacon never waits for the broker: counted views go into a bounded buffer that a
background task publishes, retrying while the broker is away. When the buffer is full, new
views are dropped and counted in a metric; views are analytics, and the api must stay up."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol
from uuid import UUID

from anyio import to_thread

from application.accounts import Principal
from application.integration_events import VIDEO_VIEWED_TOPIC, InvalidIntegrationEvent, VideoViewed, decode, to_message
from application.playback import PlaybackCache
from application.ports import Clock, EventPublisher, IdGenerator, OutgoingMessage

logger = logging.getLogger("vodhub.analytics")

VIEW_WINDOW_S = 30 * 60  # one viewer's repeated beacons within this window count once
CO_VIEW_LOOKBACK = 20  # a new video pairs with at most this many of the viewer's latest ones
CO_VIEWS_KEPT = 100  # per video, pruned now and then: related videos need a dozen


# --- ports ---------------------------------------------------------------------------------


class ViewDedup(Protocol):
    def first_view(self, video_id: UUID, viewer_id: UUID, window_s: int) -> bool:
        """Whether this is the viewer's first view of the video within the window; remembers it."""


class ViewMetrics(Protocol):
    def view_buffer(self, pending: int, dropped: int = 0, published: int = 0) -> None:
        """The beacon buffer's size now, and how many views it just dropped or published."""


@dataclass(frozen=True)
class Position:
    """Where a message sits in the broker: a consumer's tracking position."""

    topic: str
    partition: int
    offset: int


class AnalyticsRecorder(Protocol):
    def record_views(self, consumer: str, views: Sequence[tuple[Position, VideoViewed | None]]) -> int:
        """In one transaction: skip messages at or below their partition's recorded offset and
        views whose event id was counted before, apply the rest (see plan_views), and record the
        new offsets. None stands for a message that is not a view: it only moves the offset.
        Returns how many views were counted."""


# --- the beacon ----------------------------------------------------------------------------


class ViewBuffer:
    """Bounded, in memory, published by `run()` in the background, in batches, in order."""

    def __init__(
        self, publisher: EventPublisher, *, topic: str = VIDEO_VIEWED_TOPIC, capacity: int = 10_000,
        batch_size: int = 500, metrics: ViewMetrics | None = None, retry_s: float = 0.5, max_retry_s: float = 10.0,
    ) -> None:
        self.publisher = publisher
        self.topic = topic
        self.capacity = capacity
        self.batch_size = batch_size
        self.metrics = metrics
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.dropped = 0
        self._pending: deque[OutgoingMessage] = deque()
        self._wakeup = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def offer(self, view: VideoViewed) -> bool:
        """Queue a view for publishing without waiting; False (and counted) when the buffer is full."""
        if len(self._pending) >= self.capacity:
            self.dropped += 1
            if self.metrics is not None:
                self.metrics.view_buffer(len(self._pending), dropped=1)
            return False
        self._pending.append(to_message(view, self.topic))
        self._wakeup.set()
        return True

    async def run(self) -> None:
        """Publish whatever is queued, forever; a failed batch is kept and retried with backoff."""
        wait = self.retry_s
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = [self._pending[n] for n in range(min(self.batch_size, len(self._pending)))]
            try:
                await self.publisher.publish(batch)
            except Exception as error:  # the broker is away: keep the views, try again later
                logger.warning("could not publish %d views (%d queued), retrying in %.1f s: %s",
                               len(batch), len(self._pending), wait, error)
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.max_retry_s)
                continue
            wait = self.retry_s
            for _ in batch:
                self._pending.popleft()
            if self.metrics is not None:
                self.metrics.view_buffer(len(self._pending), published=len(batch))

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until everything queued was published; whether it was."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._pending:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            return False
        return True


class ViewBeacon:
    def __init__(
        self, playback: PlaybackCache, dedup: ViewDedup, buffer: ViewBuffer, clock: Clock, ids: IdGenerator,
        window_s: int = VIEW_WINDOW_S,
    ) -> None:
        self.playback = playback
        self.dedup = dedup
        self.buffer = buffer
        self.clock = clock
        self.ids = ids
        self.window_s = window_s

    async def viewed(self, principal: Principal, video_id: UUID) -> bool:
        """Count a playback start of a video the caller may see, once per window; whether it counted."""
        info = await to_thread.run_sync(self.playback.info, video_id)
        info.check_visible_to(principal.user_id, principal.roles)
        if not await to_thread.run_sync(self.dedup.first_view, video_id, principal.user_id, self.window_s):
            return False
        return self.buffer.offer(VideoViewed(
            event_id=str(self.ids.new_id()), video_id=str(video_id), user_id=str(principal.user_id),
            viewed_at=self.clock.now(),
        ))


# --- the analytics consumer ----------------------------------------------------------------


def decode_view(value: bytes) -> VideoViewed | None:
    """The view in a message, or None (logged) for bytes that are not one."""
    try:
        view = decode(value, VideoViewed)
        UUID(view.video_id), UUID(view.user_id)
    except (InvalidIntegrationEvent, ValueError) as error:
        logger.error("skipping a message that is not a VideoViewed: %s", error)
        return None
    return view


@dataclass
class ViewEffects:
    """What a batch of new views changes in the read model."""

    views: defaultdict[UUID, int] = field(default_factory=lambda: defaultdict(int))
    per_day: defaultdict[tuple[UUID, date], int] = field(default_factory=lambda: defaultdict(int))
    watched: dict[tuple[UUID, UUID], datetime] = field(default_factory=dict)  # (user, video) → latest view
    co_views: defaultdict[tuple[UUID, UUID], int] = field(default_factory=lambda: defaultdict(int))


def plan_views(views: Sequence[VideoViewed], histories: dict[UUID, dict[UUID, datetime]]) -> ViewEffects:
    """The effects of new views, in order. `histories` holds what is known of each viewer's
    history (at least their CO_VIEW_LOOKBACK latest videos, and whether they watched the batch's
    videos) and is updated in place. A viewer watching a video for the first time adds one to
    the co-views of that video and each of their latest ones, both ways, so co-views count
    viewers, bounded by the lookback."""
    effects = ViewEffects()
    for view in views:
        video_id, user_id = UUID(view.video_id), UUID(view.user_id)
        effects.views[video_id] += 1
        effects.per_day[(video_id, view.viewed_at.date())] += 1
        history = histories.setdefault(user_id, {})
        if video_id not in history:
            latest = sorted(history, key=history.__getitem__, reverse=True)[:CO_VIEW_LOOKBACK]
            for other in latest:
                effects.co_views[(video_id, other)] += 1
                effects.co_views[(other, video_id)] += 1
        history[video_id] = max(view.viewed_at, history.get(video_id, view.viewed_at))
        effects.watched[(user_id, video_id)] = history[video_id]
    return effects


class Analytics:
    """Counts views from the broker into the read model through an AnalyticsRecorder."""

    def __init__(self, recorder: AnalyticsRecorder, consumer: str = "analytics") -> None:
        self.recorder = recorder
        self.consumer = consumer

    def record(self, messages: Sequence[tuple[Position, bytes]]) -> int:
        """Count a batch of messages exactly once; returns how many views were new."""
        return self.recorder.record_views(self.consumer, [(position, decode_view(value)) for position, value in messages])


