"""Disabling a user or changing their roles ends their access tokens at once (API.md, Users),
over HTTP, with the revocation list in memory and in Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.in_memory_tokens import InMemoryRefreshTokenStore, InMemoryRevocationList
from adapters.outbound.redis_tokens import RedisRefreshTokenStore, RedisRevocationList
from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.fixtures.api import PASSWORD, bearer, login, register


@pytest.fixture(params=["memory", "redis"])
def client(request, tmp_path, clock) -> Iterator[TestClient]:
    if request.param == "memory":
        stores = InMemoryRevocationList(clock), InMemoryRefreshTokenStore(clock)
    else:
        redis_client, prefix = request.getfixturevalue("redis_client"), request.getfixturevalue("redis_prefix")
        stores = RedisRevocationList(redis_client, clock, prefix), RedisRefreshTokenStore(redis_client, clock, prefix)
    app = bootstrap(
        Settings(data_dir=tmp_path / "var"), clock=clock, hasher=Argon2PasswordHasher.fast_for_tests(),
        revocations=stores[0], refresh_tokens=stores[1],
    )
    with TestClient(build_api(app)) as test_client:
        yield test_client
    app.close()


@pytest.fixture
def alice_and_bob(client) -> tuple[dict, dict]:
    register(client, "alice")
    return bearer(login(client, "alice")), register(client, "bob")


def test_disabling_a_user_fails_their_tokens_at_once_and_stops_login_and_refresh(client, clock, alice_and_bob):
    as_alice, bob = alice_and_bob
    bobs = login(client, "bob")
    assert client.get("/api/auth/validate", headers=bearer(bobs)).status_code == 200
    clock.advance(1)
    assert client.post(f"/api/users/{bob['id']}/disable", headers=as_alice).status_code == 204
    for path in ("/api/auth/validate", "/api/users/me"):
        refused = client.get(path, headers=bearer(bobs))
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/api/auth/refresh", json={"refresh_token": bobs["refresh_token"]}).status_code == 401
    relogin = client.post("/api/auth/login", json={"username_or_email": "bob", "password": PASSWORD})
    assert relogin.status_code == 401
    assert client.get(f"/api/users/{bob['id']}", headers=as_alice).json()["disabled"] is True


def test_only_admins_may_disable_and_unknown_users_are_404(client, alice_and_bob):
    as_alice, bob = alice_and_bob
    carol = register(client, "carol")
    as_bob = bearer(login(client, "bob"))
    assert client.post(f"/api/users/{carol['id']}/disable", headers=as_bob).status_code == 403
    assert client.post(f"/api/users/{carol['id']}/disable").status_code == 401
    unknown = "00000000-0000-4000-8000-000000000000"
    assert client.post(f"/api/users/{unknown}/disable", headers=as_alice).status_code == 404
    assert client.get("/api/users/me", headers=bearer(login(client, "carol"))).status_code == 200


def test_a_role_change_fails_earlier_tokens_and_new_ones_carry_the_new_roles(client, clock, alice_and_bob):
    as_alice, bob = alice_and_bob
    before = bearer(login(client, "bob"))
    clock.advance(1)
    changed = client.put(f"/api/users/{bob['id']}/roles", json={"roles": ["moderator"]}, headers=as_alice)
    assert changed.status_code == 200
    assert client.get("/api/auth/validate", headers=before).status_code == 401
    clock.advance(1)
    after = client.get("/api/auth/validate", headers=bearer(login(client, "bob")))
    assert after.status_code == 200 and after.headers["x-user-roles"] == "moderator"


def test_setting_the_same_roles_again_keeps_tokens_working(client, clock, alice_and_bob):
    as_alice, bob = alice_and_bob
    bobs = bearer(login(client, "bob"))
    clock.advance(1)
    assert client.put(f"/api/users/{bob['id']}/roles", json={"roles": ["user"]}, headers=as_alice).status_code == 200
    assert client.get("/api/auth/validate", headers=bobs).status_code == 200


def test_openapi_describes_the_disable_route(client):
    operation = client.get("/schema/openapi.json").json()["paths"]["/api/users/{user_id}/disable"]["post"]
    assert {"204", "401", "403", "404"} <= operation["responses"].keys()
