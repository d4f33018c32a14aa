"""The failed-login budget per account (API.md: 30 failed logins per hour per username from any
address): the Redis adapter against the real server and its in-memory twin, then over HTTP."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.login_budget import InMemoryLoginBudget, RedisLoginBudget
from application.rate_limits import Rate
from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.fixtures.api import PASSWORD, register


@pytest.fixture(params=["memory", "redis"])
def budget(request):
    if request.param == "memory":
        return InMemoryLoginBudget(Rate(3, 3600))
    client, prefix = request.getfixturevalue("redis_client"), request.getfixturevalue("redis_prefix")
    return RedisLoginBudget(client, Rate(3, 3600), prefix)


def test_the_budget_refuses_once_spent_and_a_refund_gives_one_back(budget):
    assert [budget.spend("user:a") for _ in range(3)] == [None, None, None]
    retry_after = budget.spend("user:a")
    assert retry_after is not None and 0 < retry_after <= 3600
    assert budget.spend("user:b") is None  # another account is untouched
    budget.refund("user:a")
    assert budget.spend("user:a") is None
    assert budget.spend("user:a") is not None


def test_refunds_never_buy_more_than_a_full_budget(budget):
    for _ in range(5):
        budget.refund("user:c")
    assert [budget.spend("user:c") for _ in range(4)][-1] is not None


def test_the_redis_budget_keeps_no_login_name_in_clear(redis_client, redis_prefix):
    RedisLoginBudget(redis_client, Rate(3, 3600), redis_prefix).spend("name:alice@example.com")
    keys = [key.decode() for key in redis_client.scan_iter(match=redis_prefix + "*")]
    assert len(keys) == 1 and "alice" not in keys[0] and redis_client.pttl(keys[0]) > 0


@pytest.fixture
def client(tmp_path, clock, redis_url, redis_prefix):
    settings = Settings(
        data_dir=tmp_path / "var", redis_url=redis_url, redis_prefix=redis_prefix,
        rate_limits="login=10/60,login_failures=3/1h",
    )
    app = bootstrap(settings, clock=clock, hasher=Argon2PasswordHasher.fast_for_tests())
    with TestClient(build_api(app)) as test_client:
        yield test_client
    app.close()


def test_over_http_spent_budget_is_429_with_retry_after_before_the_address_limit(client):
    register(client, "alice")
    for name in ("alice", "alice@example.com", "alice"):
        failed = client.post("/api/auth/login", json={"username_or_email": name, "password": "wrong password!"})
        assert failed.status_code == 401
    refused = client.post("/api/auth/login", json={"username_or_email": "alice", "password": PASSWORD})
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    unknown = [client.post("/api/auth/login", json={"username_or_email": "nobody", "password": PASSWORD})
               for _ in range(4)]
    assert [r.status_code for r in unknown] == [401, 401, 401, 429]
