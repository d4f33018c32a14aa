"""The outbox relay on POPO and the in-process bus: what it publishes and when it moves on."""

from __future__ import annotations

import uuid

import anyio
import pytest
from eventsourcing.popo import POPOTrackingRecorder

from adapters.outbound.in_process_bus import InProcessEventBus
from application.integration_events import VideoProcessed, VideoUploaded, decode
from application.relay import OutboxRelay
from domain.media import Manifests, Rendition, Thumbnails
from tests.fixtures.videos import add_video

RUNG_240P = Rendition(name="240p", width=426, height=240, bitrate=400_000)


def drain(bus: InProcessEventBus, topic: str) -> list:
    async def take() -> list:
        messages = []
        subscription = bus.subscribe(topic)
        while bus.pending(topic):
            messages.append(await subscription.__anext__())
        return messages

    return anyio.run(take)


class FlakyPublisher:
    def __init__(self, inner, failures: int) -> None:
        self.inner, self.failures = inner, failures

    async def publish(self, messages) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")
        await self.inner.publish(messages)

    async def ping(self) -> None:
        pass


class CrashBeforeTracking(POPOTrackingRecorder):
    """The relay dies after the broker acknowledged but before it recorded its position."""

    crash = True

    def insert_tracking(self, tracking) -> None:
        if self.crash:
            self.crash = False
            raise SystemExit("killed")
        super().insert_tracking(tracking)


def test_uploaded_videos_are_published_keyed_by_video_id(videos):
    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), bus)
    first, second = add_video(videos), add_video(videos)
    assert anyio.run(relay.relay_once) == 2 and relay.position() == 2
    messages = drain(bus, "video-uploaded-events")
    assert [m.key for m in messages] == [str(first.id).encode(), str(second.id).encode()]
    event = decode(messages[0].value, VideoUploaded)
    assert (event.video_id, event.user_id, event.raw_key, event.size) == (
        str(first.id), str(first.owner_id), "raw/k/original.mp4", 5)
    assert anyio.run(relay.relay_once) == 0


def test_outcomes_are_published_and_other_events_only_advance_the_position(videos):
    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), bus)
    video = add_video(videos)
    video.start_processing()
    video.record_failure("corrupt input", retryable=False)
    video.edit_details(video.owner_id, ("user",), title="renamed")
    videos.save(video)
    assert anyio.run(relay.relay_once) == 4
    started, failed = (decode(m.value, VideoProcessed) for m in drain(bus, "video-processed-events"))
    assert (started.status, started.failure_reason) == ("processing", None)
    assert (failed.status, failed.failure_reason) == ("failed", "corrupt input")


def test_notifications_carry_the_owner_and_the_video_as_it_was_then(videos):
    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), bus)
    video = add_video(videos)
    low = Rendition(name="240p", width=426, height=240, bitrate=400_000)
    high = Rendition(name="360p", width=640, height=360, bitrate=800_000)
    manifests = Manifests(hls="h.m3u8", dash="d.mpd")
    plan_id = uuid.uuid4()
    video.start_processing()
    video.plan_processing(plan_id, duration_s=2.0, width=640, height=360)
    video.publish_renditions(plan_id, [low], manifests, Thumbnails())
    video.publish_renditions(plan_id, [low, high], manifests, Thumbnails())  # not playable again: it was already
    video.record_processed(duration_s=2.0, width=640, height=360, renditions=[low, high], manifests=manifests,
                           thumbnails=Thumbnails(), plan_id=plan_id)
    video.delete(video.owner_id, ("user",))
    videos.save(video)
    anyio.run(relay.relay_once)
    notes = [decode(m.value, VideoProcessed) for m in drain(bus, "video-processed-events")]
    assert [n.status for n in notes] == ["processing", "playable", "ready", "deleted"]
    assert {n.owner_id for n in notes} == {str(video.owner_id)} and {n.schema_version for n in notes} == {2}
    processing, playable, ready, deleted = (n.video for n in notes)
    assert (processing.status, processing.playable, processing.renditions) == ("processing", False, [])
    assert (playable.status, playable.playable, [r.name for r in playable.renditions]) == ("processing", True, ["240p"])
    assert (ready.status, ready.playable, [r.name for r in ready.renditions], ready.duration_s) == (
        "ready", True, ["240p", "360p"], 2.0)
    assert (deleted.status, deleted.playable) == ("deleted", False)
    assert len({n.event_id for n in notes}) == 4


