"""Workers as real processes in one consumer group, with the api, relay and projector, on the
Kafka-protocol broker, SeaweedFS and PostgreSQL: one video's tasks are shared by both workers,
it streams while still processing, and a worker killed mid-task (SIGKILL) costs only that
task: the video still ends ready with exactly one Processed, and no other plan's objects are
touched."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import av
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
        "VODHUB_TOPIC_TRANSCODE_TASKS": f"{kafka_topic_prefix}-tasks",
        "VODHUB_TASK_PARTITIONS": "6",
        "VODHUB_LADDER": "240p,360p",
        "VODHUB_CHUNK_SEGMENTS": "1,2",  # 60 s: 8 chunks, 17 tasks
        "VODHUB_WORKER_THREADS": "1",
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


def video(base_url: str, headers: dict, video_id: str) -> dict:
    return httpx.get(f"{base_url}/api/videos/{video_id}", headers=headers).json()


def object_versions(stack_env: dict[str, str], prefix: str) -> dict[str, tuple]:
    import anyio

    from adapters.outbound.object_storage import S3ObjectStorage

    storage = S3ObjectStorage(stack_env["VODHUB_S3_ENDPOINT"], stack_env["VODHUB_S3_BUCKET"],
                              prefix=stack_env["VODHUB_S3_PREFIX"])

    async def versions() -> dict[str, tuple]:
        keys = await storage.list_keys(prefix)
        return {key: ((info := await storage.head(key)).etag, info.last_modified) for key in keys}

    return anyio.run(versions)


def task_completions(stack_env: dict[str, str], video_id: str) -> list[str]:
    """The key of every TaskDone the video's current job recorded, in order."""
    from domain.transcode_jobs import job_id
    from entrypoints.settings import Settings

    videos = VideosLog(env=Settings.from_env(stack_env).eventstore_env("videos"))
    try:
        plan_id = videos.repository.get(uuid.UUID(video_id)).plan_id
        events = videos.events.get(job_id(uuid.UUID(video_id), plan_id))
        return [event.key for event in events if type(event).__name__ == "TaskDone"]
    finally:
        videos.close()


def _task_lines(worker: Worker, video_id: str) -> list[tuple[str, str]]:
    """(task, outcome) of each line the worker logged about a task of the video; the outcome
    is `starting` when it begins, then `done …` or `skipped: …`."""
    needle = f"video {video_id} task "
    return [(rest.split(" ", 1)[0], rest.split("): ", 1)[1]) for line in worker.text().splitlines()
            if needle in line and "): " in (rest := line.split(needle, 1)[1])]


def _tasks(worker: Worker, video_id: str, what: str) -> list[str]:
    """The tasks of the video this worker logged as `starting`, or as `done` (encoded and recorded)."""
    return [key for key, outcome in _task_lines(worker, video_id)
            if (outcome == "starting" if what == "starting" else outcome.startswith("done "))]


def _running(worker: Worker, video_id: str) -> set[str]:
    """Tasks started more often than they ended."""
    lines = _task_lines(worker, video_id)
    starts = Counter(key for key, outcome in lines if outcome == "starting")
    ends = Counter(key for key, outcome in lines if outcome != "starting")
    return {key for key in starts if starts[key] > ends[key]}


def _worker_mid_task(workers: list[Worker], video_id: str, timeout: float = 60) -> tuple[Worker, str]:
    """A worker in the middle of a task of the video, and that task: one that starts from now
    on (a ladder task takes a second or more), or, if none does for 5 s, one still running."""
    already = [_running(worker, video_id) for worker in workers]
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        patient = time.monotonic() < started + 5
        for worker, old in zip(workers, already, strict=True):
            if running := _running(worker, video_id) - (old if patient else set()):
                return worker, running.pop()
        time.sleep(0.02)
    raise AssertionError("no worker was ever caught in the middle of a task")


def tasks_done(worker: Worker, video_id: str) -> int:
    return len(_tasks(worker, video_id, "done"))


