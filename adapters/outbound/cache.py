"""Caches: Redis, shared by every replica; an in-process twin with the same expiry rules; and
Redis with a near copy in each process, kept true by the invalidation channel.
A cache never fails a request: when Redis is away, reads miss and writes are skipped."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import redis

from adapters.outbound.breakers import Breaker, CircuitOpen, standalone_breaker
from adapters.outbound.redis_invalidations import InvalidationChannel

logger = logging.getLogger("vodhub.cache")
T = TypeVar("T")


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

    def peek(self, key: str) -> bytes | None:
        return self.get(key)  # never any I/O

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class RedisCache:
    """While Redis's breaker is open the cache is bypassed instead of paying a timeout on
    every request; an invalidation lost that way leaves stale data for at most its TTL."""

    def __init__(self, client: redis.Redis, prefix: str = "vodhub:", breaker: Breaker | None = None) -> None:
        self._redis = client
        self._prefix = f"{prefix}cache:"
        self._breaker = breaker or standalone_breaker("redis")
        self._channel = f"{prefix}invalidations"  # see InvalidationChannel: near copies forget deleted keys

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda: self._redis.get(self._prefix + key))
        assert not isinstance(value, str), "the cache's client returns bytes (decode_responses is off)"
        return value

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._call(lambda: self._redis.set(self._prefix + key, value, ex=ttl_s))

    def delete(self, *keys: str) -> None:
        if keys:
            self._call(lambda: self._delete_and_tell(keys))

    def peek(self, key: str) -> bytes | None:
        return None  # every answer is a round trip

    def _delete_and_tell(self, keys: tuple[str, ...]) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(*(self._prefix + key for key in keys))
            for key in keys:
                pipe.publish(self._channel, f"{NearCache.KIND}:{key}")
            pipe.execute()

    def _call(self, operation: Callable[[], T]) -> T | None:
        try:
            with self._breaker:
                return operation()
        except CircuitOpen:
            return None
        except redis.RedisError as error:
            logger.warning("redis cache unavailable, bypassing it: %s", error)
            return None


class NearCache:
    """Redis, and a bounded copy of what this process read or wrote, which answers warm reads
    (a manifest, a video's playback info) without a round trip. Every process's RedisCache.delete
    publishes the keys it deletes; the copy drops them when told, and is used only while the
    invalidation channel is subscribed. A value read from Redis while any invalidation arrived
    is not copied: it may be the one just invalidated."""

    KIND = "cache"
    LOCAL_TTL_S = 60  # a bound on staleness, should a message be lost with the channel up

    def __init__(self, remote: RedisCache, channel: InvalidationChannel, max_entries: int = 10_000) -> None:
        self._remote = remote
        self._channel = channel
        self._local = InMemoryCache(max_entries)
        self._changes = itertools.count()
        self._generation = next(self._changes)
        channel.listen(self.KIND, self)

    def peek(self, key: str) -> bytes | None:
        """The value from the local copy, or None: never a round trip."""
        return self._local.get(key) if self._channel.live else None

    def get(self, key: str) -> bytes | None:
        if self._channel.live:
            value = self._local.get(key)
            if value is not None:
                return value
        generation = self._generation
        value = self._remote.get(key)
        if value is not None and self._channel.live and generation == self._generation:
            self._local.set(key, value, self.LOCAL_TTL_S)
        return value

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._remote.set(key, value, ttl_s)
        if self._channel.live:
            self._local.set(key, value, min(ttl_s, self.LOCAL_TTL_S))

    def delete(self, *keys: str) -> None:
        self._forget(*keys)
        self._remote.delete(*keys)

    def resync(self) -> None:
        self._generation = next(self._changes)
        self._local.clear()

    def invalidated(self, kind: str, key: str) -> None:
        self._forget(key)

    def _forget(self, *keys: str) -> None:
        self._generation = next(self._changes)
        self._local.delete(*keys)
