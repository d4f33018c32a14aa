"""The processing use case with the real PyAV transcoder on in-memory storage: exactly one
outcome per video, however often it is asked, and every failure recorded."""

from __future__ import annotations

import uuid

import anyio
import pytest

from adapters.inbound.messaging import IncomingMessage, PermanentFailure
from adapters.inbound.processing_consumer import ProcessingConsumer
from adapters.outbound.metrics import InMemoryMetrics
from adapters.outbound.object_storage import InMemoryObjectStorage
from adapters.outbound.pyav_transcoder import PyAVTranscoder
from application.processing import VideoProcessor
from application.videos import Videos
from domain.media import progressive
from domain.videos import FAILED, PROCESSING, READY, Video
from tests.media_factory import write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return write_clip(tmp_path_factory.mktemp("processing") / "c.mp4", width=320, height=240, seconds=2).read_bytes()


@pytest.fixture
def processor(videos):
    return VideoProcessor(videos, PyAVTranscoder(), videos.storage, InMemoryMetrics())


def uploaded(videos: Videos, data: bytes) -> Video:
    video_id = uuid.uuid4()
    key = f"raw/{video_id}/original.mp4"
    anyio.run(videos.storage.put_bytes, key, data)
    video = Video.upload(video_id, uuid.uuid4(), ("user",), title="t", description="", tags=[], visibility="public",
                         source_key=key, source_size=len(data), source_content_type="video/mp4",
                         source_sha256="0" * 64)
    videos.save(video)
    return video


def event_types(videos: Videos, video_id) -> list[str]:
    return [type(event).__name__ for event in videos.events.get(video_id)]


def process(processor: VideoProcessor, video_id, final: bool = True) -> str:
    async def run() -> str:
        return await processor.process(video_id, final_attempt=final)

    return anyio.run(run)


def test_a_video_becomes_ready_with_its_ladder_manifests_and_thumbnails(videos, processor, clip):
    video = uploaded(videos, clip)
    assert process(processor, video.id) == "ready"
    ready = videos.get_aggregate(video.id)
    assert ready.status == READY and [r.name for r in ready.renditions] == ["240p"]
    keys = anyio.run(videos.storage.list_keys, "")
    for key in (ready.manifests.hls, ready.manifests.dash, progressive(ready.renditions).mp4, ready.thumbnails.poster):
        assert key in keys
    assert ready.manifests.hls == f"processed/{video.id}/{ready.plan_id}/cmaf/master.m3u8"
    assert ready.thumbnails.poster == f"processed/{video.id}/{ready.plan_id}/thumbnails/poster.jpg"


def test_redelivery_is_skipped_and_there_is_exactly_one_processed_event(videos, processor, clip):
    video = uploaded(videos, clip)
    process(processor, video.id)
    assert process(processor, video.id).startswith("skipped")
    assert event_types(videos, video.id) == [
        "Uploaded", "ProcessingStarted", "ProcessingPlanned", "RenditionPublished", "Processed",
    ]


def test_a_video_abandoned_mid_processing_is_taken_over(videos, processor, clip):
    video = uploaded(videos, clip)
    video.start_processing()  # a worker that then died
    videos.save(video)
    assert process(processor, video.id) == "ready"
    assert event_types(videos, video.id) == [
        "Uploaded", "ProcessingStarted", "ProcessingAbandoned", "ProcessingStarted", "ProcessingPlanned",
        "RenditionPublished", "Processed",
    ]
    assert videos.get_aggregate(video.id).attempts == 2
    assert videos.get_aggregate(video.id).outcomes == {1: "abandoned", 2: "processed"}


