"""The lean request path keeps its contracts: the header limit the server no longer enforces,
request ids, CORS only where an Origin asks for it."""

from __future__ import annotations

from litestar.testing import TestClient

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.fixtures.api import PASSWORD, register


def test_headers_past_the_limit_get_431_problem(tmp_path, clock):
    vodhub = bootstrap(Settings(data_dir=tmp_path / "var", max_header_bytes=2048), clock=clock,
                       hasher=Argon2PasswordHasher.fast_for_tests())
    with TestClient(build_api(vodhub)) as client:
        check_header_limit(client)
    vodhub.close()


def check_header_limit(client: TestClient) -> None:
    assert client.get("/health/live", headers={"X-Filler": "a" * 1000}).status_code == 200
    response = client.get("/health/live", headers={"X-Filler": "a" * 3000})
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 431 and "2048 bytes" in response.json()["detail"]
    assert len(response.headers["x-request-id"]) == 32


def test_requests_without_an_origin_carry_no_cors_headers(client):
    response = client.get("/health/live")
    assert not [name for name in response.headers if name.startswith("access-control-")]
    browser = client.get("/health/live", headers={"Origin": "https://app.example"})
    assert browser.headers["access-control-allow-origin"] == "*"


def test_validate_answers_a_known_token_and_refuses_it_once_logged_out(client):
    register(client, "alice")
    tokens = client.post("/api/auth/login", json={"username_or_email": "alice", "password": PASSWORD}).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    for _ in range(2):  # the second answer comes from the verified-token cache
        response = client.get("/api/auth/validate", headers=bearer)
        assert response.status_code == 200 and response.headers["x-user-id"]
    assert client.post("/api/auth/logout", headers=bearer).status_code == 204
    assert client.get("/api/auth/validate", headers=bearer).status_code == 401
