"""SIGTERM to real processes: the api stops accepting but finishes an upload in flight; a
worker abandons its task uncommitted and leaves the group, so another worker gets the task
and the video still ends ready with one Processed; the relay stops after its batch."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_accounts_walkthrough import walk_through
from tests.e2e.test_worker_group import processed_events, stack_env, upload, wait_for_status  # noqa: F401
from tests.fixtures.processes import VODHUB, free_port, vodhub_process
from tests.media_factory import write_clip

PASSWORD = "correct horse battery staple"


class Process:
    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.log = cwd / f"{command}-{uuid.uuid4().hex[:6]}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("VODHUB_")} | env
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([VODHUB, command], cwd=cwd, env=environment, stdout=out,
                                            stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate_and_wait(self, timeout: float = 90) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health/live", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def refuses_connections(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/health/live", timeout=2)
        return False
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False


@pytest.fixture
def api(tmp_path, request) -> Iterator[tuple[Process, str]]:
    port = free_port()
    process = Process("api", tmp_path, {"VODHUB_DATA_DIR": str(tmp_path / "data"), "VODHUB_PORT": str(port),
                                        "VODHUB_SHUTDOWN_GRACE_S": str(request.param)})
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base_url) or process.process.poll() is not None, "the api never answered")
        assert process.process.poll() is None, process.text()[-2000:]
        yield process, base_url
    finally:
        process.kill()


# uvicorn re-raises the signal once it shut down gracefully
EXITED_AFTER_SIGTERM = (0, -signal.SIGTERM)


class Upload:
    """A multipart upload whose second half is sent only when told."""

    def __init__(self, base_url: str, tmp_path: Path) -> None:
        httpx.post(f"{base_url}/api/auth/register", json={"username": "alice", "email": "a@example.com",
                                                           "password": PASSWORD}).raise_for_status()
        self.tokens = httpx.post(f"{base_url}/api/auth/login",
                                 json={"username_or_email": "alice", "password": PASSWORD}).json()
        self.base_url = base_url
        self.clip = write_clip(tmp_path / "clip.mp4").read_bytes()
        self.half_sent, self.go_on = threading.Event(), threading.Event()
        self.result: dict = {}
        self.sender = threading.Thread(target=self._send, daemon=True)
        self.sender.start()
        assert self.half_sent.wait(60)
        time.sleep(0.5)  # the first half is on the wire, and in the server's hands

    def _send(self) -> None:
        boundary = uuid.uuid4().hex
        body, tail = multipart(self.clip, boundary)

        def paced() -> Iterator[bytes]:
            yield body[: len(body) // 2]
            self.half_sent.set()
            self.go_on.wait(120)
            yield body[len(body) // 2:]
            yield tail

        try:
            self.result["response"] = httpx.post(
                f"{self.base_url}/api/videos/upload", content=paced(), timeout=120,
                headers={"Authorization": f"Bearer {self.tokens['access_token']}",
                         "Content-Length": str(len(body) + len(tail)),
                         "Content-Type": f"multipart/form-data; boundary={boundary}"})
        except Exception as error:  # reported by the assertions
            self.result["error"] = error

    def finish(self) -> None:
        self.go_on.set()
        self.sender.join(120)


def multipart(clip: bytes, boundary: str) -> tuple[bytes, bytes]:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nGraceful\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    return head + clip, f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize("api", [60], indirect=True)
def test_the_api_finishes_an_upload_in_flight_after_sigterm_and_refuses_new_connections(api, tmp_path):
    process, base_url = api
    upload = Upload(base_url, tmp_path)
    process.process.send_signal(signal.SIGTERM)

    wait_until(lambda: refuses_connections(base_url), "the api kept accepting connections after SIGTERM")
    assert process.process.poll() is None  # still finishing the upload
    upload.finish()

    assert "error" not in upload.result, upload.result.get("error")
    assert upload.result["response"].status_code == 202, upload.result["response"].text
    assert process.process.wait(60) in EXITED_AFTER_SIGTERM
    assert "Finished server process" in process.text()
    assert len(list((tmp_path / "data").glob("objects/raw/*/*"))) == 1


@pytest.mark.parametrize("api", [1], indirect=True)
def test_the_api_exits_after_the_grace_period_and_an_unfinished_upload_leaves_nothing(api, tmp_path):
    process, base_url = api
    upload = Upload(base_url, tmp_path)
    process.process.send_signal(signal.SIGTERM)

    assert process.process.wait(60) in EXITED_AFTER_SIGTERM  # without waiting for the upload
    upload.finish()
    assert "response" not in upload.result or upload.result["response"].status_code >= 500
    assert not list((tmp_path / "data").glob("objects/raw/*/*"))  # the half-received file was removed


def test_a_worker_stopped_mid_task_hands_it_over_and_the_relay_stops_after_its_batch(tmp_path, stack_env):  # noqa: F811
    clip = write_clip(tmp_path / "clip.mp4", width=640, height=360, seconds=20).read_bytes()
    env = stack_env | {"VODHUB_SHUTDOWN_GRACE_S": "1"}
    relay = Process("relay", tmp_path, env)
    first = Process("worker", tmp_path, env)
    second = None
    try:
        with vodhub_process("api", cwd=tmp_path, env=env) as base_url:
            headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
            video_id = upload(base_url, headers, clip)
            wait_until(lambda: f"video {video_id} task" in first.text() and "starting" in first.text(),
                       f"the worker never started a task: {first.text()[-2000:]}", timeout=180)

            assert first.terminate_and_wait() == 0, first.text()[-2000:]
            assert "worker: stopped" in first.text() or "exiting with an abandoned task" in first.text()

            second = Process("worker", tmp_path, env)
            wait_for_status(base_url, headers, video_id, "ready", timeout=300)
            assert processed_events(stack_env, video_id).count("Processed") == 1

            assert relay.terminate_and_wait() == 0, relay.text()[-2000:]
            assert "relay: stopped" in relay.text()
    finally:
        for process in (relay, first, second):
            if process is not None:
                process.kill()
