"""Near copies of the cache and of the revocation list in each process, kept true over Redis
pub/sub: two 'processes' here are two sets of adapters with their own connections."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from adapters.outbound.cache import NearCache, RedisCache
from adapters.outbound.redis_client import connect
from adapters.outbound.redis_invalidations import InvalidationChannel
from adapters.outbound.redis_tokens import RedisRevocationList

TIMEOUT_S = 20.0


def eventually(check, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.02)


@pytest.fixture
def channels(redis_url, redis_prefix):
    """Two processes' channels, each on its own subscriber connection."""
    opened = [InvalidationChannel(connect(redis_url), redis_prefix) for _ in range(2)]
    yield opened
    for channel in opened:
        channel.close()


def near_cache(redis_url: str, prefix: str, channel: InvalidationChannel) -> NearCache:
    cache = NearCache(RedisCache(connect(redis_url), prefix), channel)
    eventually(lambda: channel.live)
    return cache


def test_a_warm_value_is_answered_from_memory_until_any_process_deletes_it(channels, redis_url, redis_prefix):
    first, second = (near_cache(redis_url, redis_prefix, channel) for channel in channels)
    first.set("video:1", b"v1", 60)
    assert second.peek("video:1") is None  # not read yet in that process
    assert second.get("video:1") == b"v1"
    assert second.peek("video:1") == b"v1"  # now in its memory
    first.delete("video:1")
    eventually(lambda: second.peek("video:1") is None)
    assert second.get("video:1") is None


def test_a_plain_redis_cache_delete_reaches_the_near_copies(channels, redis_url, redis_prefix):
    cache = near_cache(redis_url, redis_prefix, channels[0])
    cache.set("video:2", b"v", 60)
    assert cache.peek("video:2") == b"v"
    RedisCache(connect(redis_url), redis_prefix).delete("video:2")  # as the projector does
    eventually(lambda: cache.peek("video:2") is None)


def test_without_the_channel_nothing_is_answered_from_memory(redis_url, redis_prefix):
    down = InvalidationChannel(connect("redis://127.0.0.1:1/0"), redis_prefix)
    try:
        cache = NearCache(RedisCache(connect(redis_url), redis_prefix), down)
        cache.set("video:3", b"v", 60)
        time.sleep(0.3)
        assert not down.live and cache.peek("video:3") is None
        assert cache.get("video:3") == b"v"  # still served, by a round trip
    finally:
        down.close()


def test_a_revocation_reaches_every_process_and_later_ones_read_the_list(channels, redis_url, redis_prefix, clock):
    first, second = (RedisRevocationList(connect(redis_url), clock, redis_prefix, channel=channel) for channel in channels)
    eventually(lambda: first.answers_without_io() and second.answers_without_io())
    assert not second.is_revoked("jti-1", "session:s1")
    first.revoke("session:s1", until=clock.now() + timedelta(minutes=5))
    assert first.is_revoked("session:s1")  # the revoking process knows at once
    eventually(lambda: second.is_revoked("jti-1", "session:s1"))

    late_channel = InvalidationChannel(connect(redis_url), redis_prefix)
    try:
        late = RedisRevocationList(connect(redis_url), clock, redis_prefix, channel=late_channel)
        eventually(late.answers_without_io)
        assert late.is_revoked("session:s1") and not late.is_revoked("jti-2")
    finally:
        late_channel.close()


def test_mirrored_revocations_end_when_the_tokens_would_have_expired(channels, redis_url, redis_prefix, clock):
    revocations = RedisRevocationList(connect(redis_url), clock, redis_prefix, channel=channels[0])
    eventually(revocations.answers_without_io)
    revocations.revoke("jti-9", until=clock.now() + timedelta(minutes=5))
    clock.advance(5 * 60 + 2)
    assert not revocations.is_revoked("jti-9")


def test_a_users_cutoff_reaches_every_process_and_later_ones_read_it(channels, redis_url, redis_prefix, clock):
    """Disabling or demoting a user ends their earlier tokens at once in every process, mirror or not."""
    user = uuid.uuid4()
    first, second = (RedisRevocationList(connect(redis_url), clock, redis_prefix, channel=channel) for channel in channels)
    eventually(lambda: first.answers_without_io() and second.answers_without_io())
    issued = clock.now()
    assert not second.is_revoked("jti-1", user_id=user, issued_at=issued)
    clock.advance(1)
    first.revoke_issued_before(user, cutoff=clock.now(), until=clock.now() + timedelta(minutes=15))
    assert first.is_revoked("jti-1", user_id=user, issued_at=issued)
    eventually(lambda: second.is_revoked("jti-1", user_id=user, issued_at=issued))
    assert not second.is_revoked("jti-2", user_id=user, issued_at=clock.now() + timedelta(seconds=1))  # issued after
    assert not second.is_revoked("jti-1", user_id=uuid.uuid4(), issued_at=issued)  # another user

    late_channel = InvalidationChannel(connect(redis_url), redis_prefix)
    try:
        late = RedisRevocationList(connect(redis_url), clock, redis_prefix, channel=late_channel)
        eventually(late.answers_without_io)
        assert late.is_revoked("jti-1", user_id=user, issued_at=issued)
        assert not late.is_revoked("jti-1")  # the cutoff is no revoked id
    finally:
        late_channel.close()
    without_mirror = RedisRevocationList(connect(redis_url), clock, redis_prefix)
    assert without_mirror.is_revoked("jti-1", user_id=user, issued_at=issued)
