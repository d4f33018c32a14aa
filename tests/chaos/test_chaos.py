"""Chaos: the whole stack as real processes (api ×2, worker ×2, relay, projector, analytics,
notifier) on PostgreSQL, Redis, Tansu and SeaweedFS, on loopback. A mixed workload runs
(multipart and tus uploads, edits, deletes, plays, views, logins) while a random process is
SIGKILLed and restarted every few seconds and PostgreSQL or Redis is cut for a few seconds.
Then everything settles, and the invariants are checked:

- every upload that got 202 is `ready` or `failed` with a reason, and every attempt at it
  ended in exactly one outcome (processed, failed, abandoned);
- no upload left a video or an object behind unless it was accepted, or its answer was lost
  with a killed api (the work may have been recorded just before);
- the read model equals a fresh projection of the event store;
- no object of a deleted video remains;
- no answer was a 5xx other than 503.

CHAOS_SECONDS sets how long the chaos lasts: `make test` runs it briefly, `make chaos` for
15 minutes. The figure line reports operations, kills, outages and violations (must be 0)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from tests.fixtures.processes import VODHUB, free_port
from tests.fixtures.tcp_proxy import TcpProxy
from tests.media_factory import write_clip

CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", "30"))
SETTLE_S = 300.0 + CHAOS_SECONDS  # the backlog the chaos left grows with it
PASSWORD = "correct horse battery staple"
PROCESSES = ("api", "api", "worker", "worker", "relay", "projector", "analytics", "notifier")


class Supervised:
    """One process of the stack, which the chaos kills and restarts."""

    def __init__(self, name: str, command: str, cwd: Path, env: dict[str, str], port: int | None = None) -> None:
        self.name, self.command, self.cwd, self.port = name, command, cwd, port
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VODHUB_")} | env
        if port is not None:
            self.env["VODHUB_PORT"] = str(port)
        self.process: subprocess.Popen | None = None
        logs = Path(os.environ.get("CHAOS_LOG_DIR", cwd))  # kept where asked: pytest's temp dirs rotate
        logs.mkdir(parents=True, exist_ok=True)
        self.log = (logs / f"{name}.log").open("ab")

    def start(self) -> None:
        self.process = subprocess.Popen([VODHUB, self.command], cwd=self.cwd, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@dataclass
class Figures:
    operations: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    kills: int = 0
    outages: int = 0
    unanswered: int = 0
    accepted: dict[str, str] = field(default_factory=dict)  # video id -> how it was uploaded
    deleted: set[str] = field(default_factory=set)
    lost_uploads: int = 0  # uploads whose answer never came (the api died): they may have landed
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, response: httpx.Response, what: str) -> httpx.Response:
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500 and response.status_code != 503:
                self.violations.append(f"{what} answered {response.status_code}: {response.text[:300]}")
        return response


class Workload:
    def __init__(self, apis: list[str], clip: bytes, figures: Figures) -> None:
        self.apis, self.clip, self.figures = apis, clip, figures
        self.http = httpx.Client(timeout=30)
        self.headers: dict[str, str] = {}
        self.ready: list[str] = []

    def call(self, method: str, path: str, what: str, **options) -> httpx.Response | None:
        try:
            response = self.http.request(method, random.choice(self.apis) + path, **options)
        except httpx.TransportError:
            with self.figures.lock:
                self.figures.unanswered += 1
            time.sleep(0.2)  # that api is down: no busy loop while it restarts
            return None
        return self.figures.answered(response, what)

    def sign_in(self) -> bool:
        for _ in range(3):
            response = self.call("POST", "/api/auth/login", "login",
                                 json={"username_or_email": "chaos", "password": PASSWORD})
            if response is not None and response.status_code == 200:
                self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
                return True
        return False

    def step(self) -> None:
        operation = random.choices(
            ["multipart", "tus", "edit", "delete", "play", "view", "login"], weights=[4, 3, 2, 1, 2, 1, 1])[0]
        self.figures.operations[operation] += 1
        getattr(self, operation)()

    def multipart(self) -> None:
        try:
            response = self.http.post(random.choice(self.apis) + "/api/videos/upload", headers=self.headers,
                                      files={"file": ("clip.mp4", self.clip, "video/mp4")}, data={"title": "chaos"})
        except httpx.TransportError:
            with self.figures.lock:
                self.figures.unanswered += 1
                self.figures.lost_uploads += 1
            time.sleep(0.2)
            return
        self.figures.answered(response, "multipart upload")
        if response.status_code == 202:
            self.figures.accepted[response.json()["id"]] = "multipart"

    def tus(self) -> None:
        tus = {"Tus-Resumable": "1.0.0"}
        created = self.call("POST", "/api/videos/uploads", "tus create", headers=self.headers | tus | {
            "Upload-Length": str(len(self.clip)), "Upload-Metadata": "title Y2hhb3M=,filename Y2xpcC5tcDQ="})
        if created is None or created.status_code != 201:
            return
        location = urlsplit(created.headers["location"]).path
        half = len(self.clip) // 2
        for _ in range(6):  # resume, as a tus client does, until the answer names the video
            head = self.call("HEAD", location, "tus head", headers=self.headers | tus)
            if head is None or head.status_code != 200:
                time.sleep(0.5)
                continue
            if head.headers.get("vodhub-video-id"):
                self.figures.accepted[head.headers["vodhub-video-id"]] = "tus"
                return
            offset = int(head.headers["upload-offset"])
            piece = self.clip[offset:half] if offset < half else self.clip[offset:]
            patched = self.call("PATCH", location, "tus patch", content=piece, headers=self.headers | tus | {
                "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
            if patched is not None and patched.headers.get("vodhub-video-id"):
                self.figures.accepted[patched.headers["vodhub-video-id"]] = "tus"
                return
        with self.figures.lock:
            self.figures.lost_uploads += 1  # given up on: its completion may still have landed

    def _some_video(self) -> str | None:
        alive = [video for video in self.figures.accepted if video not in self.figures.deleted]
        return random.choice(alive) if alive else None

    def edit(self) -> None:
        if video := self._some_video():
            self.call("PATCH", f"/api/videos/{video}", "edit", headers=self.headers,
                      json={"title": f"chaos {random.randrange(1000)}"})

    def delete(self) -> None:
        if video := self._some_video():
            response = self.call("DELETE", f"/api/videos/{video}", "delete", headers=self.headers)
            if response is not None and response.status_code in (204, 404):
                self.figures.deleted.add(video)

    def play(self) -> None:
        if video := self._some_video():
            self.call("GET", f"/api/videos/stream/{video}", "play", headers=self.headers)

    def view(self) -> None:
        if video := self._some_video():
            self.call("POST", f"/api/videos/{video}/views", "view", headers=self.headers)

    def login(self) -> None:
        self.sign_in()


def chaos(stack: list[Supervised], proxies: dict[str, TcpProxy], figures: Figures, until: float) -> None:
    next_outage = time.monotonic() + 8
    while time.monotonic() < until:
        time.sleep(random.uniform(2, 5))
        for process in stack:  # like an orchestrator: what exited is started again
            process.ensure_running()
        victim = random.choice(stack)
        victim.kill()
        figures.kills += 1
        time.sleep(0.5)
        victim.start()
        if time.monotonic() >= next_outage:
            name = random.choice(list(proxies))
            proxies[name].cut()
            figures.outages += 1
            time.sleep(random.uniform(2, 4))
            proxies[name].restore()
            next_outage = time.monotonic() + random.uniform(10, 20)


def wait_until(condition, timeout: float, poll: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()


@pytest.fixture
def stack_env(tmp_path, postgres_url, postgres_schema, redis_url, redis_prefix, s3_server, s3_bucket, kafka_broker,
              kafka_topic_prefix):
    postgres = TcpProxy(urlsplit(postgres_url).port or 5432).start()
    redis = TcpProxy(urlsplit(redis_url).port or 6379).start()
    database = postgres_url.replace(f":{urlsplit(postgres_url).port}", f":{postgres.port}")
    env = {
        "VODHUB_DATABASE_URL": f"{database}?schema={postgres_schema}",
        "VODHUB_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", "VODHUB_REDIS_PREFIX": redis_prefix,
        "VODHUB_S3_ENDPOINT": s3_server.endpoint, "VODHUB_S3_BUCKET": s3_bucket,
        "VODHUB_S3_PREFIX": f"chaos-{uuid.uuid4().hex[:8]}",
        "VODHUB_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "VODHUB_TOPIC_VIDEO_UPLOADED": f"{kafka_topic_prefix}-uploaded",
        "VODHUB_TOPIC_VIDEO_PROCESSED": f"{kafka_topic_prefix}-processed",
        "VODHUB_TOPIC_TRANSCODE_TASKS": f"{kafka_topic_prefix}-tasks",
        "VODHUB_TOPIC_VIDEO_VIEWED": f"{kafka_topic_prefix}-viewed",
        "VODHUB_TOPIC_PARTITIONS": "2", "VODHUB_TASK_PARTITIONS": "4",
        "VODHUB_LADDER": "240p", "VODHUB_CHUNK_SEGMENTS": "1,1", "VODHUB_WORKER_THREADS": "1",
        "VODHUB_KAFKA_SESSION_TIMEOUT_MS": "3000", "VODHUB_WORKER_MAX_ATTEMPTS": "3", "VODHUB_WORKER_BACKOFF_S": "0.5",
        "VODHUB_PROCESSING_LEASE_S": "20", "VODHUB_RETRY_DELAYS_S": "2,4,8", "VODHUB_SWEEP_INTERVAL_S": "2",
        "VODHUB_SHUTDOWN_GRACE_S": "2", "VODHUB_RATE_LIMITS": "off",
        # Eight processes, each with a pool per event store, tracking table and read model, share
        # the server's connections with whatever else runs: a pool holds them only while used.
        "VODHUB_POSTGRES_POOL_SIZE": "0", "VODHUB_POSTGRES_MAX_OVERFLOW": "2", "VODHUB_POSTGRES_MAX_IDLE_S": "10",
        "VODHUB_PASSWORD_TIME_COST": "1", "VODHUB_PASSWORD_MEMORY_COST": "8192",
        "VODHUB_DATA_DIR": str(tmp_path / "data"),
    }
    direct = env | {"VODHUB_DATABASE_URL": f"{postgres_url}?schema={postgres_schema}"}
    try:
        yield env, direct, {"postgresql": postgres, "redis": redis}
    finally:
        postgres.cut()
        redis.cut()


def test_the_stack_survives_kills_and_outages_with_nothing_stuck_lost_or_duplicated(tmp_path, stack_env):
    env, direct, proxies = stack_env
    clip = write_clip(tmp_path / "clip.mp4", width=320, height=180, seconds=3).read_bytes()
    figures = Figures()
    api_ports = [free_port(), free_port()]
    stack = [Supervised(f"{command}-{n}", command, tmp_path, env, port=api_ports[n] if command == "api" else None)
             for n, command in enumerate(PROCESSES)]
    apis = [f"http://127.0.0.1:{port}" for port in api_ports]
    try:
        stack[0].start()  # the first api makes the shared keys in the data dir
        assert wait_until(lambda: supervised(stack[:1]) and answers(apis[0]), 300), "the first api never answered"
        stack[1].start()
        assert wait_until(lambda: supervised(stack[:2]) and answers(apis[1]), 300), "the second api never answered"
        for process in stack[2:]:
            process.start()
        httpx.post(f"{apis[0]}/api/auth/register", timeout=30,
                   json={"username": "chaos", "email": "chaos@example.com", "password": PASSWORD}).raise_for_status()
        workload = Workload(apis, clip, figures)
        assert workload.sign_in()

        until = time.monotonic() + CHAOS_SECONDS
        chaos_thread = threading.Thread(target=chaos, args=(stack, proxies, figures, until), daemon=True)
        chaos_thread.start()
        started = time.monotonic()
        while time.monotonic() < until:
            if time.monotonic() - started > 600:  # tokens last 15 minutes
                workload.sign_in()
                started = time.monotonic()
            workload.step()
        chaos_thread.join()

        # --- settle (the chaos thread restored what it cut) -------------------------------------
        assert wait_until(lambda: supervised(stack) and all(answers(api) for api in apis), 300)
        assert wait_until(workload.sign_in, 120, poll=2), "nobody could sign in after the chaos"  # a breaker may still be open
        check(figures, workload, direct)
    finally:
        for process in stack:
            process.stop()
        print(f"\nchaos: {CHAOS_SECONDS:.0f} s, operations={sum(figures.operations.values())} "
              f"({dict(figures.operations)}), kills={figures.kills}, outages={figures.outages}, "
              f"unanswered={figures.unanswered}, accepted={len(figures.accepted)}, deleted={len(figures.deleted)}, "
              f"violations={len(figures.violations)}")
    assert figures.violations == [], "\n".join(figures.violations[:20])


def supervised(stack: list[Supervised]) -> bool:
    for process in stack:
        process.ensure_running()
    return True


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health/live", timeout=3).status_code == 200
    except httpx.TransportError:
        return False


# --- the invariants ------------------------------------------------------------------------------


def check(figures: Figures, workload: Workload, env: dict[str, str]) -> None:
    from entrypoints.projector import VideosLog
    from entrypoints.settings import Settings

    settings = Settings.from_env(env)
    videos = VideosLog(env=settings.eventstore_env("videos"))
    try:
        settled(figures, workload, videos)
        check_outcomes(figures, videos)
        check_nothing_left_behind(figures, videos, settings)
        check_read_model(figures, videos, settings)
    finally:
        videos.close()


def settled(figures: Figures, workload: Workload, videos) -> None:
    """Wait until every accepted upload is ready, or failed with a reason for good. A retryable
    failure is not settled: the sweep retries it, and the attempt that retry begins would still
    be running when the outcomes are counted. The API does not tell them apart, the event store does."""
    pending = {video for video in figures.accepted if video not in figures.deleted}

    def for_good(video: str) -> bool:
        try:
            return videos.repository.get(uuid.UUID(video)).settled
        except Exception:  # the shared server is busy: look again
            return False

    def all_settled() -> bool:
        for video in list(pending):
            response = workload.call("GET", f"/api/videos/{video}", "status", headers=workload.headers)
            if response is None:
                return False
            if response.status_code == 404:  # deleted by a DELETE whose answer was lost
                figures.deleted.add(video)
                pending.discard(video)
                continue
            body = response.json() if response.status_code == 200 else {}
            if body.get("status") == "ready" or (
                    body.get("status") == "failed" and body.get("failure_reason") and for_good(video)):
                pending.discard(video)
        return not pending

    if not wait_until(all_settled, SETTLE_S, poll=2):
        figures.violations += [f"video {video} never settled (ready, or failed with a reason)" for video in pending]


def events_by_video(videos) -> dict:
    from domain.videos import Video

    by_video: dict = {}
    for notification in videos.recorder.select_notifications(start=1, limit=10**6):
        event = videos.mapper.to_domain_event(notification)
        if isinstance(event, Video.Event):
            by_video.setdefault(str(event.originator_id), []).append(event)
    return by_video


def check_outcomes(figures: Figures, videos) -> None:
    """Every started attempt ended in exactly one of processed, failed, abandoned."""
    for video_id, events in events_by_video(videos).items():
        started, outcomes, current = [], Counter(), 0
        for event in events:
            name = type(event).__name__
            if name == "ProcessingStarted":
                started.append(event.attempt)
                current = event.attempt
            elif name in ("ProcessingFailed", "ProcessingAbandoned"):
                outcomes[event.attempt] += 1
            elif name == "Processed":
                outcomes[current] += 1
        deleted = any(type(event).__name__ == "Deleted" for event in events)
        history = ", ".join(describe(event) for event in events)
        for attempt in started:
            if outcomes[attempt] > 1 or (outcomes[attempt] == 0 and not deleted and attempt != current):
                figures.violations.append(f"video {video_id}: attempt {attempt} has {outcomes[attempt]} outcomes "
                                          f"({history})")
        if not deleted and started and outcomes[current] != 1:
            figures.violations.append(f"video {video_id}: its last attempt {current} has {outcomes[current]} outcomes "
                                      f"({history})")


def describe(event) -> str:
    """An event in a violation's history: its name, attempt, and when."""
    attempt = getattr(event, "attempt", getattr(event, "after_attempt", None))
    return (f"{type(event).__name__}{'' if attempt is None else f'#{attempt}'}"
            f"@{event.timestamp:%H:%M:%S.%f}"[:-3])


