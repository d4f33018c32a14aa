"""Clocks and id generators: the system ones and a settable twin for tests."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SettableClock:
    """A clock that only moves when told to, so tests can expire tokens at will."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


class RandomIdGenerator:
    def new_id(self) -> uuid.UUID:
        return uuid.uuid4()
