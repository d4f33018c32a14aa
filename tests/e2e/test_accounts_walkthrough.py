"""The README walk-through against real processes: `vodhub dev` on embedded defaults, and
`vodhub api` on PostgreSQL and Redis."""

from __future__ import annotations

import httpx

from tests.fixtures.processes import vodhub_process

ALICE = {"username": "alice", "email": "alice@example.com", "password": "correct horse battery"}


def walk_through(base_url: str) -> dict:
    registered = httpx.post(f"{base_url}/api/auth/register", json=ALICE)
    assert registered.status_code == 201, registered.text
    tokens = httpx.post(f"{base_url}/api/auth/login",
                        json={"username_or_email": "alice", "password": ALICE["password"]}).json()
    me = httpx.get(f"{base_url}/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "alice" and me.json()["roles"] == ["admin"]
    return tokens


def test_dev_on_embedded_defaults_keeps_accounts_and_keys_across_restarts(tmp_path):
    with vodhub_process("dev", cwd=tmp_path, env={}) as base_url:
        tokens = walk_through(base_url)
    assert (tmp_path / "var" / "accounts.sqlite3").exists()
    assert (tmp_path / "var" / "jwt-ed25519.pem").stat().st_mode & 0o077 == 0
    with vodhub_process("dev", cwd=tmp_path, env={}) as base_url:
        me = httpx.get(f"{base_url}/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200
        again = httpx.post(f"{base_url}/api/auth/register", json=ALICE)
        assert again.status_code == 409


def test_api_on_postgres_and_redis(tmp_path, postgres_url, postgres_schema, redis_url, redis_prefix, redis_client):
    env = {
        "VODHUB_DATABASE_URL": f"{postgres_url}?schema={postgres_schema}",
        "VODHUB_REDIS_URL": redis_url,
        "VODHUB_REDIS_PREFIX": redis_prefix,
        "VODHUB_DATA_DIR": str(tmp_path / "data"),
    }
    with vodhub_process("api", cwd=tmp_path, env=env) as base_url:
        tokens = walk_through(base_url)
        ready = httpx.get(f"{base_url}/health/ready").json()
        assert {"event_store", "read_model", "object_storage", "redis"} <= ready["checks"].keys()
        assert set(ready["checks"].values()) == {"ok"}
        logout = httpx.post(f"{base_url}/api/auth/logout", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert logout.status_code == 204
    assert any(key.startswith(f"{redis_prefix}revoked:".encode()) for key in redis_client.scan_iter(match=redis_prefix + "*"))
    with vodhub_process("api", cwd=tmp_path, env=env) as base_url:  # revocation is shared, not per process
        me = httpx.get(f"{base_url}/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 401
