"""A newcomer's whole journey on `vodhub dev`: upload, watch it become ready, find it in the
list, play HLS and the progressive MP4 through the server as a player would (PyAV), play a
private video through its signed path, delete it."""

from __future__ import annotations

import time

import av
import httpx
import pytest

from tests.e2e.test_accounts_walkthrough import walk_through
from tests.fixtures.processes import vodhub_process
from tests.media_factory import write_clip


@pytest.fixture(scope="module")
def phone_clip(tmp_path_factory) -> bytes:
    return write_clip(tmp_path_factory.mktemp("e2e") / "clip.mp4", width=640, height=360, seconds=5).read_bytes()


def upload(base_url: str, headers: dict, clip: bytes, **fields: str) -> str:
    response = httpx.post(f"{base_url}/api/videos/upload", headers=headers, data=fields,
                          files={"file": ("holiday.mp4", clip, "video/mp4")}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_until_ready(base_url: str, headers: dict, video_id: str, timeout: float = 120) -> dict:
    with httpx.stream("GET", f"{base_url}/api/videos/{video_id}/events", headers=headers, timeout=timeout) as events:
        statuses = [line.removeprefix("data: ") for line in events.iter_lines() if line.startswith("data: ")]
    assert statuses[-1] == "ready", statuses
    return httpx.get(f"{base_url}/api/videos/{video_id}", headers=headers).json()


def decoded_sizes(url: str) -> set[tuple[int, int]]:
    """Open the presentation over HTTP and decode a frame of every video stream."""
    sizes = set()
    with av.open(url, timeout=20) as container:
        for stream in container.streams.video:
            frame = next(container.decode(stream))
            sizes.add((frame.width, frame.height))
    return sizes


def test_upload_process_list_play_and_delete(tmp_path, phone_clip):
    with vodhub_process("dev", cwd=tmp_path, env={}) as base_url:
        headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
        video_id = upload(base_url, headers, phone_clip, title="Holiday", tags="sea,sun")
        video = wait_until_ready(base_url, headers, video_id)
        assert [r["name"] for r in video["renditions"]] == ["240p", "360p"]
        assert video["duration_s"] == pytest.approx(5, abs=0.3)

        deadline = time.monotonic() + 20
        while not httpx.get(f"{base_url}/api/videos?tag=sea", headers=headers).json()["items"]:
            assert time.monotonic() < deadline, "the catalog never listed the ready video"
            time.sleep(0.3)
        assert httpx.get(f"{base_url}/api/videos?q=holiday", headers=headers).json()["items"][0]["id"] == video_id

        master = httpx.get(f"{base_url}/api/videos/stream/{video_id}", headers=headers).headers["location"]
        assert len(decoded_sizes(base_url + master)) == 2
        pinned = httpx.get(f"{base_url}/api/videos/stream/{video_id}?quality=360p", headers=headers).headers["location"]
        assert pinned.endswith("/cmaf/master_360p.m3u8") and decoded_sizes(base_url + pinned) == {(640, 360)}
        mp4 = httpx.get(f"{base_url}/api/videos/stream/{video_id}?format=mp4", headers=headers).headers["location"]
        assert decoded_sizes(base_url + mp4) == {(640, 360)}
        poster = httpx.get(base_url + video["thumbnails"]["poster"])
        assert poster.status_code == 200 and poster.content[:2] == b"\xff\xd8"

        private_id = upload(base_url, headers, phone_clip, visibility="private")
        wait_until_ready(base_url, headers, private_id)
        signed = httpx.get(f"{base_url}/api/videos/stream/{private_id}", headers=headers).headers["location"]
        assert signed.startswith("/media/t/") and len(decoded_sizes(base_url + signed)) == 2

        assert httpx.delete(f"{base_url}/api/videos/{video_id}", headers=headers).status_code == 204
        assert httpx.get(base_url + mp4).status_code == 404
        deadline = time.monotonic() + 20
        while (tmp_path / "var" / "objects" / "processed" / video_id).exists():
            assert time.monotonic() < deadline, "the janitor never removed the deleted video's files"
            time.sleep(0.3)
