"""Processing as segment tasks: time-to-playable and time-to-ready after the upload returns.

Run with `make bench` (pytest -o python_files='bench_*.py' -s). In one run, for generated
1080p30 H.264/AAC sources of 20 s, 120 s and 600 s (VODHUB_BENCH_SECONDS overrides, e.g.
"20,120"), it prints:
- embedded `vodhub dev` (one in-process worker): time-to-playable and time-to-ready, as ratios
  to the source's duration;
- the one-job reference, a one-chunk plan on the same `vodhub dev` (20 s and 120 s), and the
  ratio of time-to-ready to it (target ≤ 1.05), each the mean of two runs made in the order
  plan, reference, reference, plan;
- one single-threaded worker against two (each pinned to one core, x264 and the decoder on one
  thread per rung) as separate processes on Kafka (Tansu) and PostgreSQL (20 s and 120 s),
  and the ratio of the two (target ≤ 0.6).
Sources are generated once into .bench-cache/ (the 600 s one loops the 120 s one, copying
its packets).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import VODHUB, vodhub_process

CACHE = Path(__file__).resolve().parents[2] / ".bench-cache"
SECONDS = [int(part) for part in os.environ.get("VODHUB_BENCH_SECONDS", "20,120,600").split(",")]
REFERENCE_SECONDS = [s for s in SECONDS if s <= 120]


def source(seconds: int) -> Path:
    """A 1080p30 H.264/AAC test pattern (the ffmpeg CLI only makes the input)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"source-{seconds}s.mp4"
    if path.exists():
        return path
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "make bench installs Debian's ffmpeg to generate the sources"
    if seconds > 120:
        base = source(120)
        loops = -(-seconds // 120) - 1
        subprocess.run([ffmpeg, "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(base), "-t", str(seconds),
                        "-c", "copy", "-movflags", "+faststart", str(path)], check=True)
        return path
    subprocess.run([
        ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", "8M", "-g", "60", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(path),
    ], check=True)
    return path


def sign_in(base_url: str) -> dict[str, str]:
    """A fresh account (the runs of one benchmark share a database); its login, for signing in again."""
    name = f"bench-{uuid.uuid4().hex[:10]}"
    password = "correct horse battery staple"
    registered = httpx.post(f"{base_url}/api/auth/register", timeout=30,
                            json={"username": name, "email": f"{name}@example.com", "password": password})
    assert registered.status_code == 201, registered.text
    return {"username_or_email": name, "password": password}


def bearer(base_url: str, login: dict[str, str]) -> dict[str, str]:
    """Headers with a new access token (they last 15 minutes: a 600 s source outlives one)."""
    response = httpx.post(f"{base_url}/api/auth/login", json=login, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def upload_and_time(base_url: str, path: Path, timeout: float) -> tuple[float, float]:
    """(time-to-playable, time-to-ready) in seconds after the upload returned, as the video's
    status stream tells them (a poll loop's requests would take CPU from the workers)."""
    login = sign_in(base_url)
    with path.open("rb") as file:
        response = httpx.post(f"{base_url}/api/videos/upload", headers=bearer(base_url, login), timeout=600,
                              files={"file": (path.name, file, "video/mp4")})
    assert response.status_code == 202, response.text
    video_id, uploaded = response.json()["id"], time.monotonic()
    playable = None
    while True:  # a stream ends with its access token: open another with a fresh one
        for event, data in status_events(f"{base_url}/api/videos/{video_id}/events", bearer(base_url, login)):
            now = time.monotonic() - uploaded
            assert now < timeout, f"not ready after {timeout} s"
            assert (event, data) != ("status", "failed"), f"video {video_id} failed"
            if playable is None and event == "rendition":
                playable = now
            if (event, data) == ("status", "ready"):
                return playable or now, now


def status_events(url: str, headers: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(event, data) of each Server-Sent Event, until the stream ends."""
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=None)) as stream:
        assert stream.status_code == 200, stream.read()
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                yield event, line.removeprefix("data:").strip()


def dev_run(tmp_path: Path, path: Path, **settings: str) -> tuple[float, float]:
    folder = tmp_path / f"dev-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    env = {"VODHUB_DATA_DIR": str(folder / "data"), "VODHUB_RATE_LIMITS": "off", **settings}
    with vodhub_process("dev", cwd=folder, env=env) as base_url:
        return upload_and_time(base_url, path, timeout=3600)


class PinnedWorker:
    def __init__(self, folder: Path, env: dict[str, str], core: int) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("VODHUB_")} | env
        self.log = (folder / f"worker-{core}.log").open("wb")
        self.process = subprocess.Popen(["taskset", "-c", str(core), VODHUB, "worker"], cwd=folder, env=environment,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def group_run(tmp_path: Path, path: Path, cores: list[int], stack: dict[str, str]) -> float:
    """Time-to-ready with single-threaded workers pinned one per core, as separate processes."""
    folder = tmp_path / f"group-{len(cores)}-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**stack, "VODHUB_DATA_DIR": str(tmp_path / "shared"), "VODHUB_RATE_LIMITS": "off",
           "VODHUB_TOPIC_VIDEO_UPLOADED": f"{prefix}-uploaded", "VODHUB_TOPIC_VIDEO_PROCESSED": f"{prefix}-processed",
           "VODHUB_TOPIC_TRANSCODE_TASKS": f"{prefix}-tasks", "VODHUB_WORKER_GROUP": prefix, "VODHUB_WORKER_THREADS": "1",
           "VODHUB_KAFKA_SESSION_TIMEOUT_MS": "6000"}
    workers: list[PinnedWorker] = []
    try:
        with vodhub_process("api", cwd=folder, env=env) as base_url, \
                vodhub_process("relay", cwd=folder, env=env, health=False):
            workers = [PinnedWorker(folder, env, core) for core in cores]
            time.sleep(8)  # every worker joins the group before the upload
            return upload_and_time(base_url, path, timeout=3600)[1]
    finally:
        for worker in workers:
            worker.stop()


@pytest.fixture
def stack(tmp_path, postgres_url, postgres_schema, kafka_broker) -> dict[str, str]:
    return {"VODHUB_DATABASE_URL": f"{postgres_url}?schema={postgres_schema}",
            "VODHUB_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}


def test_time_to_playable_and_ready(tmp_path, stack):
    rows = []
    for seconds in SECONDS:
        path = source(seconds)
        playable, ready = dev_run(tmp_path, path)
        row = (f"{seconds:>4} s: playable {playable:6.1f} s ({playable / seconds:.2f}x), "
               f"ready {ready:6.1f} s ({ready / seconds:.2f}x)")
        if seconds in REFERENCE_SECONDS:
            # Plan, reference, reference, plan: a machine that drifts during the run weighs on
            # both alike, and each figure is the mean of two runs.
            references = [dev_run(tmp_path, path, VODHUB_CHUNK_SEGMENTS="100000,100000,1")[1] for _ in range(2)]
            again = dev_run(tmp_path, path)[1]
            reference, cut = sum(references) / 2, (ready + again) / 2
            one = group_run(tmp_path, path, [0], stack)
            two = group_run(tmp_path, path, [0, 1], stack)
            row += (f"; one-job reference ready {reference:6.1f} s against {cut:6.1f} s "
                    f"(means of two, runs {ready:.1f}, {references[0]:.1f}, {references[1]:.1f}, {again:.1f} s), "
                    f"ratio {cut / reference:.3f}"
                    f"; single-threaded workers: one {one:6.1f} s, two {two:6.1f} s, ratio {two / one:.2f}")
        print(row, flush=True)
        rows.append(row)
    print("\nvodhub segment tasks, 1080p30 H.264/AAC through 240p-1080p, after the upload returned:")
    print("\n".join(rows))