def test_one_video_is_shared_by_the_group_streams_early_and_survives_a_sigkill(tmp_path, stack_env):
    long_clip = write_clip(tmp_path / "long.mp4", width=640, height=360, seconds=60).read_bytes()
    short_clip = write_clip(tmp_path / "short.mp4", width=320, height=180, seconds=2).read_bytes()
    workers: list[Worker] = []
    try:
        with vodhub_process("api", cwd=tmp_path, env=stack_env) as base_url, \
                vodhub_process("relay", cwd=tmp_path, env=stack_env, health=False), \
                vodhub_process("projector", cwd=tmp_path, env=stack_env, health=False):
            headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
            first, second = Worker("worker-1", tmp_path, stack_env), Worker("worker-2", tmp_path, stack_env)
            workers += [first, second]
            tasks_topic = stack_env["VODHUB_TOPIC_TRANSCODE_TASKS"]
            _wait_for_split(first, second, tasks_topic, 6)

            other = upload(base_url, headers, short_clip)  # another video: its plan must stay untouched
            wait_for_status(base_url, headers, other, "ready")
            other_plan = f"processed/{other}/"
            before = object_versions(stack_env, other_plan)
            assert before

            victim = upload(base_url, headers, long_clip)
            deadline = time.monotonic() + 120
            while not (seen := video(base_url, headers, victim))["playable"]:
                assert seen["status"] != "failed" and time.monotonic() < deadline, seen
                time.sleep(0.2)
            assert seen["status"] == "processing" and [r["name"] for r in seen["renditions"]] == ["240p"]
            assert 0 < seen["progress"] < 1
            hls = httpx.get(f"{base_url}/api/videos/stream/{victim}", headers=headers).headers["location"]
            with av.open(base_url + hls, timeout=20) as container:  # plays before it is ready
                frame = next(container.decode(video=0))
                assert (frame.width, frame.height) == (416, 234)
            assert video(base_url, headers, victim)["status"] == "processing"

            victim_worker, killed_task = _worker_mid_task([first, second], victim)
            survivor = second if victim_worker is first else first
            victim_worker.process.send_signal(signal.SIGKILL)  # mid-task: that task is redelivered
            victim_worker.process.wait()
            assert killed_task not in _tasks(victim_worker, victim, "done")
            wait_for_status(base_url, headers, victim, "ready", timeout=240)

            events = processed_events(stack_env, victim)
            assert events.count("Processed") == 1 and events.count("ProcessingPlanned") == 1
            assert tasks_done(victim_worker, victim) >= 1 and tasks_done(survivor, victim) >= 1
            assert killed_task in _tasks(survivor, victim, "starting")  # redelivered to the survivor
            assert sorted(task_completions(stack_env, victim)) == sorted(set(done_by := [
                *_tasks(victim_worker, victim, "done"), *_tasks(survivor, victim, "done")]))
            assert len(done_by) == 17 and killed_task in done_by  # each task encoded and recorded once
            ready = video(base_url, headers, victim)
            assert [r["name"] for r in ready["renditions"]] == ["240p", "360p"] and ready["progress"] == 1.0
            plan_keys = object_versions(stack_env, f"processed/{victim}/")
            plans = {key.split("/")[2] for key in plan_keys}  # processed/{video}/{plan}/…
            assert len(plans) == 1, plans
            assert object_versions(stack_env, other_plan) == before

            shorts = [upload(base_url, headers, short_clip) for _ in range(3)]
            for video_id in shorts:
                wait_for_status(base_url, headers, video_id, "ready")
                assert processed_events(stack_env, video_id).count("Processed") == 1
    finally:
        for worker in workers:
            worker.stop()


def _wait_for_split(first: Worker, second: Worker, topic: str, partitions: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        mine, theirs = _latest_assignment(first, topic), _latest_assignment(second, topic)
        if mine and theirs and set(mine) | set(theirs) == set(range(partitions)) and not set(mine) & set(theirs):
            return
        assert time.monotonic() < deadline, "the two workers never split the partitions"
        time.sleep(0.2)


def _latest_assignment(worker: Worker, topic: str) -> list[int]:
    needle = f"assigned partitions of {topic} ["
    lines = [line for line in worker.text().splitlines() if needle in line]
    if not lines:
        return []
    inside = lines[-1].rsplit("[", 1)[1].rstrip("]")
    return [int(part) for part in inside.split(",") if part.strip()]
