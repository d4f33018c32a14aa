"""One counted view per viewer and video per window: in Redis (shared by the api replicas) and in
the in-process twin, which also stands in while Redis does not answer."""

from __future__ import annotations

import uuid

import pytest
import redis

from adapters.outbound.redis_client import connect
from adapters.outbound.view_dedup import InMemoryViewDedup, RedisViewDedup

VIDEO, FAN, CRITIC = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_in_memory_counts_once_per_window():
    clock = Ticking()
    dedup = InMemoryViewDedup(now=clock)
    assert dedup.first_view(VIDEO, FAN, 1800) and not dedup.first_view(VIDEO, FAN, 1800)
    assert dedup.first_view(VIDEO, CRITIC, 1800) and dedup.first_view(uuid.uuid4(), FAN, 1800)
    clock.now += 1801
    assert dedup.first_view(VIDEO, FAN, 1800)


def test_redis_counts_once_per_window_across_replicas(redis_client, redis_url, redis_prefix):
    replicas = [RedisViewDedup(redis_client, redis_prefix), RedisViewDedup(connect(redis_url), redis_prefix)]
    assert replicas[0].first_view(VIDEO, FAN, 1800)
    assert not replicas[1].first_view(VIDEO, FAN, 1800)
    assert replicas[1].first_view(VIDEO, CRITIC, 1800)
    assert 1700 < redis_client.ttl(f"{redis_prefix}viewed:{VIDEO}:{FAN}") <= 1800


def test_redis_down_falls_back_to_this_process():
    unreachable = connect("redis://127.0.0.1:1/0", timeout_s=0.2)
    dedup = RedisViewDedup(unreachable, "vodhub-test:")
    assert dedup.first_view(VIDEO, FAN, 1800) and not dedup.first_view(VIDEO, FAN, 1800)
    with pytest.raises(redis.RedisError):
        unreachable.ping()
