"""RedisRateLimiter against the real Redis, side by side with its in-memory twin; two limiter
instances standing in for two API replicas; and Redis unreachable."""

from __future__ import annotations

import logging
import socket

import pytest
from litestar.testing import TestClient

from adapters.inbound.http.app import create_app
from adapters.outbound.rate_limiter import InMemoryRateLimiter, RedisRateLimiter
from application.rate_limits import Rate, RateLimits

pytestmark = pytest.mark.anyio

RATE = Rate(5, 60)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio runs on asyncio only


@pytest.fixture
def closed_port_url() -> str:
    """A redis:// URL where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def limiter_log():
    """What the limiter logs; a handler on its own logger, as the app's startup reconfigures the root one."""
    handler, logger = Records(), logging.getLogger("vodhub.rate_limits")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


@pytest.fixture(params=["memory", "redis"])
async def limiter(request, redis_url, redis_prefix):
    if request.param == "memory":
        yield InMemoryRateLimiter()
        return
    limiter = RedisRateLimiter(redis_url, redis_prefix)
    yield limiter
    await limiter.aclose()


async def test_a_burst_of_limit_is_allowed_then_refused_with_a_retry_time(limiter):
    decisions = [await limiter.hit("caller", RATE) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert 11 < refused.retry_after_s <= 12 and 59 < refused.reset_after_s <= 60


async def test_callers_have_separate_buckets(limiter):
    assert (await limiter.hit("a", Rate(1, 60))).allowed
    assert (await limiter.hit("b", Rate(1, 60))).allowed
    assert not (await limiter.hit("a", Rate(1, 60))).allowed


async def test_two_replicas_share_one_bucket(redis_url, redis_prefix):
    first, second = RedisRateLimiter(redis_url, redis_prefix), RedisRateLimiter(redis_url, redis_prefix)
    try:
        allowed = [(await replica.hit("caller", RATE)).allowed for replica in (first, second) * 3]
        assert allowed == [True] * 5 + [False]
        assert not (await first.hit("caller", RATE)).allowed
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_bucket_expires_from_redis_once_it_is_full_again(redis_url, redis_prefix, redis_client):
    limiter = RedisRateLimiter(redis_url, redis_prefix)
    try:
        await limiter.hit("caller", Rate(2, 10))
        await limiter.hit("caller", Rate(2, 10))
    finally:
        await limiter.aclose()
    assert 9_000 < redis_client.pttl(f"{redis_prefix}ratelimit:caller") <= 10_000


async def test_with_redis_unreachable_limits_fall_back_to_this_process(closed_port_url, limiter_log):
    limiter = RedisRateLimiter(closed_port_url, retry_after_s=0)  # try Redis on every request
    decisions = [await limiter.hit("caller", RATE) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert limiter.degraded
    assert len(limiter_log) == 1  # logged once, not per request


def test_the_api_keeps_serving_when_redis_is_unreachable(vodhub, closed_port_url, limiter_log):
    limiter = RedisRateLimiter(closed_port_url)
    app = create_app(
        accounts=vodhub.accounts, videos=vodhub.videos, listing=vodhub.listing, streaming=vodhub.streaming,
        storage=vodhub.storage, health_checks={}, rate_limiter=limiter, rate_limits=RateLimits(default=Rate(3, 60)),
    )
    with TestClient(app) as client:
        statuses = [client.get("/.well-known/jwks.json").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # served, and still limited, per process
    assert ["limits are per process" in r.getMessage() for r in limiter_log] == [True]