def test_position_does_not_move_while_the_broker_refuses(videos):
    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), FlakyPublisher(bus, failures=1))
    add_video(videos)
    with pytest.raises(ConnectionError):
        anyio.run(relay.relay_once)
    assert relay.position() == 0 and bus.pending("video-uploaded-events") == 0
    assert anyio.run(relay.relay_once) == 1 and relay.position() == 1


def test_a_relay_killed_after_publishing_publishes_again_with_the_same_event_id(videos):
    bus = InProcessEventBus()
    tracking = CrashBeforeTracking()
    add_video(videos)
    with pytest.raises(SystemExit):
        anyio.run(OutboxRelay(videos, tracking, bus).relay_once)
    anyio.run(OutboxRelay(videos, tracking, bus).relay_once)  # the restarted relay
    first, again = (decode(m.value, VideoUploaded) for m in drain(bus, "video-uploaded-events"))
    assert first.event_id == again.event_id


def test_the_janitor_removes_a_deleted_videos_objects_and_nothing_else(videos):
    from application.janitor import Janitor

    storage = videos.storage
    kept, gone = add_video(videos), add_video(videos)
    for video in (kept, gone):
        for key in (f"raw/{video.id}/original.mp4", f"processed/{video.id}/cmaf/master.m3u8",
                    f"thumbnails/{video.id}/poster.jpg"):
            anyio.run(storage.put_bytes, key, b"x")
    gone.delete(gone.owner_id, ("user",))
    videos.save(gone)
    janitor = Janitor(videos, POPOTrackingRecorder(), storage)
    assert anyio.run(janitor.step) == 3
    remaining = anyio.run(storage.list_keys, "")
    assert sorted(remaining) == sorted([f"raw/{kept.id}/original.mp4", f"processed/{kept.id}/cmaf/master.m3u8",
                                        f"thumbnails/{kept.id}/poster.jpg"])


def test_the_relay_reports_its_lag(videos):
    from adapters.outbound.metrics import InMemoryMetrics

    metrics = InMemoryMetrics()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), InProcessEventBus(), batch_size=2, metrics=metrics)
    for _ in range(3):
        add_video(videos)
    anyio.run(relay.relay_once)
    assert metrics.relay["videos"] == (2, 3)


def test_a_recorded_plan_publishes_its_first_tasks_then_the_ladder_once_playable(videos):
    import uuid

    from application.integration_events import TranscodeTask
    from domain.transcode_jobs import TranscodeJob

    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), bus)
    video = add_video(videos)
    plan = {"rungs": [{"name": "240p"}, {"name": "480p"}], "chunks": [[0, 2, 0], [2, 1, 0]], "segments": [0, 1, 2],
            "audio": True}
    job = TranscodeJob.create(video.id, uuid.uuid4(), 1, plan)
    videos.save(job)
    anyio.run(relay.relay_once)
    first_messages = drain(bus, "video-transcode-tasks")
    first = [decode(m.value, TranscodeTask) for m in first_messages]
    assert [t.task for t in first] == ["audio:0", "low:0", "low:1"]
    assert {t.plan_id for t in first} == {str(job.plan_id)} and len({t.event_id for t in first}) == 3
    for pass_name, chunk in [("low", 0), ("low", 1), ("audio", 0)]:
        job.task_done(pass_name, chunk, {"tracks": {}})
    videos.save(job)
    anyio.run(relay.relay_once)
    later = drain(bus, "video-transcode-tasks")
    assert [decode(m.value, TranscodeTask).task for m in later] == ["high:0", "high:1"]
    assert len({m.key for m in first_messages + later}) == 5  # keyed per task
    # Each stage's tasks go to consecutive partitions, so a round-robin group alternates them.
    for stage in (first_messages, later):
        spread = [m.spread for m in stage]
        assert spread == list(range(spread[0], spread[0] + len(stage)))


