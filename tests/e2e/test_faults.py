"""Backends going away under a running api: answers become 503 problem+json (never a hang,
never a 500) and the api recovers by itself when they return."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from tests.e2e.test_accounts_walkthrough import ALICE, walk_through
from tests.fixtures.processes import vodhub_process
from tests.fixtures.tcp_proxy import TcpProxy

REQUEST_TIMEOUT = 20.0  # eventsourcing retries each statement 10 times, about 12 s in all


def statuses_until(predicate, call, timeout: float = 40.0) -> list[int]:
    """Call repeatedly until predicate(status); every call must answer within REQUEST_TIMEOUT."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        response = call()
        assert time.monotonic() - started < REQUEST_TIMEOUT
        seen.append(response.status_code)
        if response.status_code >= 500:
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        if predicate(response.status_code):
            return seen
        assert time.monotonic() < deadline, f"never got there: {seen[-10:]}"
        time.sleep(0.2)


def test_postgres_going_away_gives_503s_and_the_api_recovers(tmp_path, postgres_url, postgres_schema):
    proxy = TcpProxy(urlsplit(postgres_url).port or 5432).start()
    database = postgres_url.replace(f":{urlsplit(postgres_url).port}", f":{proxy.port}")
    env = {"VODHUB_DATABASE_URL": f"{database}?schema={postgres_schema}", "VODHUB_DATA_DIR": str(tmp_path / "d"),
           "VODHUB_BREAKER_OPEN_S": "5"}
    try:
        with vodhub_process("api", cwd=tmp_path, env=env) as base_url:
            headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}

            def me() -> httpx.Response:
                return httpx.get(f"{base_url}/api/users/me", headers=headers, timeout=REQUEST_TIMEOUT)

            proxy.cut()
            statuses_until(lambda status: status == 503, me)
            # The breaker is open now: the next request is not even tried against the database.
            again = me()
            assert again.status_code == 503 and again.json()["dependency"] == "postgresql", again.text
            assert again.headers["retry-after"].isdigit()
            ready = httpx.get(f"{base_url}/health/ready", timeout=REQUEST_TIMEOUT)
            assert ready.status_code == 503 and "event_store" in ready.json()["detail"]
            assert ready.json()["breakers"]["postgresql"] == "open"
            assert 'vodhub_breaker_state{dependency="postgresql"} 1.0' in httpx.get(f"{base_url}/metrics").text
            proxy.restore()
            statuses_until(lambda status: status == 200, me)
            assert httpx.get(f"{base_url}/health/ready", timeout=REQUEST_TIMEOUT).status_code == 200
    finally:
        proxy.cut()


def test_redis_going_away_keeps_tokens_working_and_refuses_refreshes(tmp_path, redis_url, redis_prefix):
    proxy = TcpProxy(urlsplit(redis_url).port or 6379).start()
    env = {"VODHUB_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0", "VODHUB_REDIS_PREFIX": redis_prefix,
           "VODHUB_DATA_DIR": str(tmp_path / "d")}
    try:
        with vodhub_process("api", cwd=tmp_path, env=env) as base_url:
            tokens = walk_through(base_url)
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            proxy.cut()
            # Revocation checks fail open: a valid access token keeps working (rate limits per process).
            for _ in range(3):
                assert httpx.get(f"{base_url}/api/users/me", headers=headers, timeout=REQUEST_TIMEOUT).status_code == 200
            refresh = httpx.post(f"{base_url}/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]},
                                 timeout=REQUEST_TIMEOUT)
            assert refresh.status_code == 503 and refresh.headers["retry-after"]
            login = httpx.post(f"{base_url}/api/auth/login", timeout=REQUEST_TIMEOUT,
                               json={"username_or_email": "alice", "password": ALICE["password"]})
            assert login.status_code == 503
            ready = httpx.get(f"{base_url}/health/ready", timeout=REQUEST_TIMEOUT).json()
            assert ready["status"] == 503 and "redis" in ready["detail"]
            assert ready["breakers"]["redis"] == "open"  # the same breaker for every use of Redis
            proxy.restore()
            statuses_until(lambda status: status == 200, lambda: httpx.post(
                f"{base_url}/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=REQUEST_TIMEOUT))
    finally:
        proxy.cut()
