"""Caches: Redis, shared by every replica; an in-process twin with the same expiry rules.
A cache never fails a request: when Redis is away, reads miss and writes are skipped."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

import redis

from adapters.outbound.breakers import Breaker, CircuitOpen, standalone_breaker

logger = logging.getLogger("vodhub.cache")


class InMemoryCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= time.monotonic():
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)


class RedisCache:
    """While Redis's breaker is open the cache is bypassed instead of paying a timeout on
    every request; an invalidation lost that way leaves stale data for at most its TTL."""

    def __init__(self, client: redis.Redis, prefix: str = "vodhub:", breaker: Breaker | None = None) -> None:
        self._redis = client
        self._prefix = f"{prefix}cache:"
        self._breaker = breaker or standalone_breaker("redis")

    def get(self, key: str) -> bytes | None:
        return self._call(lambda: self._redis.get(self._prefix + key))

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._call(lambda: self._redis.set(self._prefix + key, value, ex=ttl_s))

    def delete(self, *keys: str) -> None:
        if keys:
            self._call(lambda: self._redis.delete(*(self._prefix + key for key in keys)))

    def _call(self, operation):  # type: ignore[no-untyped-def]
        try:
            with self._breaker:
                return operation()
        except CircuitOpen:
            return None
        except redis.RedisError as error:
            logger.warning("redis cache unavailable, bypassing it: %s", error)
            return None
