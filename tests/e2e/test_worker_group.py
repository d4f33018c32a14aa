"""Workers as real processes in one consumer group, on the Kafka-protocol broker, SeaweedFS
and PostgreSQL: they share the partitions, and a worker killed mid-transcode (SIGKILL) has
its video finished by the other with exactly one Processed event."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from entrypoints.projector import VideosLog
from tests.e2e.test_accounts_walkthrough import walk_through
from tests.fixtures.processes import VODHUB, vodhub_process
from tests.media_factory import write_clip


@pytest.fixture
def stack_env(tmp_path, postgres_url, postgres_schema, s3_server, s3_bucket, kafka_broker, kafka_topic_prefix):
    return {
        "VODHUB_DATABASE_URL": f"{postgres_url}?schema={postgres_schema}",
        "VODHUB_S3_ENDPOINT": s3_server.endpoint, "VODHUB_S3_BUCKET": s3_bucket,
        "VODHUB_S3_PREFIX": f"workers-{uuid.uuid4().hex[:8]}",
        "VODHUB_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "VODHUB_TOPIC_VIDEO_UPLOADED": f"{kafka_topic_prefix}-uploaded",
        "VODHUB_TOPIC_VIDEO_PROCESSED": f"{kafka_topic_prefix}-processed",
        "VODHUB_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "VODHUB_DATA_DIR": str(tmp_path / "data"),
    }


class Worker:
    def __init__(self, name: str, cwd: Path, env: dict[str, str]) -> None:
        self.log = cwd / f"{name}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("VODHUB_")} | env
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([VODHUB, "worker"], cwd=cwd, env=environment, stdout=out,
                                            stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.process.poll() is None, self.text()[-2000:]
            assert time.monotonic() < deadline, f"never saw {needle!r}: {self.text()[-2000:]}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def upload(base_url: str, headers: dict, clip: bytes) -> str:
    response = httpx.post(f"{base_url}/api/videos/upload", headers=headers, timeout=60,
                          files={"file": ("clip.mp4", clip, "video/mp4")})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def status(base_url: str, headers: dict, video_id: str) -> str:
    return httpx.get(f"{base_url}/api/videos/{video_id}", headers=headers).json()["status"]


def wait_for_status(base_url, headers, video_id, wanted, timeout=120.0, poll=0.5) -> None:
    deadline = time.monotonic() + timeout
    while (current := status(base_url, headers, video_id)) != wanted:
        assert current != "failed", current
        assert time.monotonic() < deadline, f"{video_id} stayed {current}"
        time.sleep(poll)


def processed_events(stack_env: dict[str, str], video_id: str) -> list[str]:
    from entrypoints.settings import Settings

    videos = VideosLog(env=Settings.from_env(stack_env).eventstore_env("videos"))
    try:
        return [type(event).__name__ for event in videos.events.get(uuid.UUID(video_id))]
    finally:
        videos.close()


def test_two_workers_share_the_partitions_and_survive_a_sigkill(tmp_path, stack_env):
    long_clip = write_clip(tmp_path / "long.mp4", width=1280, height=720, seconds=10).read_bytes()
    short_clip = write_clip(tmp_path / "short.mp4", width=160, height=90, seconds=1).read_bytes()
    workers: list[Worker] = []
    try:
        with vodhub_process("api", cwd=tmp_path, env=stack_env) as base_url, \
                vodhub_process("relay", cwd=tmp_path, env=stack_env, health=False):
            headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
            first = Worker("worker-1", tmp_path, stack_env)
            workers.append(first)
            first.wait_for("assigned partitions [0, 1, 2]")

            victim = upload(base_url, headers, long_clip)
            wait_for_status(base_url, headers, victim, "processing", poll=0.1)
            second = Worker("worker-2", tmp_path, stack_env)
            workers.append(second)
            time.sleep(0.5)
            first.process.send_signal(signal.SIGKILL)  # mid-transcode: nothing recorded, nothing committed
            first.process.wait()
            wait_for_status(base_url, headers, victim, "ready", timeout=180)
            assert processed_events(stack_env, victim) == ["Uploaded", "ProcessingStarted", "ProcessingStarted",
                                                           "Processed"]

            third = Worker("worker-3", tmp_path, stack_env)
            workers.append(third)
            for worker in (second, third):
                worker.wait_for("assigned partitions [", timeout=30)
            deadline = time.monotonic() + 30
            while not (_latest_assignment(second) and _latest_assignment(third)):
                assert time.monotonic() < deadline, "the two workers never split the partitions"
                time.sleep(0.2)
            assert set(_latest_assignment(second)) | set(_latest_assignment(third)) == {0, 1, 2}
            shorts = [upload(base_url, headers, short_clip) for _ in range(6)]
            for video_id in shorts:
                wait_for_status(base_url, headers, video_id, "ready")
            for video_id in shorts:
                assert processed_events(stack_env, video_id).count("Processed") == 1
    finally:
        for worker in workers:
            worker.stop()


def _latest_assignment(worker: Worker) -> list[int]:
    lines = [line for line in worker.text().splitlines() if "assigned partitions [" in line]
    if not lines:
        return []
    inside = lines[-1].rsplit("[", 1)[1].rstrip("]")
    return [int(part) for part in inside.split(",") if part.strip()]
