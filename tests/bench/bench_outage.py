"""What a PostgreSQL outage costs a request, with the circuit breaker and without it.

`vodhub api` on PostgreSQL behind a cuttable proxy; the proxy is cut and GET /api/users/me is
asked REQUESTS times in a row. Printed: the first request's time and the median of the others,
with the breaker (default settings) and with it effectively off (VODHUB_BREAKER_FAILURES huge).
Target: with the breaker, the later requests answer 503 in well under a second.

Run: make bench (or .venv/bin/pytest tests/bench/bench_outage.py -o python_files='bench_*.py' -s)."""

from __future__ import annotations

import statistics
import time
import uuid
from urllib.parse import urlsplit

import httpx
import psycopg

from tests.e2e.test_accounts_walkthrough import walk_through
from tests.fixtures.processes import vodhub_process
from tests.fixtures.tcp_proxy import TcpProxy

REQUESTS = 5


def outage_timings(tmp_path, postgres_url: str, failures: str) -> list[float]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"  # a fresh schema per run
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'create schema "{schema}"')
    proxy = TcpProxy(urlsplit(postgres_url).port or 5432).start()
    database = postgres_url.replace(f":{urlsplit(postgres_url).port}", f":{proxy.port}")
    env = {"VODHUB_DATABASE_URL": f"{database}?schema={schema}", "VODHUB_DATA_DIR": str(tmp_path / failures),
           "VODHUB_BREAKER_FAILURES": failures, "VODHUB_BREAKER_OPEN_S": "60"}
    timings = []
    try:
        with vodhub_process("api", cwd=tmp_path, env=env) as base_url:
            headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
            proxy.cut()
            for _ in range(REQUESTS):
                started = time.perf_counter()
                response = httpx.get(f"{base_url}/api/users/me", headers=headers, timeout=60)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 503, response.text
    finally:
        proxy.cut()
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'drop schema "{schema}" cascade')
    return timings


def test_outage_cost_with_and_without_the_breaker(tmp_path, postgres_url):
    with_breaker = outage_timings(tmp_path, postgres_url, "3")
    without = outage_timings(tmp_path, postgres_url, "1000000")
    later_with, later_without = statistics.median(with_breaker[1:]), statistics.median(without[1:])
    print(f"\nPostgreSQL cut, GET /api/users/me x{REQUESTS}:"
          f"\n  breaker on:  first {with_breaker[0]:.2f} s, then median {later_with:.3f} s"
          f"\n  breaker off: first {without[0]:.2f} s, then median {later_without:.3f} s"
          f"\n  later requests {later_without / later_with:.0f}x faster with the breaker")