def test_the_janitor_removes_abandoned_plans_once_another_is_published(videos):
    import uuid

    from application.janitor import Janitor

    video = add_video(videos)
    old_plan, new_plan = uuid.uuid4(), uuid.uuid4()
    storage = videos.storage
    for plan in (old_plan, new_plan):
        anyio.run(storage.put_bytes, f"processed/{video.id}/{plan}/cmaf/240p/00000.m4s", b"x")
    anyio.run(storage.put_bytes, f"processed/{video.id}/cmaf/segment-0-00001.m4s", b"x")  # before plans had prefixes
    video.start_processing()
    video.plan_processing(new_plan, duration_s=1.0, width=2, height=2)
    hls = f"processed/{video.id}/{new_plan}/cmaf/master.m3u8"
    video.record_processed(duration_s=1.0, width=2, height=2, renditions=[RUNG_240P],
                           manifests=Manifests(hls=hls, dash=hls), thumbnails=Thumbnails(), plan_id=new_plan)
    videos.save(video)
    anyio.run(Janitor(videos, POPOTrackingRecorder(), storage).step)
    assert anyio.run(storage.list_keys, f"processed/{video.id}/") == [f"processed/{video.id}/{new_plan}/cmaf/240p/00000.m4s"]


def test_the_janitor_removes_the_plans_of_failed_and_abandoned_attempts_but_not_a_later_one(videos):
    from datetime import UTC, datetime, timedelta

    from application.janitor import Janitor

    video = add_video(videos)
    failed, abandoned, current = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    storage = videos.storage
    for plan in (failed, abandoned, current):
        anyio.run(storage.put_bytes, f"processed/{video.id}/{plan}/cmaf/240p/00000.m4s", b"x")
        anyio.run(storage.put_bytes, f"processed/{video.id}/{plan}/thumbnails/poster.jpg", b"x")
    anyio.run(storage.put_bytes, f"raw/{video.id}/original.mp4", b"x")
    video.start_processing()
    video.plan_processing(failed, duration_s=1.0, width=2, height=2)
    video.record_failure("broken", retryable=True)
    video.retry(video.owner_id, ("user",))
    video.start_processing()
    video.plan_processing(abandoned, duration_s=1.0, width=2, height=2)
    assert video.take_over(datetime.now(UTC) + timedelta(days=1), timedelta(minutes=5))
    video.start_processing()
    video.plan_processing(current, duration_s=1.0, width=2, height=2)
    videos.save(video)
    anyio.run(Janitor(videos, POPOTrackingRecorder(), storage).step)
    assert sorted(anyio.run(storage.list_keys, "")) == sorted([
        f"raw/{video.id}/original.mp4", f"processed/{video.id}/{current}/cmaf/240p/00000.m4s",
        f"processed/{video.id}/{current}/thumbnails/poster.jpg",
    ])


def test_a_retried_video_is_announced_again_for_planning(videos):
    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), bus)
    video = add_video(videos)
    video.start_processing()
    video.record_failure("broken", retryable=True)
    video.retry(video.owner_id, ("user",))
    videos.save(video)
    anyio.run(relay.relay_once)
    announced = [decode(m.value, VideoUploaded) for m in drain(bus, "video-uploaded-events")]
    assert [e.video_id for e in announced] == [str(video.id)] * 2 and len({e.event_id for e in announced}) == 2
