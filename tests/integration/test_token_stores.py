"""Revocation list and refresh-token store: one contract, the Redis adapter against the real
server and its in-memory twin."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from adapters.outbound.clock import SettableClock
from adapters.outbound.in_memory_tokens import InMemoryRefreshTokenStore, InMemoryRevocationList
from adapters.outbound.redis_tokens import RedisRefreshTokenStore, RedisRevocationList


@pytest.fixture(params=["memory", "redis"])
def stores(request, clock):
    if request.param == "memory":
        return InMemoryRevocationList(clock), InMemoryRefreshTokenStore(clock)
    client, prefix = request.getfixturevalue("redis_client"), request.getfixturevalue("redis_prefix")
    return RedisRevocationList(client, clock, prefix), RedisRefreshTokenStore(client, clock, prefix)


def test_revoked_token_id_is_refused_and_others_are_not(stores, clock: SettableClock):
    revocations, _ = stores
    revocations.revoke("jti-1", until=clock.now() + timedelta(minutes=5))
    assert revocations.is_revoked("jti-1")
    assert not revocations.is_revoked("jti-2")
    assert revocations.is_revoked("jti-2", "jti-1")  # any of several ids, in one round trip
    assert not revocations.is_revoked("jti-2", "session:s")


def test_refresh_token_is_usable_once(stores, clock):
    _, refresh = stores
    user_id = uuid.uuid4()
    refresh.add("h1", user_id, "fam", expires_at=clock.now() + timedelta(days=1))
    first, second = refresh.use("h1"), refresh.use("h1")
    assert (first.user_id, first.family_id, first.already_used) == (user_id, "fam", False)
    assert second.already_used
    assert refresh.use("unknown") is None


def test_concurrent_use_of_one_refresh_token_lets_exactly_one_through(stores, clock):
    _, refresh = stores
    refresh.add("h2", uuid.uuid4(), "fam", expires_at=clock.now() + timedelta(days=1))
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(refresh.use("h2").already_used)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(False) == 1


def test_family_revocation(stores, clock):
    _, refresh = stores
    refresh.revoke_family("fam", until=clock.now() + timedelta(days=1))
    assert refresh.is_family_revoked("fam")
    assert not refresh.is_family_revoked("other")


def test_redis_keys_expire_with_their_tokens(redis_client, redis_prefix):
    clock = SettableClock()
    revocations = RedisRevocationList(redis_client, clock, redis_prefix)
    refresh = RedisRefreshTokenStore(redis_client, clock, redis_prefix)
    revocations.revoke("jti", until=clock.now() + timedelta(seconds=60))
    refresh.add("h", uuid.uuid4(), "fam", expires_at=clock.now() + timedelta(seconds=120))
    assert 0 < redis_client.ttl(f"{redis_prefix}revoked:jti") <= 61
    assert 60 < redis_client.ttl(f"{redis_prefix}refresh:h") <= 121


def test_with_redis_down_revocation_checks_fail_open_and_refresh_tokens_fail_closed(clock):
    from adapters.outbound.redis_client import connect
    from application.errors import Unavailable

    away = connect("redis://127.0.0.1:1/0")
    revocations, refresh = RedisRevocationList(away, clock, "x:"), RedisRefreshTokenStore(away, clock, "x:")
    assert revocations.is_revoked("jti") is False  # accepted until it expires (15 min by default)
    later = clock.now() + timedelta(minutes=5)
    with pytest.raises(Unavailable):
        revocations.revoke("jti", until=later)
    with pytest.raises(Unavailable):
        refresh.add("h", uuid.uuid4(), "fam", expires_at=later)
    with pytest.raises(Unavailable):
        refresh.use("h")


def test_a_user_cutoff_refuses_that_users_earlier_tokens_only(stores, clock: SettableClock):
    revocations, _ = stores
    alice, bob = uuid.uuid4(), uuid.uuid4()
    earlier = clock.now()
    clock.advance(1)
    revocations.revoke_issued_before(alice, clock.now(), until=clock.now() + timedelta(minutes=15))
    assert revocations.is_revoked("jti", user_id=alice, issued_at=earlier)
    assert not revocations.is_revoked("jti", user_id=alice, issued_at=clock.now())
    assert not revocations.is_revoked("jti", user_id=bob, issued_at=earlier)
    assert not revocations.is_revoked("jti")  # no user named: only the ids are checked


def test_an_earlier_cutoff_never_replaces_a_later_one(stores, clock: SettableClock):
    revocations, _ = stores
    user, start = uuid.uuid4(), clock.now()
    until = start + timedelta(minutes=15)
    revocations.revoke_issued_before(user, start + timedelta(seconds=10), until=until)
    revocations.revoke_issued_before(user, start + timedelta(seconds=5), until=until)
    assert revocations.is_revoked("jti", user_id=user, issued_at=start + timedelta(seconds=7))
