"""Status streams share one follower of the notification log per process: a thousand open
streams of a video cost one read of it per change, not a thousand pollers; and open streams
are capped per user and per process (429)."""

from __future__ import annotations

import uuid

import anyio
import pytest

from tests.integration.test_http_accounts import assert_problem

WAIT_S = 60.0  # generous: the machine is shared
STREAMS = 1000


@pytest.fixture
def uploaded(client, uploader, small_clip) -> uuid.UUID:
    response = client.post("/api/videos/upload", headers=uploader, files={"file": ("a.mp4", small_clip, "video/mp4")})
    return uuid.UUID(response.json()["id"])


def principal_of(vodhub, headers: dict[str, str]):
    return vodhub.accounts.authenticate(headers["Authorization"].removeprefix("Bearer "))


def test_a_thousand_streams_of_a_video_read_it_once_per_change(client, vodhub, uploader, uploaded, monkeypatch):
    feed, principal = vodhub.status_feed, principal_of(vodhub, uploader)
    feed.per_user = STREAMS
    reads = {"videos": 0, "log": 0}
    get_aggregate, select = vodhub.videos.get_aggregate, vodhub.videos.recorder.select_notifications

    def counted_get(video_id):
        reads["videos"] += 1
        return get_aggregate(video_id)

    def counted_select(*args, **kwargs):
        reads["log"] += 1
        return select(*args, **kwargs)

    monkeypatch.setattr(vodhub.videos, "get_aggregate", counted_get)
    monkeypatch.setattr(vodhub.videos.recorder, "select_notifications", counted_select)

    async def open_streams_then_change_the_video() -> list[str]:
        streams = [await feed.open(principal, uploaded) for _ in range(STREAMS)]
        try:
            video = vodhub.videos.repository.get(uploaded)
            video.start_processing()
            await anyio.to_thread.run_sync(vodhub.videos.save, video)
            with anyio.fail_after(WAIT_S):
                return [(await stream.receive.receive()).status for stream in streams]
        finally:
            for stream in streams:
                feed.close(stream)

    statuses = client.blocking_portal.call(open_streams_then_change_the_video)
    assert statuses == ["processing"] * STREAMS
    assert reads["videos"] == 1  # one reload of the video, pushed to every stream
    assert reads["log"] < STREAMS // 10  # the log is read by one follower, not per stream
    assert feed.open_streams == 0


def test_streams_beyond_the_per_user_cap_are_429(client, vodhub, uploader, uploaded):
    feed, principal = vodhub.status_feed, principal_of(vodhub, uploader)

    async def open_all() -> list:
        return [await feed.open(principal, uploaded) for _ in range(feed.per_user)]

    streams = client.blocking_portal.call(open_all)
    try:
        response = client.get(f"/api/videos/{uploaded}/events", headers=uploader)
        assert assert_problem(response, 429)["detail"] == "at most 10 status streams may be open per user"
        assert response.headers["retry-after"].isdigit()
    finally:
        for stream in streams:
            feed.close(stream)


def test_streams_beyond_the_per_process_cap_are_429(client, vodhub, uploader, uploaded):
    feed, principal = vodhub.status_feed, principal_of(vodhub, uploader)
    feed.per_process = 1
    stream = client.blocking_portal.call(feed.open, principal, uploaded)
    try:
        response = client.get(f"/api/videos/{uploaded}/events", headers=uploader)
        assert "status streams open" in assert_problem(response, 429)["detail"]
    finally:
        feed.close(stream)
