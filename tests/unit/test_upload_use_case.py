"""The upload use case on in-memory adapters: what a vanished client or a failing step leaves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import anyio
import pytest

from application.accounts import Principal
from application.errors import PayloadTooLarge
from application.uploads import FileChunk, FileEnd, FileStart, FormField
from application.videos import Videos

ALICE = Principal(user_id=uuid.uuid4(), username="alice", roles=("user",), token_id="t", session_id="s",
                  expires_at=datetime.now(UTC))


class ClientWentAway(Exception):
    pass


async def events(*items, fail_after: bool = False):
    for item in items:
        yield item
    if fail_after:
        raise ClientWentAway()


def leftovers(videos: Videos) -> tuple[list[str], int]:
    return anyio.run(videos.storage.list_keys, "raw"), videos.recorder.max_notification_id() or 0


def test_client_disconnecting_mid_file_leaves_no_object_and_no_video(videos, small_clip):
    half = small_clip[: len(small_clip) // 2]
    stream = events(FileStart("file", "a.mp4"), FileChunk(half), fail_after=True)
    with pytest.raises(ClientWentAway):
        anyio.run(videos.upload, ALICE, stream)
    assert leftovers(videos) == ([], 0)


def test_client_disconnecting_after_the_file_leaves_nothing(videos, small_clip):
    stream = events(FileStart("file", "a.mp4"), FileChunk(small_clip), FileEnd(), FormField("title", "x"),
                    fail_after=True)
    with pytest.raises(ClientWentAway):
        anyio.run(videos.upload, ALICE, stream)
    assert leftovers(videos) == ([], 0)


@pytest.mark.parametrize("max_upload_bytes", [10])
def test_limit_is_enforced_as_soon_as_it_is_crossed(videos):
    consumed = []

    async def endless():
        yield FileStart("file", "a.mp4")
        while True:
            consumed.append(1)
            yield FileChunk(b"x" * 4)

    with pytest.raises(PayloadTooLarge):
        anyio.run(videos.upload, ALICE, endless())
    assert len(consumed) == 3 and leftovers(videos) == ([], 0)


def test_a_successful_upload_is_one_event_and_one_object(videos, small_clip):
    view = anyio.run(videos.upload, ALICE, events(FileStart("file", "clip.MOV"), FileChunk(small_clip), FileEnd()))
    assert leftovers(videos) == ([f"raw/{view.id}/original.mov"], 1)
    assert view.owner_id == ALICE.user_id and view.title == "clip"


def test_the_upload_records_the_container_its_inspection_vetted(videos, small_clip):
    view = anyio.run(videos.upload, ALICE, events(FileStart("file", "clip.mkv"), FileChunk(small_clip), FileEnd()))
    assert videos.get_aggregate(view.id).source_container == "mp4"  # from the bytes, not the name
