"""The janitor on the real servers: the event store on PostgreSQL (it reads the video as it was
just before the event), objects on SeaweedFS."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio
from eventsourcing.popo import POPOTrackingRecorder

from adapters.outbound.clock import RandomIdGenerator, SettableClock
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from application.janitor import Janitor
from application.videos import Videos
from tests.fixtures.videos import add_video


def test_the_plans_of_failed_and_abandoned_attempts_are_removed_and_the_current_one_kept(
    postgres_eventstore_env, s3_storage,
):
    videos = Videos(storage=s3_storage, inspector=PyAVMediaInspector(), clock=SettableClock(), ids=RandomIdGenerator(),
                    max_upload_bytes=10**6, env=postgres_eventstore_env)
    try:
        video = add_video(videos)
        failed, abandoned, current = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        for plan in (failed, abandoned, current):
            anyio.run(s3_storage.put_bytes, f"processed/{video.id}/{plan}/cmaf/240p/00000.m4s", b"x")
        video.start_processing()
        video.plan_processing(failed, duration_s=1.0, width=2, height=2)
        video.record_failure("broken", retryable=True)
        videos.save(video)
        video.retry(video.owner_id, ("user",))
        video.start_processing()
        video.plan_processing(abandoned, duration_s=1.0, width=2, height=2)
        assert video.take_over(datetime.now(UTC) + timedelta(days=1), timedelta(minutes=5))
        video.start_processing()
        video.plan_processing(current, duration_s=1.0, width=2, height=2)
        videos.save(video)
        anyio.run(Janitor(videos, POPOTrackingRecorder(), s3_storage).step)
        assert anyio.run(s3_storage.list_keys, f"processed/{video.id}/") == [
            f"processed/{video.id}/{current}/cmaf/240p/00000.m4s"]
    finally:
        videos.close()
