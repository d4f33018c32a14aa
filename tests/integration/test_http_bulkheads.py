"""Bulkheads over HTTP: a burst of password hashing is refused at once past its queue, and the
probes and metrics keep answering even when anyio's shared thread pool is taken."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import pytest
from anyio import to_thread
from litestar.testing import TestClient

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from entrypoints.api import build_api
from entrypoints.bootstrap import Vodhub, bootstrap
from entrypoints.settings import Settings
from tests.fixtures.api import PASSWORD, register
from tests.integration.test_http_accounts import assert_problem

WAIT_S = 60.0  # generous: the machine is shared


class GatedHasher:
    """Argon2 that, while the gate is closed, holds every verification until it opens."""

    def __init__(self) -> None:
        self._argon2 = Argon2PasswordHasher.fast_for_tests()
        self.gate = threading.Event()
        self.gate.set()
        self.inside = threading.Semaphore(0)  # released once per verification that started

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.inside.release()
        assert self.gate.wait(WAIT_S)
        return self._argon2.verify(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.needs_rehash(password_hash)


@pytest.fixture
def hasher() -> GatedHasher:
    return GatedHasher()


@pytest.fixture
def vodhub(tmp_path, clock, hasher) -> Iterator[Vodhub]:
    settings = Settings(data_dir=tmp_path / "var", hashing_capacity=1, hashing_queue=1)
    app = bootstrap(settings, clock=clock, hasher=hasher)
    yield app
    app.close()


@pytest.fixture
def client(vodhub) -> Iterator[TestClient]:
    with TestClient(build_api(vodhub)) as test_client:
        yield test_client


def _login(client: TestClient, results: list) -> None:
    results.append(client.post("/api/auth/login", json={"username_or_email": "alice", "password": PASSWORD}))


def test_a_full_hashing_queue_answers_503_at_once_while_probes_and_metrics_answer(client, vodhub, hasher):
    register(client, "alice")
    hasher.gate.clear()
    results: list = []
    held = [threading.Thread(target=_login, args=(client, results)) for _ in range(2)]
    held[0].start()
    assert hasher.inside.acquire(timeout=WAIT_S)  # the one place is taken ...
    held[1].start()  # ... and this one waits in the queue of one
    _wait_until(lambda: vodhub.bulkheads.hashing.waiting == 1)

    # Other work has taken every thread of anyio's shared pool, as a burst of requests would.
    release = threading.Event()
    starve = client.blocking_portal.start_task_soon(_take_default_threads, release)
    try:
        refused: list = []
        third = threading.Thread(target=_login, args=(client, refused))
        third.start()
        third.join(WAIT_S)
        assert refused, "the third login waited instead of being refused"
        assert assert_problem(refused[0], 503)["bulkhead"] == "password hashing"
        assert refused[0].headers["retry-after"].isdigit()

        assert client.get("/health/live").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["breakers"] == {"postgresql": "closed", "s3": "closed", "kafka": "closed",
                                            "redis": "closed"}
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert 'vodhub_bulkhead_rejected_total{bulkhead="password hashing"}' in metrics.text
    finally:
        release.set()
        hasher.gate.set()
    starve.result(WAIT_S)
    for thread in held:
        thread.join(WAIT_S)
    assert [response.status_code for response in results] == [200, 200]  # the admitted ones finish


def _wait_until(condition) -> None:
    for _ in range(int(WAIT_S * 20)):
        if condition():
            return
        threading.Event().wait(0.05)
    raise AssertionError("never happened")


async def _take_default_threads(release: threading.Event) -> None:
    limiter = to_thread.current_default_thread_limiter()
    async with anyio.create_task_group() as group:
        for _ in range(int(limiter.total_tokens)):
            group.start_soon(to_thread.run_sync, release.wait, WAIT_S)
