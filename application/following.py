"""Followers of a notification log, the one way vodhub reads its logs: the relay, the janitor
and the catalog projector each keep their own position in a durable tracking table (PostgreSQL,
or a SQLite file in `vodhub dev`) and act on every new domain event in log order, recording
the position only after acting (the projector: in the same transaction as its view change).

A follower acts as soon as its log grows: the log's `LogSignal` rings after every save in this
process and, on PostgreSQL, for every other process's (eventsourcing NOTIFYs the events table's
channel on each insert). Polling stays as the safety net for a lost notification."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import anyio
from anyio import to_thread
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification, Recording, Tracking, TrackingRecorder

logger = logging.getLogger("vodhub.following")

# Blocks until `stopped` is set, calling `ring` whenever another process may have appended.
Listener = Callable[[Callable[[], None], threading.Event], None]


class LogSignal:
    """Rings when a log may have grown; a follower waits on it between polls. Thread-safe: saves
    ring it from worker threads, a listener from its own. `rung` counts the rings, so a follower
    that read the log at count n and waits with `since=n` returns at once if it rang meanwhile."""

    def __init__(self) -> None:
        self.rung = 0
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._listener: Listener | None = None
        self._listening: threading.Thread | None = None
        self._stopped = threading.Event()

    def listen_with(self, listener: Listener) -> None:
        """Hear other processes' appends too; the listener runs in a thread from the first wait
        (only processes that follow the log hold its connection) until `close`."""
        self._listener = listener

    def ring(self) -> None:
        with self._lock:
            self.rung += 1
            waiters, self._waiters = self._waiters, []
        for loop, woken in waiters:
            try:
                loop.call_soon_threadsafe(woken.set)
            except RuntimeError:  # that loop has closed
                pass

    async def wait(self, since: int, timeout: float) -> None:
        """Return when it has rung since `since` was read, or after `timeout` seconds."""
        self._start_listening()
        woken = asyncio.Event()
        waiter = (asyncio.get_running_loop(), woken)
        with self._lock:
            if self.rung != since:
                return
            self._waiters.append(waiter)
        try:
            with anyio.move_on_after(timeout):
                await woken.wait()
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def close(self) -> None:
        self._stopped.set()

    def _start_listening(self) -> None:
        if self._listener is None or self._listening is not None or self._stopped.is_set():
            return
        with self._lock:
            if self._listening is None:
                self._listening = threading.Thread(
                    target=self._listener, args=(self.ring, self._stopped), name="log-listener", daemon=True)
                self._listening.start()


class SignalledLog(Application[UUID]):
    """An application whose saves ring its log's signal, so this process's followers act at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_signal = LogSignal()

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings:
            self.log_signal.ring()

    def close(self) -> None:
        self.log_signal.close()
        super().close()


class LogFollower:
    def __init__(self, source: Application[UUID], tracking: TrackingRecorder, batch_size: int = 200) -> None:
        self.source = source
        self.signal = source.log_signal if isinstance(source, SignalledLog) else LogSignal()
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
            seen = self.signal.rung
            try:
                done = await self.step()
                backoff = poll_interval
            except Exception as error:  # a backend is away: keep trying, loudly
                logger.warning("%s: %s; retrying in %.1f s", type(self).__name__, error, backoff)
                await _pause(backoff, stop)
                backoff = min(backoff * 2, max_backoff)
                continue
            if done < self.batch_size:
                await _pause(poll_interval, stop, functools.partial(self.signal.wait, seen, poll_interval))


async def _pause(seconds: float, stop: anyio.Event, wake: Callable[[], Any] | None = None) -> None:
    """Sleep, but wake at once when stopping (or when `wake` returns: the log grew)."""
    with anyio.move_on_after(seconds):
        async with anyio.create_task_group() as group:
            async def end_after(waiting: Callable[[], Any]) -> None:
                await waiting()
                group.cancel_scope.cancel()

            group.start_soon(end_after, stop.wait)
            if wake is not None:
                group.start_soon(end_after, wake)
