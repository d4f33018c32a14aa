"""Followers of a notification log, the one way vodhub reads its logs: the relay, the janitor
and the catalog projector each keep their own position in a durable tracking table (PostgreSQL,
or a SQLite file in `vodhub dev`) and act on every new domain event in log order, recording
the position only after acting (the projector: in the same transaction as its view change)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

import anyio
from anyio import to_thread
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification, Tracking, TrackingRecorder

logger = logging.getLogger("vodhub.following")


class LogFollower:
    def __init__(self, source: Application[UUID], tracking: TrackingRecorder, batch_size: int = 200) -> None:
        self.source = source
        self.tracking = tracking
        self.batch_size = batch_size

    async def handle(self, events: Sequence[DomainEventProtocol[UUID]]) -> None:
        """Act on a batch; raise to have the same batch offered again."""
        raise NotImplementedError

    def position(self) -> int:
        """The last notification id acted upon."""
        return self.tracking.max_tracking_id(self.source.name) or 0

    async def step(self) -> int:
        """Act on the next batch; returns how many notifications it covered."""
        notifications: Sequence[Notification] = await to_thread.run_sync(self._pending)
        if not notifications:
            return 0
        await self.follow(notifications)
        return len(notifications)

    async def follow(self, notifications: Sequence[Notification]) -> None:
        """Act on a batch, then record how far it went: a crash in between acts on it again."""
        await self.handle([self.source.mapper.to_domain_event(notification) for notification in notifications])
        await to_thread.run_sync(self.tracking.insert_tracking, Tracking(self.source.name, notifications[-1].id))

    def catch_up(self) -> None:
        """Follow to the end of the log as it is now, then return (tools and tests)."""
        while anyio.run(self.step):
            pass

    def _pending(self) -> Sequence[Notification]:
        return self.source.recorder.select_notifications(start=self.position() + 1, limit=self.batch_size)

    async def run(self, poll_interval: float = 0.2, max_backoff: float = 10.0, stop: anyio.Event | None = None) -> None:
        """Follow until cancelled, or until `stop` is set: then it returns after the batch in
        hand is done and its position recorded. While a backend is away, retry with growing
        pauses."""
        stop = stop or anyio.Event()
        backoff = poll_interval
        while not stop.is_set():
            try:
                done = await self.step()
                backoff = poll_interval
            except Exception as error:  # a backend is away: keep trying, loudly
                logger.warning("%s: %s; retrying in %.1f s", type(self).__name__, error, backoff)
                await _pause(backoff, stop)
                backoff = min(backoff * 2, max_backoff)
                continue
            if done < self.batch_size:
                await _pause(poll_interval, stop)


async def _pause(seconds: float, stop: anyio.Event) -> None:
    """Sleep, but wake at once when stopping."""
    with anyio.move_on_after(seconds):
        await stop.wait()
