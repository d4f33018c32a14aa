"""Budgets of failed logins per account (GCRA, like the request rate limiters): in Redis,
shared by every api replica, and its in-process twin.

An attempt is counted before the password is checked and given back when it succeeds, so
concurrent guesses can never overshoot the budget; once it is spent every attempt gets 429
until it refills, the right password included (that is what stops a spray)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import redis
from redis.exceptions import RedisError

from adapters.outbound.rate_limiter import GCRA_SCRIPT, InMemoryRateLimiter
from application.errors import Unavailable
from application.rate_limits import Rate


def _bucket(key: str) -> str:
    """Keys name accounts (or login names that match none): keep them out of Redis in clear."""
    return "login-failures:" + hashlib.sha256(key.encode()).hexdigest()[:32]


class InMemoryLoginBudget:
    def __init__(self, rate: Rate, now: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._limiter = InMemoryRateLimiter(now)

    def spend(self, key: str) -> float | None:
        decision = self._limiter.hit_sync(_bucket(key), self._rate)
        return None if decision.allowed else decision.retry_after_s

    def refund(self, key: str) -> None:
        self._limiter.give_back(_bucket(key), self._rate)


# KEYS[1] bucket; ARGV period (ms), limit. Moves the TAT back by one interval, never before now.
REFUND_SCRIPT = """
local interval = tonumber(ARGV[1]) / tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local back = tat - interval
if back <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.3f', back), 'PX', math.ceil(back - now))
end
return 1
"""


class RedisLoginBudget:
    """Fails closed: while Redis does not answer, logins get 503 (as they do for the refresh store)."""

    def __init__(self, client: redis.Redis, rate: Rate, prefix: str = "vodhub:") -> None:
        self._rate = rate
        self._prefix = f"{prefix}ratelimit:"
        self._spend = client.register_script(GCRA_SCRIPT)
        self._refund = client.register_script(REFUND_SCRIPT)

    def spend(self, key: str) -> float | None:
        try:
            allowed, _, retry_after_ms, _ = self._spend(keys=[self._prefix + _bucket(key)], args=self._args())
        except RedisError as error:
            raise Unavailable(f"the login budget is unavailable: {error}") from None
        return None if int(allowed) else int(retry_after_ms) / 1000

    def refund(self, key: str) -> None:
        try:
            self._refund(keys=[self._prefix + _bucket(key)], args=self._args())
        except RedisError as error:
            raise Unavailable(f"the login budget is unavailable: {error}") from None

    def _args(self) -> list[int]:
        return [int(self._rate.period_s * 1000), self._rate.limit]