def test_corrupt_input_fails_for_good_with_a_readable_reason(videos, processor, clip):
    video = uploaded(videos, clip[: len(clip) // 3])
    assert process(processor, video.id).startswith("failed")
    failed = videos.get_aggregate(video.id)
    assert failed.status == FAILED and not failed.retryable and len(failed.failure_reason) > 10
    assert process(processor, video.id).startswith("skipped")


class StorageAway(InMemoryObjectStorage):
    async def download(self, key, path) -> None:
        raise ConnectionError("storage unreachable")


def test_transient_faults_are_retried_then_recorded_as_retryable(videos, clip):
    video = uploaded(videos, clip)
    processor = VideoProcessor(videos, PyAVTranscoder(), StorageAway(), InMemoryMetrics())
    with pytest.raises(ConnectionError):
        process(processor, video.id, final=False)
    assert videos.get_aggregate(video.id).status == PROCESSING
    with pytest.raises(ConnectionError):
        process(processor, video.id, final=True)
    failed = videos.get_aggregate(video.id)
    assert failed.status == FAILED and failed.retryable and "storage unreachable" in failed.failure_reason


def test_a_video_deleted_while_processing_leaves_no_outputs(videos, clip):
    video = uploaded(videos, clip)

    class DeletingTranscoder(PyAVTranscoder):
        def encode(self, source, plan, pass_name, chunk, output_dir):
            output = super().encode(source, plan, pass_name, chunk, output_dir)
            doomed = videos.get_aggregate(video.id)
            doomed.delete(doomed.owner_id, ("user",))
            videos.save(doomed)
            return output

    processor = VideoProcessor(videos, DeletingTranscoder(), videos.storage, InMemoryMetrics())
    assert process(processor, video.id).startswith("skipped")
    assert anyio.run(videos.storage.list_keys, f"processed/{video.id}") == []
    assert anyio.run(videos.storage.list_keys, f"thumbnails/{video.id}") == []


def test_an_undecodable_message_is_a_permanent_failure(processor):
    consumer = ProcessingConsumer(processor)
    message = IncomingMessage(topic="t", partition=0, offset=0, key=b"k", value=b"{not json")

    async def handle() -> None:
        await consumer(message, attempt=1, final_attempt=False)

    with pytest.raises(PermanentFailure):
        anyio.run(handle)


def test_outcomes_and_transcode_times_are_measured(videos, clip):
    from adapters.outbound.metrics import InMemoryMetrics

    metrics = InMemoryMetrics()
    processor = VideoProcessor(videos, PyAVTranscoder(), videos.storage, metrics=metrics)
    video = uploaded(videos, clip)
    videos.clock.advance(40)  # the processor's clock: 40 s after the upload was accepted
    process(processor, video.id)
    process(processor, video.id)
    assert metrics.outcomes[0] == "planned" and metrics.outcomes[-1] == "skipped"
    # Each milestone once, by the save that reached it, however often the video is processed again.
    assert [milestone for milestone, _ in metrics.milestones] == ["playable", "ready"]
    assert all(35 < seconds < 60 for _, seconds in metrics.milestones)
    assert metrics.outcomes.count("ready") == 1 and "done" in metrics.outcomes
    assert "240p" in [rung for rung, _ in metrics.transcodes] and metrics.transcodes[0][1] > 0


def test_an_edit_saved_during_the_transcode_does_not_lose_the_result(videos, clip):
    video = uploaded(videos, clip)

    class EditingTranscoder(PyAVTranscoder):
        def encode(self, source, plan, pass_name, chunk, output_dir):
            output = super().encode(source, plan, pass_name, chunk, output_dir)
            edited = videos.get_aggregate(video.id)
            edited.edit_details(edited.owner_id, ("user",), title="Renamed meanwhile")
            videos.save(edited)
            return output

    assert process(VideoProcessor(videos, EditingTranscoder(), videos.storage, InMemoryMetrics()), video.id) == "ready"
    ready = videos.get_aggregate(video.id)
    assert (ready.status, ready.title) == (READY, "Renamed meanwhile")
    types = event_types(videos, video.id)
    assert "DetailsEdited" in types  # once after each task
    assert [name for name in types if name != "DetailsEdited"] == [
        "Uploaded", "ProcessingStarted", "ProcessingPlanned", "RenditionPublished", "Processed",
    ]


def test_a_result_of_an_attempt_taken_over_by_another_worker_is_dropped(videos, clip):
    video = uploaded(videos, clip)

    class SlowWorker(PyAVTranscoder):
        def encode(self, source, plan, pass_name, chunk, output_dir):
            output = super().encode(source, plan, pass_name, chunk, output_dir)
            other = videos.get_aggregate(video.id)
            other.start_processing()  # another worker took it over meanwhile
            videos.save(other)
            return output

    assert process(VideoProcessor(videos, SlowWorker(), videos.storage, InMemoryMetrics()), video.id).startswith("skipped")
    taken_over = videos.get_aggregate(video.id)
    assert taken_over.attempts == 2 and taken_over.plan_id is None and not taken_over.playable


def test_a_planning_failure_of_an_attempt_taken_over_is_not_the_new_attempts(videos, clip):
    """A worker stalls while planning, another takes the video over, then the first one's
    planning fails: the failure was the old attempt's (already abandoned), not the new one's."""
    video = uploaded(videos, clip)

    class StalledPlanner(PyAVTranscoder):
        def index(self, source, container=None):
            other = videos.get_aggregate(video.id)
            other.start_processing()  # taken over while this one was still indexing
            videos.save(other)
            raise RuntimeError("the disk went away")

    with pytest.raises(RuntimeError):  # its final try: the error goes on, for the consumer to log
        process(VideoProcessor(videos, StalledPlanner(), videos.storage, InMemoryMetrics()), video.id)
    taken_over = videos.get_aggregate(video.id)
    assert (taken_over.status, taken_over.attempts) == (PROCESSING, 2)
    assert taken_over.outcomes == {1: "abandoned"}  # attempt 2 goes on, with no outcome yet
