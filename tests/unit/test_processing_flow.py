"""The processing flow on in-memory adapters only (no PyAV): an upload planned, every task run,
the renditions published and the video ready; and refusals that end in a readable failure."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from adapters.outbound.clock import RandomIdGenerator, SettableClock
from adapters.outbound.in_memory_media import CLIP, FakeVideo, InMemoryMediaInspector, InMemoryTranscoder
from adapters.outbound.metrics import InMemoryMetrics
from adapters.outbound.object_storage import InMemoryObjectStorage
from application.accounts import Principal
from application.errors import UnsupportedMedia
from application.media_layout import plan_folder
from application.processing import VideoProcessor
from application.uploads import FileChunk, FileEnd, FileStart
from application.videos import Videos
from domain.transcode_jobs import TranscodeJob, job_id, parse_task_key
from domain.videos import FAILED, PROCESSING, READY, Video

ALICE = Principal(user_id=uuid.uuid4(), username="alice", roles=("user",), token_id="t", session_id="s",
                  expires_at=datetime.now(UTC))
DAMAGED = FakeVideo(b"fake-video:damaged", damaged_tasks=frozenset({"high:2"}))
TRUNCATED = FakeVideo(b"fake-video:truncated", unreadable=True)
FAKES = (CLIP, DAMAGED, TRUNCATED)


@pytest.fixture
def videos():
    app = Videos(storage=InMemoryObjectStorage(), inspector=InMemoryMediaInspector(*FAKES), clock=SettableClock(),
                 ids=RandomIdGenerator(), max_upload_bytes=10**6, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield app
    app.close()


@pytest.fixture
def transcoder() -> InMemoryTranscoder:
    return InMemoryTranscoder(*FAKES)


@pytest.fixture
def processor(videos, transcoder, tmp_path) -> VideoProcessor:
    return VideoProcessor(videos, transcoder, videos.storage, InMemoryMetrics(), work_dir=tmp_path)


def upload(videos: Videos, data: bytes, filename: str = "clip.mp4") -> uuid.UUID:
    async def events():
        for item in (FileStart("file", filename), FileChunk(data), FileEnd()):
            yield item

    return anyio.run(videos.upload, ALICE, events()).id


def event_names(videos: Videos, video_id: uuid.UUID) -> list[str]:
    return [type(event).__name__ for event in videos.events.get(video_id)]


def published(videos: Videos, video_id: uuid.UUID) -> list[list[str]]:
    """The renditions each RenditionPublished made streamable, in order."""
    return [[r.name for r in event.renditions] for event in videos.events.get(video_id)
            if isinstance(event, Video.RenditionPublished)]


def test_an_upload_goes_from_plan_through_every_task_to_ready(videos, processor, transcoder):
    video_id = upload(videos, CLIP.data)

    assert anyio.run(processor.plan, video_id).startswith("planned:")
    video = videos.get_aggregate(video_id)
    assert video.status == PROCESSING and video.plan_id is not None
    job: TranscodeJob = videos.repository.get(job_id(video_id, video.plan_id))
    rungs = [rung["name"] for rung in job.plan["rungs"]]
    assert rungs == ["240p", "360p", "480p", "720p"]  # a 720p source: no upscaling
    first, later = job.first_tasks(), job.later_tasks()
    assert first[0] == "audio:0" and len(job.plan["chunks"]) > 1

    for key in first:
        pass_name, chunk = parse_task_key(key)
        assert anyio.run(processor.run_task, video_id, video.plan_id, pass_name, chunk) == f"done {key}"
    playable = videos.get_aggregate(video_id)
    assert (playable.status, playable.playable, [r.name for r in playable.renditions]) == (PROCESSING, True, ["240p"])

    for key in later:
        pass_name, chunk = parse_task_key(key)
        assert anyio.run(processor.run_task, video_id, video.plan_id, pass_name, chunk) == f"done {key}"

    ready = videos.get_aggregate(video_id)
    assert ready.status == READY and ready.failure_reason is None
    assert event_names(videos, video_id).count("Processed") == 1
    # Each publication adds rungs lowest first, and never drops one.
    steps = published(videos, video_id)
    assert steps[0] == ["240p"] and steps[-1] == rungs
    assert all(step == rungs[: len(step)] for step in steps)
    assert [r.name for r in ready.renditions] == rungs
    # Every task of the plan encoded exactly once, and the assembly ran once.
    assert Counter(transcoder.encoded) == Counter(first + later)
    assert transcoder.assembled == 1
    # What the video points at exists.
    folder = plan_folder(video_id, video.plan_id)
    keys = set(anyio.run(videos.storage.list_keys, folder))
    mp4 = next(r.mp4 for r in ready.renditions if r.mp4)
    assert {ready.manifests.hls, ready.manifests.dash, ready.thumbnails.poster, ready.thumbnails.sprite,
            ready.thumbnails.storyboard, mp4} <= keys
    assert mp4 == f"{folder}/mp4/720p.mp4"
    assert f"{folder}/cmaf/720p/00000.m4s" in keys


def test_a_redelivered_task_is_not_encoded_again(videos, processor, transcoder):
    video_id = upload(videos, CLIP.data)
    assert anyio.run(processor.process, video_id) == "ready"
    plan_id = videos.get_aggregate(video_id).plan_id
    encoded = list(transcoder.encoded)

    assert anyio.run(processor.run_task, video_id, plan_id, "low", 0) == "skipped: done already"
    assert transcoder.encoded == encoded
    assert event_names(videos, video_id).count("Processed") == 1


def test_a_task_that_ends_after_its_video_failed_leaves_no_object_behind(videos, processor, transcoder, monkeypatch):
    """The janitor removes a failed plan's objects when the failure is recorded; a task still
    running then uploads later, so it removes its own."""
    video_id = upload(videos, CLIP.data)
    anyio.run(processor.plan, video_id)
    plan_id = videos.get_aggregate(video_id).plan_id
    encode = transcoder.encode

    def encode_while_another_task_fails_the_video(*args):
        output = encode(*args)
        video = videos.get_aggregate(video_id)
        video.record_failure("The video is damaged.", retryable=False)
        videos.save(video)
        return output

    monkeypatch.setattr(transcoder, "encode", encode_while_another_task_fails_the_video)
    assert anyio.run(processor.run_task, video_id, plan_id, "low", 0).startswith("skipped")
    assert anyio.run(videos.storage.list_keys, plan_folder(video_id, plan_id)) == []
    job: TranscodeJob = videos.repository.get(job_id(video_id, plan_id))
    assert not job.is_done("low", 0)


def test_an_assembly_that_ends_after_its_attempt_was_taken_over_leaves_no_object_behind(
    videos, processor, transcoder, monkeypatch,
):
    video_id = upload(videos, CLIP.data)
    assemble = transcoder.assemble

    def assemble_while_the_sweep_takes_over(*args):
        output = assemble(*args)
        video = videos.get_aggregate(video_id)
        assert video.take_over(datetime.now(UTC) + timedelta(days=1), timedelta(minutes=5))
        videos.save(video)
        return output

    monkeypatch.setattr(transcoder, "assemble", assemble_while_the_sweep_takes_over)
    anyio.run(processor.process, video_id)
    assert transcoder.assembled == 1 and "Processed" not in event_names(videos, video_id)
    assert anyio.run(videos.storage.list_keys, f"processed/{video_id}/") == []


def test_what_the_inspector_refuses_is_a_readable_error_and_leaves_nothing(videos):
    with pytest.raises(UnsupportedMedia, match="not in a supported video container"):
        upload(videos, b"\x89PNG\r\n\x1a\n not a video", filename="cat.mp4")
    assert anyio.run(videos.storage.list_keys, "raw") == []
    assert (videos.recorder.max_notification_id() or 0) == 0


def test_a_source_that_cannot_be_indexed_fails_the_video_with_its_reason(videos, processor, transcoder):
    video_id = upload(videos, TRUNCATED.data)

    assert anyio.run(processor.process, video_id).startswith("failed: The file is damaged or truncated")
    video = videos.get_aggregate(video_id)
    assert (video.status, video.retryable, video.plan_id) == (FAILED, False, None)
    assert video.failure_reason == "The file is damaged or truncated: it stops being readable."
    assert transcoder.encoded == []


def test_a_damaged_stretch_fails_the_video_midway_and_it_never_becomes_ready(videos, processor, transcoder):
    video_id = upload(videos, DAMAGED.data)

    outcome = anyio.run(processor.process, video_id)
    assert outcome.startswith("failed: The video is damaged")
    video = videos.get_aggregate(video_id)
    assert video.status == FAILED and "damaged" in (video.failure_reason or "")
    assert "Processed" not in event_names(videos, video_id)
    assert transcoder.encoded[-1] == "high:2" and transcoder.assembled == 0
