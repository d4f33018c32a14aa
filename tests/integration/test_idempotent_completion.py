"""A tus upload completed twice at once, by two replicas sharing one event store (PostgreSQL)
and one object store: both answer the same video, and no other video or object is left."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from adapters.outbound.clock import RandomIdGenerator, SystemClock
from adapters.outbound.object_storage import InMemoryObjectStorage
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from application.accounts import Principal
from application.errors import NotFound, Unavailable
from application.resumable import ResumableUploads
from application.videos import Videos
from domain.videos import Video

ALICE = Principal(user_id=uuid.uuid4(), username="alice", roles=("user",), token_id="t", session_id="s",
                  expires_at=datetime.now(UTC) + timedelta(hours=1))


class Replica:
    def __init__(self, env: dict[str, str], storage: InMemoryObjectStorage) -> None:
        self.videos = Videos(storage=storage, inspector=PyAVMediaInspector(), clock=SystemClock(),
                             ids=RandomIdGenerator(), max_upload_bytes=10**9, env=env)
        self.uploads = ResumableUploads(videos=self.videos, storage=storage, clock=SystemClock(),
                                        ids=RandomIdGenerator(), env=env)

    def close(self) -> None:
        self.uploads.close()
        self.videos.close()


@pytest.fixture
def replicas(postgres_eventstore_env):
    storage = InMemoryObjectStorage()
    first, second = Replica(postgres_eventstore_env, storage), Replica(postgres_eventstore_env, storage)
    yield first, second
    first.close()
    second.close()


async def body(data: bytes):
    yield data


def saving_together(replicas) -> None:
    """Both replicas get to the point of recording their video before either records it."""
    barrier = threading.Barrier(len(replicas), timeout=60)
    for replica in replicas:
        save = replica.videos.save

        def save_after_the_other(*aggregates, save=save):
            if any(isinstance(aggregate, Video) for aggregate in aggregates):
                barrier.wait()
            return save(*aggregates)

        replica.videos.save = save_after_the_other


def received_without_a_video(replica: Replica, upload_id: uuid.UUID, data: bytes) -> None:
    """Every byte of the upload arrives at the replica, but recording its video fails (the
    event store hiccups): the parts stay, and the client will send the last PATCH again."""

    def database_hiccup(*aggregates):
        raise Unavailable("event store away")

    save = replica.videos.save
    replica.videos.save = database_hiccup
    with pytest.raises(Unavailable):
        anyio.run(replica.uploads.append, ALICE, upload_id, 0, body(data))
    replica.videos.save = save


def uploaded_videos(replica: Replica) -> list[uuid.UUID]:
    notifications = replica.videos.recorder.select_notifications(start=1, limit=1000)
    events = [replica.videos.mapper.to_domain_event(n) for n in notifications]
    return [event.originator_id for event in events if isinstance(event, Video.Uploaded)]


def test_two_replicas_completing_one_upload_at_once_record_one_video(replicas, small_clip):
    first, second = replicas
    status = anyio.run(first.uploads.create, ALICE, len(small_clip), {"title": "once"})

    # The last PATCH's bytes arrive, but recording the video fails: the client will send it again.
    received_without_a_video(first, status.id, small_clip)

    # It times out and sends it again to the other replica, while the first retries too.
    saving_together(replicas)
    answers = []

    async def complete_on_both() -> None:
        async def complete(replica: Replica) -> None:
            answers.append(await replica.uploads.append(ALICE, status.id, len(small_clip), body(b"")))

        async with anyio.create_task_group() as group:
            group.start_soon(complete, first)
            group.start_soon(complete, second)

    anyio.run(complete_on_both)

    video_ids = {answer.video_id for answer in answers}
    assert len(video_ids) == 1 and None not in video_ids
    assert uploaded_videos(first) == [video_ids.pop()]
    raw = anyio.run(first.videos.storage.list_keys, "raw/")
    assert len(raw) == 1  # the loser's copy is gone
    assert anyio.run(first.videos.storage.list_keys, "uploads/") == []


def test_the_last_patch_sent_again_after_completion_answers_the_same_video(replicas, small_clip):
    first, second = replicas
    status = anyio.run(first.uploads.create, ALICE, len(small_clip), {"title": "once"})
    completed = anyio.run(first.uploads.append, ALICE, status.id, 0, body(small_clip))

    again = anyio.run(second.uploads.append, ALICE, status.id, len(small_clip), body(b""))

    assert again.video_id == completed.video_id is not None
    assert len(uploaded_videos(second)) == 1


class PartsRemovedWhileCopying:
    """The object store as the second replica sees it: just as it starts copying the upload's
    parts, the first replica completes the same upload and removes them."""

    def __init__(self, storage: InMemoryObjectStorage, complete_elsewhere) -> None:
        self._storage = storage
        self._complete_elsewhere = complete_elsewhere

    def __getattr__(self, name: str):
        return getattr(self._storage, name)

    async def stream(self, key: str, start: int = 0, end: int | None = None):
        if key.startswith("uploads/"):
            await self._complete_elsewhere()
        async for chunk in self._storage.stream(key, start, end):
            yield chunk


def test_the_last_patch_answers_the_video_when_another_replica_removes_the_parts_mid_copy(replicas, small_clip):
    first, second = replicas
    status = anyio.run(first.uploads.create, ALICE, len(small_clip), {"title": "once"})
    received_without_a_video(first, status.id, small_clip)  # all parts recorded, no video: the client retries

    completed = []

    async def first_completes() -> None:
        completed.append(await first.uploads.append(ALICE, status.id, len(small_clip), body(b"")))

    second.uploads.storage = PartsRemovedWhileCopying(first.videos.storage, first_completes)
    again = anyio.run(second.uploads.append, ALICE, status.id, len(small_clip), body(b""))

    assert again.video_id == completed[0].video_id is not None
    assert len(uploaded_videos(second)) == 1
    assert len(anyio.run(first.videos.storage.list_keys, "raw/")) == 1  # the second copy is gone


def test_the_last_patch_is_404_when_the_upload_is_terminated_mid_copy(replicas, small_clip):
    first, second = replicas
    status = anyio.run(first.uploads.create, ALICE, len(small_clip), {"title": "gone"})
    received_without_a_video(first, status.id, small_clip)

    async def first_terminates() -> None:
        await first.uploads.terminate(ALICE, status.id)

    second.uploads.storage = PartsRemovedWhileCopying(first.videos.storage, first_terminates)
    with pytest.raises(NotFound):  # tus clients start a new upload on 404
        anyio.run(second.uploads.append, ALICE, status.id, len(small_clip), body(b""))
    assert uploaded_videos(second) == []
    assert anyio.run(first.videos.storage.list_keys, "raw/") == []
