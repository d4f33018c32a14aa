"""Which views count: one per viewer and video per window. Redis (shared by every api replica)
with an in-process twin, which is also the fallback while Redis does not answer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from uuid import UUID

import redis

from adapters.outbound.breakers import Breaker, CircuitOpen, standalone_breaker

logger = logging.getLogger("vodhub.views")

SWEEP_EVERY_S = 60.0


class InMemoryViewDedup:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._until: dict[tuple[UUID, UUID], float] = {}
        self._lock = threading.Lock()
        self._next_sweep = now() + SWEEP_EVERY_S

    def first_view(self, video_id: UUID, viewer_id: UUID, window_s: int) -> bool:
        with self._lock:
            now = self._now()
            if now >= self._next_sweep:
                self._until = {key: until for key, until in self._until.items() if until > now}
                self._next_sweep = now + SWEEP_EVERY_S
            if self._until.get((video_id, viewer_id), 0.0) > now:
                return False
            self._until[(video_id, viewer_id)] = now + window_s
            return True


class RedisViewDedup:
    """SET NX with a TTL: the first beacon in the window creates the key, later ones find it."""

    def __init__(
        self, client: redis.Redis, prefix: str = "vodhub:", fallback: InMemoryViewDedup | None = None,
        breaker: Breaker | None = None,
    ) -> None:
        self._redis = client
        self._prefix = f"{prefix}viewed:"
        self._fallback = fallback or InMemoryViewDedup()
        self._breaker = breaker or standalone_breaker("redis")

    def first_view(self, video_id: UUID, viewer_id: UUID, window_s: int) -> bool:
        try:
            with self._breaker:
                return bool(self._redis.set(f"{self._prefix}{video_id}:{viewer_id}", b"1", nx=True, ex=window_s))
        except CircuitOpen:
            pass
        except redis.RedisError as error:
            logger.warning("redis unavailable for view de-duplication, deciding in this process: %s", error)
        return self._fallback.first_view(video_id, viewer_id, window_s)
