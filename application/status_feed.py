"""Live processing state for status streams (SSE), pushed from ONE follower of the videos'
notification log per process instead of one poller per open stream.

The follower reads the log when it grows (its signal rings), and every `poll_s` regardless;
when a notification concerns a watched video (or its current transcode job), it reloads that
video's state once and hands it to every stream of that video. With nothing watched, it reads
nothing. Open streams are capped per user and per process."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from eventsourcing.persistence import Notification

from application.accounts import Principal
from application.bulkheads import Bulkhead
from application.errors import NotFound, TooManyStreams
from application.following import LogSignal
from domain.media import Rendition
from domain.transcode_jobs import job_id

logger = logging.getLogger("vodhub.status_feed")

NOTIFICATIONS_PER_READ = 500


@dataclass(frozen=True)
class ProcessingState:
    status: str  # uploaded, processing, ready, failed, or deleted
    progress: float
    renditions: tuple[Rendition, ...]
    plan_id: UUID | None = None


@dataclass(eq=False)
class Subscription:
    video_id: UUID
    user_id: UUID
    send: MemoryObjectSendStream[ProcessingState]
    receive: MemoryObjectReceiveStream[ProcessingState]
    closed: bool = False


@dataclass
class _Watched:
    subscriptions: set[Subscription] = field(default_factory=set)
    job_id: UUID | None = None


class StatusFeed:
    def __init__(
        self, videos: Any, bulkhead: Bulkhead, *, per_user: int = 10, per_process: int = 1000, poll_s: float = 0.5,
    ) -> None:
        self._videos = videos
        self._bulkhead = bulkhead
        self.per_user = per_user
        self.per_process = per_process
        self.poll_s = poll_s
        self._watched: dict[UUID, _Watched] = {}
        self._by_originator: dict[UUID | str, UUID] = {}  # video or job id → video id (a log's ids may be str)
        self._per_user: Counter[UUID] = Counter()
        self._open = 0
        self._position: int | None = None  # last notification seen; None while nothing is watched
        self._wake = anyio.Event()
        self._log_grew: LogSignal = getattr(videos, "log_signal", None) or LogSignal()
        self._changed: set[UUID] = set()  # watched videos with news not yet pushed
        self.reloads = 0  # states read for streams since start (one per change, not per stream)

    @property
    def open_streams(self) -> int:
        return self._open

    # --- streams -----------------------------------------------------------------------

    async def open(self, principal: Principal, video_id: UUID) -> Subscription:
        """Register a stream before its first read, so that no change after that read is missed;
        `close` it when the stream ends."""
        if self._open >= self.per_process:
            raise TooManyStreams(f"this server has {self.per_process} status streams open; try again shortly")
        if self._per_user[principal.user_id] >= self.per_user:
            raise TooManyStreams(f"at most {self.per_user} status streams may be open per user")
        send, receive = anyio.create_memory_object_stream[ProcessingState](8)
        subscription = Subscription(video_id, principal.user_id, send, receive)
        self._add(subscription)
        try:
            if self._position is None:
                self._position = await self._bulkhead.run(self._videos.recorder.max_notification_id) or 0
        except BaseException:
            self.close(subscription)
            raise
        return subscription

    def close(self, subscription: Subscription) -> None:
        if subscription.closed:
            return
        subscription.closed = True
        self._remove(subscription)
        subscription.send.close()
        subscription.receive.close()

    def visible_state(self, principal: Principal, video_id: UUID) -> ProcessingState:
        """The state of a video the caller may see (blocking: run it through the event-store bulkhead)."""
        video = self._videos.get_aggregate(video_id)
        video.check_visible_to(principal.user_id, principal.roles)
        return self._state(video)

    def _state(self, video: Any) -> ProcessingState:
        return ProcessingState(video.status, self._videos.progress(video), tuple(video.renditions), video.plan_id)

    def _add(self, subscription: Subscription) -> None:
        self._open += 1
        self._per_user[subscription.user_id] += 1
        watched = self._watched.setdefault(subscription.video_id, _Watched())
        watched.subscriptions.add(subscription)
        self._by_originator[subscription.video_id] = subscription.video_id
        self._wake.set()

    def _remove(self, subscription: Subscription) -> None:
        self._open -= 1
        self._per_user[subscription.user_id] -= 1
        if not self._per_user[subscription.user_id]:
            del self._per_user[subscription.user_id]
        watched = self._watched[subscription.video_id]
        watched.subscriptions.discard(subscription)
        if not watched.subscriptions:
            del self._watched[subscription.video_id]
            self._by_originator.pop(subscription.video_id, None)
            if watched.job_id:
                self._by_originator.pop(watched.job_id, None)
        if not self._watched:
            self._position = None  # nothing to follow; start from the end next time
            self._changed.clear()

    def watch_job(self, state: ProcessingState, video_id: UUID) -> None:
        """Follow the video's current transcode job too: its progress events carry the job's id."""
        watched = self._watched.get(video_id)
        if watched is None or state.plan_id is None:
            return
        current = job_id(video_id, state.plan_id)
        if watched.job_id != current:
            if watched.job_id:
                self._by_originator.pop(watched.job_id, None)
            watched.job_id = current
            self._by_originator[current] = video_id

    def state_of(self, video_id: UUID) -> ProcessingState:
        """The current state (blocking: call it through the event-store bulkhead)."""
        try:
            video = self._videos.get_aggregate(video_id)
        except NotFound:
            return ProcessingState("deleted", 0.0, ())
        if video.deleted:
            return ProcessingState("deleted", 0.0, ())
        return self._state(video)

    # --- the follower --------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the log while anything is watched; a failed read is logged and tried again."""
        while True:
            if not self._watched:
                self._wake = anyio.Event()
                await self._wake.wait()
            seen = self._log_grew.rung
            try:
                await self._follow_once()
            except Exception as error:  # an outage must not end the follower; streams wait meanwhile
                logger.warning("status feed: reading the notification log failed: %s", error)
                await anyio.sleep(self.poll_s)
            await self._log_grew.wait(seen, self.poll_s)

    async def _follow_once(self) -> None:
        if self._position is None:
            return
        start = self._position
        notifications = await self._bulkhead.run(self._select, start)
        if self._position != start:  # everything unwatched meanwhile
            return
        for notification in notifications:
            self._position = notification.id
            video_id = self._by_originator.get(notification.originator_id)
            if video_id is not None:
                self._changed.add(video_id)
        for video_id in list(self._changed):  # one that fails to reload stays for the next round
            await self._publish(video_id)
            self._changed.discard(video_id)

    def _select(self, after: int) -> list[Notification]:
        return list(self._videos.recorder.select_notifications(
            start=after, limit=NOTIFICATIONS_PER_READ, inclusive_of_start=False))

    async def _publish(self, video_id: UUID) -> None:
        if video_id not in self._watched:
            return
        self.reloads += 1
        state = await self._bulkhead.run(self.state_of, video_id)
        self.watch_job(state, video_id)
        for subscription in list(self._watched.get(video_id, _Watched()).subscriptions):
            try:
                subscription.send.send_nowait(state)
            except anyio.WouldBlock:
                pass  # a slow reader: it gets a later, complete state; each one replaces the last
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

