"""The Auth and Users routes of API.md over HTTP, every status and error case."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fixtures.api import PASSWORD, bearer, login, register
from tests.fixtures.forged_tokens import forged_tokens

SERVER_KEY = Ed25519PrivateKey.generate()
SERVER_KEY_PEM = SERVER_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys() and body["status"] == status
    return body


# --- register -----------------------------------------------------------------------


def test_register_returns_the_profile_and_the_first_account_is_admin(client):
    alice = register(client, "Alice")
    assert alice["username"] == "alice" and alice["roles"] == ["admin"]
    assert {"id", "email", "display_name", "created_at"} <= alice.keys()
    assert register(client, "bob")["roles"] == ["user"]


@pytest.mark.parametrize("body, field", [
    ({"email": "a@example.com", "password": PASSWORD}, "username"),
    ({"username": 5, "email": "a@example.com", "password": PASSWORD}, "username"),
    ({"username": "a" * 1000, "email": "a@example.com", "password": PASSWORD}, "username"),
    ({"username": "bad name", "email": "a@example.com", "password": PASSWORD}, "username"),
    ({"username": "alice", "email": "not-an-email", "password": PASSWORD}, "email"),
    ({"username": "alice", "email": "a@example.com", "password": "short"}, "password"),
    ({"username": "alice", "email": "a@example.com", "password": "p" * 257}, "password"),
    ({"username": "alice", "email": "a@example.com", "password": PASSWORD, "display_name": "d" * 65},
     "display_name"),
])
def test_invalid_registration_is_422_naming_the_field(client, body, field):
    problem = assert_problem(client.post("/api/auth/register", json=body), 422)
    assert field in [error["field"] for error in problem["errors"]]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b'{"username": "a",'])
def test_malformed_json_is_400(client, raw):
    assert_problem(client.post("/api/auth/register", content=raw, headers={"content-type": "application/json"}), 400)


def test_non_object_json_is_a_validation_error(client):
    assert_problem(client.post("/api/auth/register", json=[1, 2]), 422)


def test_duplicate_username_or_email_is_409(client):
    register(client, "alice")
    taken_name = {"username": "ALICE", "email": "x@example.com", "password": PASSWORD}
    taken_email = {"username": "alice2", "email": "Alice@example.com", "password": PASSWORD}
    assert_problem(client.post("/api/auth/register", json=taken_name), 409)
    assert_problem(client.post("/api/auth/register", json=taken_email), 409)


# --- login, refresh, logout, validate ---------------------------------------------------


def test_login_returns_a_bearer_pair(client):
    register(client, "alice")
    tokens = login(client, "alice@example.com")
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    assert tokens["refresh_expires_in"] == 2_592_000 and tokens["refresh_token"]


def test_unknown_user_and_wrong_password_get_the_same_401(client):
    register(client, "alice")
    unknown = client.post("/api/auth/login", json={"username_or_email": "nobody", "password": PASSWORD})
    wrong = client.post("/api/auth/login", json={"username_or_email": "alice", "password": "not the one!"})
    assert assert_problem(unknown, 401) == assert_problem(wrong, 401)
    assert unknown.headers["www-authenticate"].startswith("Bearer")


def test_login_with_missing_fields_is_422(client):
    assert_problem(client.post("/api/auth/login", json={"username_or_email": "alice"}), 422)


def test_refresh_rotates_and_replay_revokes_the_family(client):
    register(client, "alice")
    first = login(client, "alice")
    second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    replay = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(replay, 401)
    after = client.post("/api/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert_problem(after, 401)


def test_refresh_with_an_unknown_token_is_401(client):
    assert_problem(client.post("/api/auth/refresh", json={"refresh_token": "nope"}), 401)


def test_logout_revokes_access_and_refresh(client):
    register(client, "alice")
    tokens = login(client, "alice")
    assert client.post("/api/auth/logout", headers=bearer(tokens)).status_code == 204
    assert_problem(client.get("/api/users/me", headers=bearer(tokens)), 401)
    assert_problem(client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)


def test_validate_answers_with_identity_headers_for_a_gateway(client):
    alice = register(client, "alice")
    response = client.get("/api/auth/validate", headers=bearer(login(client, "alice")))
    assert response.status_code == 200
    assert response.headers["x-user-id"] == alice["id"] and response.headers["x-user-roles"] == "admin"
    assert response.json()["sub"] == alice["id"] and response.json()["roles"] == ["admin"]


def test_validate_without_a_token_is_401_with_a_bearer_challenge(client):
    response = client.get("/api/auth/validate")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic YWxpY2U6cHc=", "Bearer a b c"])
def test_malformed_authorization_headers_are_401(client, header):
    assert_problem(client.get("/api/users/me", headers={"Authorization": header}), 401)


@pytest.mark.parametrize("case", [
    "expired", "not_yet_valid", "other_key_same_kid", "other_key_other_kid", "alg_none",
    "hs256_with_public_key", "tampered_payload", "wrong_audience", "wrong_issuer", "missing_jti",
    "garbage",
])
@pytest.mark.parametrize("settings_overrides", [{"jwt_private_key": SERVER_KEY_PEM}])
def test_forged_or_stale_tokens_are_401(client, case):
    register(client, "alice")
    valid = login(client, "alice")["access_token"]
    kid = client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    signing_key = SERVER_KEY  # the test forges with the server's own key, given to it as a setting
    token = forged_tokens(signing_key, kid, valid)[case]
    for path in ("/api/users/me", "/api/auth/validate"):
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_jwks_is_public_and_lists_the_signing_key(client):
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys[0]["kty"] == "OKP" and keys[0]["kid"] and "d" not in keys[0]


# --- users -------------------------------------------------------------------------


def test_me_returns_the_full_profile(client):
    alice = register(client, "alice")
    me = client.get("/api/users/me", headers=bearer(login(client, "alice"))).json()
    assert me["id"] == alice["id"] and me["email"] == "alice@example.com"


def test_others_see_the_public_profile_and_admins_the_full_one(client):
    alice, bob = register(client, "alice"), register(client, "bob")
    as_bob = bearer(login(client, "bob"))
    public = client.get(f"/api/users/{alice['id']}", headers=as_bob).json()
    assert set(public) == {"id", "username", "display_name", "bio", "avatar_url"}
    full = client.get(f"/api/users/{bob['id']}", headers=bearer(login(client, "alice"))).json()
    assert full["email"] == "bob@example.com"


def test_unknown_or_malformed_user_id_is_404(client):
    register(client, "alice")
    headers = bearer(login(client, "alice"))
    assert_problem(client.get(f"/api/users/{uuid.uuid4()}", headers=headers), 404)
    assert_problem(client.get("/api/users/not-a-uuid", headers=headers), 404)


def test_users_routes_need_a_token(client):
    alice = register(client, "alice")
    assert_problem(client.get(f"/api/users/{alice['id']}"), 401)
    assert_problem(client.put(f"/api/users/{alice['id']}", json={"bio": "x"}), 401)


def test_update_profile_self_admin_and_403_for_others(client):
    alice, bob = register(client, "alice"), register(client, "bob")
    as_bob = bearer(login(client, "bob"))
    own = client.put(f"/api/users/{bob['id']}", json={"bio": "hello", "display_name": "Bob"}, headers=as_bob)
    assert own.status_code == 200 and own.json()["bio"] == "hello"
    assert_problem(client.put(f"/api/users/{alice['id']}", json={"bio": "x"}, headers=as_bob), 403)
    by_admin = client.put(f"/api/users/{bob['id']}", json={"bio": "set by admin"},
                          headers=bearer(login(client, "alice")))
    assert by_admin.json()["bio"] == "set by admin"


@pytest.mark.parametrize("body", [{"bio": "x" * 2001}, {"avatar_url": "ftp://x"}, {"bio": 7},
                                  {"display_name": "\x00"}])
def test_invalid_profile_update_is_422(client, body):
    bob = register(client, "bob")
    response = client.put(f"/api/users/{bob['id']}", json=body, headers=bearer(login(client, "bob")))
    assert_problem(response, 422)


def test_roles_are_admin_only_and_validated(client):
    register(client, "alice")
    bob = register(client, "bob")
    as_bob, as_alice = bearer(login(client, "bob")), bearer(login(client, "alice"))
    assert_problem(client.put(f"/api/users/{bob['id']}/roles", json={"roles": ["admin"]}, headers=as_bob), 403)
    assert_problem(client.put(f"/api/users/{bob['id']}/roles", json={"roles": ["root"]}, headers=as_alice), 422)
    assert_problem(client.put(f"/api/users/{bob['id']}/roles", json={"roles": []}, headers=as_alice), 422)
    changed = client.put(f"/api/users/{bob['id']}/roles", json={"roles": ["moderator"]}, headers=as_alice)
    assert changed.status_code == 200 and changed.json()["roles"] == ["moderator"]


# --- operations ---------------------------------------------------------------------


def test_health_live_and_ready(client):
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["event_store"] == "ok"


def test_readiness_names_the_failing_backend(client, vodhub):
    async def broken() -> None:
        raise ConnectionError("connection refused")

    vodhub.health_checks["redis"] = broken
    problem = assert_problem(client.get("/health/ready"), 503)
    assert "redis" in problem["detail"] and problem["checks"]["event_store"] == "ok"


def test_openapi_describes_every_route(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path in ["/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout",
                 "/api/auth/validate", "/.well-known/jwks.json", "/api/users/me", "/api/users/{user_id}",
                 "/api/users/{user_id}/roles", "/health/live", "/health/ready"]:
        assert path in paths, path
    assert paths["/api/auth/login"]["post"]["security"] == [{}]


def test_unknown_route_and_method_are_problems(client):
    assert_problem(client.get("/api/nothing-here"), 404)
    assert_problem(client.delete("/api/auth/login"), 405)


def test_openapi_describes_the_problem_answers(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    login = paths["/api/auth/login"]["post"]["responses"]
    assert {"401", "422", "429"} <= login.keys()
    assert "application/problem+json" in login["401"]["content"]
    upload = paths["/api/videos/upload"]["post"]["responses"]
    assert {"202", "401", "413", "415", "422"} <= upload.keys()
    assert "409" in paths["/api/videos/stream/{video_id}"]["get"]["responses"]
    assert "416" in paths["/media/{rest}"]["get"]["responses"]
