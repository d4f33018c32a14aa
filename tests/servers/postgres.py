"""PostgreSQL (already running on the machine): one fresh schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from entrypoints.settings import postgres_env

DATABASE_URL = os.environ.get("VODHUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
HOW_TO_START = (
    "PostgreSQL is not reachable at {url} ({error}). Start it with: "
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        with psycopg.connect(DATABASE_URL, connect_timeout=3) as connection:
            connection.execute("select 1")
    except psycopg.OperationalError as error:
        pytest.fail(HOW_TO_START.format(url=DATABASE_URL, error=error), pytrace=False)
    return DATABASE_URL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'create schema "{schema}"')
    yield schema
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'drop schema "{schema}" cascade')


@pytest.fixture
def postgres_eventstore_env(postgres_url: str, postgres_schema: str) -> dict[str, str]:
    """eventsourcing settings for an event store in this test's own schema."""
    return postgres_env(postgres_url, schema=postgres_schema)
