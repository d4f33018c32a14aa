"""Nothing stays stuck: automatic retries, take-overs with one outcome per attempt, re-driven
tasks, the sweep that applies them, and what the relay publishes for them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import anyio
import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder

from adapters.outbound.clock import SettableClock
from adapters.outbound.in_memory_catalog import InMemoryVideoCatalog
from adapters.outbound.in_process_bus import InProcessEventBus
from application.integration_events import TranscodeTask, VideoUploaded, decode
from application.projections import CatalogProjection
from application.relay import OutboxRelay
from application.sweep import ABANDONED, ANNOUNCED, GIVEN_UP, RETRIED, TASKS_REDRIVEN, Sweep
from domain.errors import Conflict
from domain.media import Manifests, Rendition, Thumbnails
from domain.transcode_jobs import TranscodeJob, job_id, make_plan
from domain.videos import FAILED, PROCESSED, PROCESSING, UPLOADED, Video
from tests.fixtures.videos import add_video
from tests.unit.test_relay import drain

RUNG_240P = Rendition(name="240p", width=426, height=240, bitrate=400_000)

DELAYS = (timedelta(seconds=60), timedelta(seconds=600), timedelta(seconds=3600))
LEASE = timedelta(seconds=300)
OWNER_ROLES = ("user",)


def a_video() -> Video:
    return Video.upload(uuid.uuid4(), uuid.uuid4(), OWNER_ROLES, title="t", description="", tags=[],
                        visibility="public", source_key="raw/k/original.mp4", source_size=5,
                        source_content_type="video/mp4", source_sha256="ab" * 32)


def a_plan() -> dict:
    frames = [n * 40 for n in range(25 * 20)]  # 20 s at 25 fps: chunks of 2 and 3 segments
    return make_plan(
        time_base=Fraction(1, 1000), frame_pts=frames, keyframe_pts=frames[::50], end_pts=frames[-1] + 40,
        frame_rate=Fraction(25), width=640, height=360, rotation=0, has_audio=False,
        rungs=[{"name": name, "width": 1, "height": 1, "bitrate": 1} for name in ("240p", "360p")],
        chunk_size=3, spread=1,  # as asked, not cut finer for a group of workers
    )


def planned(video: Video) -> TranscodeJob:
    video.start_processing()
    plan_id = uuid.uuid4()
    video.plan_processing(plan_id, duration_s=20.0, width=640, height=360)
    return TranscodeJob.create(video.id, plan_id, video.attempts, a_plan())


def later(video: Video, seconds: float) -> datetime:
    return video.last_progress + timedelta(seconds=seconds)


def events_of(video: Video) -> list[str]:
    return [type(event).__name__ for event in video.collect_events()]


# --- the rules in the aggregates -------------------------------------------------------------


def test_a_retryable_failure_is_retried_after_growing_delays_then_given_up_with_a_reason():
    video = a_video()
    for delay in DELAYS:
        video.start_processing()
        video.record_failure("storage away", retryable=True)
        assert video.retry_automatically(later(video, delay.total_seconds() - 1), DELAYS) is None
        assert video.retry_automatically(later(video, delay.total_seconds() + 1), DELAYS) == "retried"
        assert video.status == UPLOADED
    video.start_processing()
    video.record_failure("storage away", retryable=True)

    assert video.retry_automatically(later(video, 10 * 3600), DELAYS) == "given up"
    assert (video.status, video.retryable) == (FAILED, False)
    assert video.failure_reason == "gave up after 3 automatic retries: storage away"
    assert video.retry_automatically(later(video, 10 * 3600), DELAYS) is None
    assert video.outcomes == {1: FAILED, 2: FAILED, 3: FAILED, 4: FAILED}


def test_a_retryable_failure_is_not_settled_until_its_retries_are_given_up():
    """The chaos suite's flake: it took a video that answered `failed` with a reason for settled
    and counted outcomes; the sweep then retried that retryable failure, and the attempt the
    retry began had no outcome yet when counted."""
    video = a_video()
    video.start_processing()
    video.record_failure("processing kept failing: the database is away", retryable=True)
    assert (video.status, bool(video.failure_reason)) == (FAILED, True)  # what the API shows
    assert not video.settled

    assert video.retry_automatically(later(video, 61), DELAYS) == "retried"
    assert video.start_processing() == 2
    assert (video.outcomes, video.settled) == ({1: FAILED}, False)  # attempt 2 runs: no outcome yet

    for delay in DELAYS[1:]:
        video.record_failure("away", retryable=True)
        assert not video.settled
        video.retry_automatically(later(video, delay.total_seconds() + 1), DELAYS)
        video.start_processing()
    video.record_failure("away", retryable=True)
    assert video.retry_automatically(later(video, 10 * 3600), DELAYS) == "given up"
    assert video.settled and video.outcomes == {1: FAILED, 2: FAILED, 3: FAILED, 4: FAILED}


def test_ready_finally_failed_and_deleted_videos_are_settled():
    ready, failed, deleted = a_video(), a_video(), a_video()
    job = planned(ready)
    ready.record_processed(duration_s=20.0, width=640, height=360, renditions=[RUNG_240P],
                           manifests=Manifests(hls="h", dash="d"), thumbnails=Thumbnails(), plan_id=job.plan_id)
    failed.start_processing()
    failed.record_failure("not a video", retryable=False)
    deleted.start_processing()
    deleted.delete(deleted.owner_id, OWNER_ROLES)
    assert (ready.settled, failed.settled, deleted.settled) == (True, True, True)
    assert not a_video().settled


def test_a_failure_that_can_never_succeed_is_not_retried_automatically():
    video = a_video()
    video.start_processing()
    video.record_failure("not a video", retryable=False)
    assert video.retry_automatically(later(video, 10 * 3600), DELAYS) is None


def test_a_retry_by_hand_starts_the_automatic_retries_count_again():
    video = a_video()
    video.start_processing()
    video.record_failure("away", retryable=True)
    video.retry_automatically(later(video, 61), DELAYS)
    video.start_processing()
    video.record_failure("away", retryable=True)
    video.retry(video.owner_id, OWNER_ROLES)
    video.start_processing()
    video.record_failure("away", retryable=True)

    assert video.retry_automatically(later(video, 61), DELAYS) == "retried"  # the first delay again


def test_a_stalled_attempt_is_taken_over_naming_the_abandoned_attempt():
    video = a_video()
    video.start_processing()
    video.collect_events()

    assert not video.take_over(later(video, 299), LEASE)
    assert video.take_over(later(video, 301), LEASE)

    abandoned = video.collect_events()[-1]
    assert type(abandoned).__name__ == "ProcessingAbandoned"
    assert (abandoned.attempt, abandoned.redrive) == (1, True)
    assert video.status == UPLOADED and video.outcomes == {1: "abandoned"}
    assert video.start_processing() == 2


def test_task_progress_counts_as_progress_of_the_attempt():
    video = a_video()
    planned(video)
    assert video.stalled(later(video, 301), LEASE)
    assert not video.stalled(later(video, 301), LEASE, job_progressed_at=later(video, 100))


def test_a_worker_taking_over_an_unplanned_attempt_records_it_abandoned_first():
    video = a_video()
    video.start_processing()
    video.collect_events()

    assert video.start_processing() == 2
    abandoned, started = video.collect_events()
    assert (type(abandoned).__name__, abandoned.attempt, abandoned.redrive) == ("ProcessingAbandoned", 1, False)
    assert started.attempt == 2 and video.status == PROCESSING


def test_every_attempt_ends_in_exactly_one_outcome():
    video = a_video()
    video.start_processing()
    video.start_processing()  # taken over: 1 abandoned
    video.record_failure("away", retryable=True)  # 2 failed
    video.retry(video.owner_id, OWNER_ROLES)
    job = planned(video)
    video.record_processed(duration_s=20.0, width=640, height=360, renditions=[RUNG_240P],
                           manifests=Manifests(hls="h", dash="d"), thumbnails=Thumbnails(), plan_id=job.plan_id)

    assert video.outcomes == {1: "abandoned", 2: FAILED, 3: PROCESSED}
    with pytest.raises(Conflict):  # a late failure of the finished attempt is refused
        video.record_failure("late", retryable=True)


def test_an_upload_nobody_started_is_announced_again_after_the_lease():
    video = a_video()
    assert video.take_over(later(video, 301), LEASE)
    assert events_of(video)[-1] == "ProcessingRedriven"
    assert video.status == UPLOADED and video.outcomes == {}


def test_a_stalled_plan_publishes_its_missing_tasks_once_per_stall():
    job = planned(a_video())
    job.task_done("low", 0, {"tracks": {}})

    assert job.redrive("stalled", at=datetime.now(UTC)) == ["low:1"]
    assert not job.may_redrive
    with pytest.raises(Conflict):
        job.redrive("again", at=datetime.now(UTC))
    job.task_done("low", 1, {"tracks": {}})
    assert job.may_redrive  # a task was recorded since: the plan moves again
    assert job.redrive("stalled", at=datetime.now(UTC)) == ["high:0", "high:1"]  # playable: the ladder's tasks are out too


def test_a_finished_plan_not_yet_assembled_publishes_its_last_task_again():
    job = planned(a_video())
    for key in job.first_tasks() + job.later_tasks():
        pass_name, chunk = key.split(":")
        job.task_done(pass_name, int(chunk), {"tracks": {}})
    assert job.redrive("stalled", at=datetime.now(UTC)) == ["high:1"]


# --- the sweep, on in-memory adapters ----------------------------------------------------------


class Harness:
    def __init__(self, videos) -> None:
        self.videos = videos
        self.catalog = InMemoryVideoCatalog()
        self.projection = CatalogProjection(self.catalog)
        self.clock = SettableClock(datetime.now(UTC))
        self.metrics = Counting()
        self.sweep = Sweep(videos, self.catalog, self.clock, lease=LEASE, retry_delays=DELAYS, metrics=self.metrics)
        self.position = 0

    def project(self) -> None:
        for notification in self.videos.recorder.select_notifications(start=self.position + 1, limit=1000):
            event = self.videos.mapper.to_domain_event(notification)
            self.projection.process_event(event, Tracking("videos", notification.id))
            self.position = notification.id

    def run(self, after_s: float) -> dict:
        self.clock.advance(after_s)
        self.project()
        done = self.sweep.sweep_once()
        self.project()
        return done


class Counting:
    def __init__(self) -> None:
        self.actions: list[str] = []

    def swept(self, action: str) -> None:
        self.actions.append(action)


@pytest.fixture
def harness(videos):
    return Harness(videos)


def test_the_sweep_retries_failures_when_due_and_counts_what_it_did(videos, harness):
    video = add_video(videos)
    video.start_processing()
    video.record_failure("storage away", retryable=True)
    videos.save(video)

    assert harness.run(after_s=30) == {}
    assert harness.run(after_s=31) == {video.id: RETRIED}
    assert videos.get_aggregate(video.id).status == UPLOADED
    assert harness.catalog.get(video.id).status == UPLOADED
    assert harness.metrics.actions == [RETRIED]


def fail(videos, video_id) -> None:
    video = videos.get_aggregate(video_id)
    video.start_processing()
    video.record_failure("storage away", retryable=True)
    videos.save(video)


def test_the_sweep_gives_up_after_the_last_delay(videos, harness):
    video_id = add_video(videos).id
    for delay in DELAYS:
        fail(videos, video_id)
        assert harness.run(after_s=delay.total_seconds() + 1) == {video_id: RETRIED}
    fail(videos, video_id)

    assert harness.run(after_s=1) == {video_id: GIVEN_UP}
    assert harness.run(after_s=10_000) == {}
    video = videos.get_aggregate(video_id)
    assert harness.catalog.get(video.id).failure_reason.startswith("gave up after 3 automatic retries")


def test_the_sweep_redrives_a_stalled_plan_then_abandons_it_if_nothing_moves(videos, harness):
    video = add_video(videos)
    job = planned(video)
    videos.save(video, job)

    assert harness.run(after_s=100) == {}
    assert harness.run(after_s=250) == {video.id: TASKS_REDRIVEN}
    assert harness.run(after_s=250) == {}  # the re-drive restarted the lease
    assert harness.run(after_s=100) == {video.id: ABANDONED}

    latest = videos.get_aggregate(video.id)
    assert latest.status == UPLOADED and latest.outcomes == {1: "abandoned"}
    assert harness.catalog.get(video.id).status == UPLOADED
    assert harness.run(after_s=301) == {video.id: ANNOUNCED}  # and nobody planned it since


def test_the_sweep_leaves_moving_ready_and_finally_failed_videos_alone(videos, harness):
    moving, ready, doomed = add_video(videos), add_video(videos), add_video(videos)
    videos.save(moving, planned(moving))
    ready_job = planned(ready)
    ready.record_processed(
        duration_s=20.0, width=640, height=360, renditions=[RUNG_240P],
        manifests=Manifests(hls="h", dash="d"), thumbnails=Thumbnails(), plan_id=ready_job.plan_id)
    videos.save(ready, ready_job)
    doomed.start_processing()
    doomed.record_failure("not a video", retryable=False)
    videos.save(doomed)

    assert harness.run(after_s=299) == {}
    assert harness.run(after_s=10_000) == {moving.id: TASKS_REDRIVEN}


# --- what the relay publishes for them ----------------------------------------------------------


def test_the_relay_publishes_redriven_tasks_and_announces_taken_over_videos_again(videos):
    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), bus)
    video = add_video(videos)
    job = planned(video)
    videos.save(video, job)
    anyio.run(relay.relay_once)
    drain(bus, "video-uploaded-events"), drain(bus, "video-transcode-tasks")

    job.redrive("stalled", at=datetime.now(UTC))
    videos.save(job)
    anyio.run(relay.relay_once)
    tasks = [decode(m.value, TranscodeTask) for m in drain(bus, "video-transcode-tasks")]
    assert [t.task for t in tasks] == job.first_tasks() and {t.plan_id for t in tasks} == {str(job.plan_id)}

    video.take_over(later(video, 301), LEASE)
    videos.save(video)
    anyio.run(relay.relay_once)
    announced = [decode(m.value, VideoUploaded) for m in drain(bus, "video-uploaded-events")]
    assert [a.video_id for a in announced] == [str(video.id)]


def test_a_worker_take_over_is_not_announced_again(videos):
    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), bus)
    video = add_video(videos)
    video.start_processing()
    video.start_processing()
    videos.save(video)
    anyio.run(relay.relay_once)
    assert len(drain(bus, "video-uploaded-events")) == 1  # the upload only
    assert job_id(video.id, uuid.uuid4()) != video.id


# --- giving up on a message records the outcome first, or keeps the message -----------------------


class IndexFailsAndTheDatabaseGoes:
    """The source cannot be read, and by the time the failure is to be recorded the event
    store is away too."""

    def __init__(self, videos) -> None:
        self.videos = videos

    def index(self, source, container=None):
        def database_away(*aggregates):
            raise ConnectionError("event store away")

        self.videos.save = database_away
        raise OSError("storage hiccup")


def test_a_final_failure_that_cannot_be_recorded_is_held_not_given_up(videos, tmp_path):
    from adapters.outbound.metrics import InMemoryMetrics
    from application.errors import OutcomeNotRecorded
    from application.processing import VideoProcessor

    video = add_video(videos)
    anyio.run(videos.storage.put_bytes, video.source_key, b"not read")
    processor = VideoProcessor(videos, IndexFailsAndTheDatabaseGoes(videos), videos.storage, InMemoryMetrics(),
                               work_dir=tmp_path)

    with pytest.raises(OutcomeNotRecorded):
        anyio.run(lambda: processor.plan(video.id, final_attempt=True))
    assert videos.get_aggregate(video.id).status == PROCESSING  # for the sweep, or the held message


def test_a_message_whose_outcome_cannot_be_recorded_is_retried_past_its_attempts_not_dead_lettered():
    from adapters.inbound.messaging import IncomingMessage, RetryPolicy, deliver
    from application.errors import OutcomeNotRecorded

    calls: list[tuple[int, bool]] = []

    async def handler(message, *, attempt: int, final_attempt: bool) -> None:
        calls.append((attempt, final_attempt))
        if attempt < 5:
            raise OutcomeNotRecorded("database away")

    bus = InProcessEventBus()
    message = IncomingMessage(topic="video-uploaded-events", partition=0, offset=0, key=b"", value=b"{}")
    dead_lettered = anyio.run(deliver, message, handler, RetryPolicy(2, (0.0,)), bus)

    assert dead_lettered is False
    assert calls == [(1, False), (2, True), (3, True), (4, True), (5, True)]
    assert bus.pending("video-uploaded-events.dlq") == 0