def check_nothing_left_behind(figures: Figures, videos, settings) -> None:
    from adapters.outbound.object_storage import S3ObjectStorage

    storage = S3ObjectStorage(settings.s3_endpoint, settings.s3_bucket, prefix=settings.s3_prefix)
    recorded = set(events_by_video(videos))
    unexplained = recorded - set(figures.accepted)
    if len(unexplained) > figures.lost_uploads:
        figures.violations.append(f"{len(unexplained)} videos recorded for uploads that were refused: {sorted(unexplained)[:5]}")
    raw_owners = {key.split("/")[1] for key in anyio.run(storage.list_keys, "raw/")}
    orphans = raw_owners - recorded
    if len(orphans) > figures.lost_uploads:
        figures.violations.append(f"{len(orphans)} uploaded files belong to no video: {sorted(orphans)[:5]}")

    def deleted_objects() -> list[str]:
        return [key for video in figures.deleted for prefix in ("raw", "processed", "thumbnails")
                for key in anyio.run(storage.list_keys, f"{prefix}/{video}/")]

    if not wait_until(lambda: not deleted_objects(), 120, poll=2):
        figures.violations.append(f"objects of deleted videos remain: {deleted_objects()[:5]}")


def check_read_model(figures: Figures, videos, settings) -> None:
    from eventsourcing.persistence import Tracking
    from sqlalchemy.exc import OperationalError

    from adapters.outbound.in_memory_catalog import InMemoryVideoCatalog
    from adapters.outbound.sql_catalog import SqlCatalog
    from application.errors import Unavailable
    from application.projections import CatalogProjection

    catalog = SqlCatalog(settings.database_url)

    def differences() -> list[str]:
        fresh = InMemoryVideoCatalog()
        projection = CatalogProjection(fresh)
        for notification in videos.recorder.select_notifications(start=1, limit=10**6):
            projection.process_event(videos.mapper.to_domain_event(notification), Tracking("videos", notification.id))
        found = []
        try:
            for video_id in events_by_video(videos):
                expected, actual = fresh.get(uuid.UUID(video_id)), catalog.get(uuid.UUID(video_id))
                if summary(expected) != summary(actual):
                    found.append(f"{video_id}: read model {summary(actual)} != fresh projection {summary(expected)}")
        except (OperationalError, Unavailable) as error:  # the shared server is full: look again
            found.append(f"the read model could not be read: {error}")
        return found

    try:
        if not wait_until(lambda: not differences(), 180, poll=3):
            figures.violations += differences()[:20]
    finally:
        catalog.close()


def summary(video) -> tuple | None:
    if video is None:
        return None
    return (video.status, video.title, video.visibility, video.failure_reason,
            sorted(rendition.name for rendition in video.renditions))
