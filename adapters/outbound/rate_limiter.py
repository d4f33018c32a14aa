"""Rate limiters (GCRA): one in Redis shared by every API replica, and its in-process twin.

GCRA keeps one number per bucket, the theoretical arrival time (TAT) of the next request:
each allowed request pushes it `period / limit` seconds further, and a request is refused
while the TAT lies more than `period` ahead of now. That allows bursts of `limit` and then
a steady `limit` per `period`, with no counters to reset and O(1) state."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.outbound.breakers import Breaker, CircuitOpen, standalone_breaker
from application.rate_limits import Rate, RateDecision

logger = logging.getLogger("vodhub.rate_limits")

SWEEP_EVERY_S = 60.0


def gcra(tat: float | None, now: float, rate: Rate) -> tuple[RateDecision, float | None]:
    """The decision for one request and the bucket's new TAT (None: unchanged)."""
    interval = rate.period_s / rate.limit
    ahead = 0.0 if tat is None or tat < now else tat - now  # how far the TAT runs ahead of now
    # Compared as offsets from now: (now + x) - x need not equal now in floating point.
    if ahead > rate.period_s - interval:
        return RateDecision(False, rate.limit, 0, ahead, retry_after_s=ahead - (rate.period_s - interval)), None
    ahead += interval
    remaining = int((rate.period_s - ahead) / interval + 1e-9)
    return RateDecision(True, rate.limit, remaining, reset_after_s=ahead), now + ahead


class InMemoryRateLimiter:
    """Buckets in this process only (embedded default, and the fallback while Redis is away)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = now() + SWEEP_EVERY_S

    async def hit(self, key: str, rate: Rate) -> RateDecision:
        return self.hit_sync(key, rate)

    def hit_sync(self, key: str, rate: Rate) -> RateDecision:
        with self._lock:
            now = self._now()
            if now >= self._next_sweep:
                self._forget_full_buckets(now)
            decision, new_tat = gcra(self._tats.get(key), now, rate)
            if new_tat is not None:
                self._tats[key] = new_tat
            return decision

    def give_back(self, key: str, rate: Rate) -> None:
        """Undo one allowed hit: the TAT moves back one interval, never before now."""
        with self._lock:
            tat = self._tats.get(key)
            if tat is not None:
                self._tats[key] = max(self._now(), tat - rate.period_s / rate.limit)

    def _forget_full_buckets(self, now: float) -> None:
        """A bucket whose TAT has passed is full again, the same as one never seen."""
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        self._next_sweep = now + SWEEP_EVERY_S

    async def aclose(self) -> None:
        return None


# KEYS[1] bucket; ARGV period (ms), limit. Redis's own clock, so replicas never disagree on now.
# Returns {allowed, remaining, retry_after_ms, reset_ms}: integers, as Lua numbers are truncated anyway.
GCRA_SCRIPT = """
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local interval = period / limit
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local ahead = tonumber(redis.call('GET', KEYS[1]) or now) - now
if ahead < 0 then ahead = 0 end
if ahead > period - interval then
  return {0, 0, math.ceil(ahead - (period - interval)), math.ceil(ahead)}
end
ahead = ahead + interval
redis.call('SET', KEYS[1], string.format('%.3f', now + ahead), 'PX', math.ceil(ahead))
return {1, math.floor((period - ahead) / interval + 1e-9), 0, math.ceil(ahead)}
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every replica. While Redis does not answer (its breaker is
    open), each process counts in its in-memory twin (per-process limits) until the breaker
    lets a call through again; the outage is logged once when it starts and once when it ends."""

    def __init__(
        self, url: str, prefix: str = "vodhub:", *, fallback: InMemoryRateLimiter | None = None,
        timeout_s: float = 0.5, retry_after_s: float = 5.0, now: Callable[[], float] = time.monotonic,
        breaker: Breaker | None = None,
    ) -> None:
        self._url = url
        self._prefix = f"{prefix}ratelimit:"
        self._fallback = fallback or InMemoryRateLimiter(now)
        self._timeout_s = timeout_s
        self._breaker = breaker or standalone_breaker("redis", open_s=retry_after_s)
        self._down = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Redis | None = None
        self._script = None

    @property
    def degraded(self) -> bool:
        """Whether limits are currently per process because Redis did not answer."""
        return self._down

    async def hit(self, key: str, rate: Rate) -> RateDecision:
        try:
            with self._breaker:
                answer = await self._gcra()(keys=[self._prefix + key], args=[int(rate.period_s * 1000), rate.limit])
        except CircuitOpen:
            return await self._fallback.hit(key, rate)
        except (TimeoutError, OSError, RedisError) as error:
            self._went_down(error)
            return await self._fallback.hit(key, rate)
        self._came_back()
        allowed, remaining, retry_after_ms, reset_ms = (int(value) for value in answer)
        return RateDecision(bool(allowed), rate.limit, remaining, reset_ms / 1000, retry_after_ms / 1000)

    def _gcra(self):
        """The script bound to a client of the running event loop (asyncio clients are loop-bound)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._script is None:
            # No retries: a refused request must not wait for Redis, the fallback answers at once.
            self._client = Redis.from_url(
                self._url, socket_timeout=self._timeout_s, socket_connect_timeout=self._timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            self._script = self._client.register_script(GCRA_SCRIPT)
            self._loop = loop
        return self._script

    def _went_down(self, error: BaseException) -> None:
        if not self._down:
            logger.warning(
                "redis did not answer the rate limiter (%s: %s); limits are per process until it does",
                type(error).__name__, error,
            )
        self._down = True

    def _came_back(self) -> None:
        if self._down:
            logger.warning("redis answers the rate limiter again; limits are shared by all replicas")
            self._down = False

    async def aclose(self) -> None:
        client, loop = self._client, self._loop
        self._client = self._script = self._loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()

