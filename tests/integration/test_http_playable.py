"""A video that is playable before it is ready: what the api shows, streams and serves while
its ladder is still being encoded."""

from __future__ import annotations

import os
import uuid

import anyio
import msgspec
import pytest

from domain.media import Manifests, Rendition, Thumbnails
from tests.integration.test_http_accounts import assert_problem


@pytest.fixture
def playable(client, vodhub, uploader, small_clip):
    """Uploaded, planned, its 240p published; the 480p segments exist but are not published."""

    def make(visibility: str = "public") -> dict:
        response = client.post("/api/videos/upload", headers=uploader, data={"visibility": visibility},
                               files={"file": ("clip.mp4", small_clip, "video/mp4")})
        video_id = uuid.UUID(response.json()["id"])
        plan = uuid.uuid4()
        folder = f"processed/{video_id}/{plan}"
        files = {"cmaf/master.m3u8": b"#EXTM3U\n", "cmaf/manifest.mpd": b"<MPD/>", "cmaf/240p/init.mp4": os.urandom(500),
                 "cmaf/240p/00000.m4s": os.urandom(5000), "cmaf/480p/00000.m4s": os.urandom(5000),
                 "cmaf/audio/00000.m4s": os.urandom(500), "thumbnails/poster.jpg": os.urandom(300)}

        async def store() -> None:
            for name, data in files.items():
                await vodhub.storage.put_bytes(f"{folder}/{name}", data)

        anyio.run(store)
        video = vodhub.videos.get_aggregate(video_id)
        video.start_processing()
        video.plan_processing(plan, duration_s=8.0, width=854, height=480)
        video.publish_renditions(
            plan, [Rendition(name="240p", width=416, height=234, bitrate=400_000, hls=f"{folder}/cmaf/master.m3u8")],
            Manifests(hls=f"{folder}/cmaf/master.m3u8", dash=f"{folder}/cmaf/manifest.mpd"),
            Thumbnails(poster=f"{folder}/thumbnails/poster.jpg"),
        )
        vodhub.videos.save(video)
        return {"id": str(video_id), "plan": str(plan)}

    return make


def test_a_playable_video_says_so_while_processing(client, uploader, playable):
    video = playable()
    shown = client.get(f"/api/videos/{video['id']}", headers=uploader).json()
    assert (shown["status"], shown["playable"]) == ("processing", True)
    assert [r["name"] for r in shown["renditions"]] == ["240p"]
    assert shown["streams"]["hls"].endswith(f"/{video['plan']}/cmaf/master.m3u8") and "mp4" not in shown["streams"]
    assert shown["thumbnails"]["poster"].endswith(f"/{video['plan']}/thumbnails/poster.jpg")


def test_it_streams_before_it_is_ready_but_not_as_mp4(client, uploader, playable):
    video = playable()
    response = client.get(f"/api/videos/stream/{video['id']}", headers=uploader, follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"].endswith(f"{video['plan']}/cmaf/master.m3u8")
    assert_problem(client.get(f"/api/videos/stream/{video['id']}?format=mp4", headers=uploader), 409)
    assert_problem(client.get(f"/api/videos/stream/{video['id']}?quality=480p", headers=uploader), 404)


def test_growing_manifests_are_cached_briefly_and_segments_for_good(client, playable):
    video = playable()
    base = f"/media/{video['id']}/{video['plan']}"
    manifest = client.get(f"{base}/cmaf/master.m3u8")
    assert manifest.status_code == 200 and manifest.headers["cache-control"] == "public, max-age=10"
    segment = client.get(f"{base}/cmaf/240p/00000.m4s")
    assert segment.status_code == 200 and "immutable" in segment.headers["cache-control"]
    assert client.get(f"{base}/cmaf/audio/00000.m4s").status_code == 200
    assert client.get(f"{base}/thumbnails/poster.jpg").status_code == 200


def test_unpublished_renditions_other_plans_and_bare_plans_are_not_served(client, playable):
    video = playable()
    base = f"/media/{video['id']}"
    for name in (f"{video['plan']}/cmaf/480p/00000.m4s", f"{uuid.uuid4()}/cmaf/240p/00000.m4s", video["plan"],
                 f"{video['plan']}/mp4/240p.mp4", "cmaf/master.m3u8"):
        assert_problem(client.get(f"{base}/{name}"), 404)


def test_a_private_playable_video_has_briefly_cached_signed_manifests(client, uploader, playable):
    video = playable("private")
    location = client.get(f"/api/videos/stream/{video['id']}", headers=uploader, follow_redirects=False).headers["location"]
    manifest = client.get(location)
    assert manifest.status_code == 200 and manifest.headers["cache-control"] == "private, max-age=10"


def test_status_events_of_a_playable_video_name_its_renditions_then_end_ready(client, vodhub, uploader, playable):
    import threading
    import time

    from tests.integration.test_http_video_lifecycle import sse_events

    video = playable()

    def finish_later() -> None:
        time.sleep(1.0)
        ready = vodhub.videos.get_aggregate(uuid.UUID(video["id"]))
        renditions = [msgspec.structs.replace(ready.renditions[0], mp4="x"), *ready.renditions[1:]]
        ready.record_processed(duration_s=8.0, width=854, height=480, renditions=renditions,
                               manifests=ready.manifests, thumbnails=Thumbnails())
        vodhub.videos.save(ready)

    threading.Thread(target=finish_later).start()
    events = sse_events(client.get(f"/api/videos/{video['id']}/events", headers=uploader).text)
    assert events[:3] == [("status", "processing"), ("rendition", '{"name":"240p","width":416,"height":234}'),
                          ("progress", '{"progress":0.0}')]
    assert events[-1] == ("status", "ready")
    again = sse_events(client.get(f"/api/videos/{video['id']}/events", headers=uploader).text)
    assert again == [("status", "ready")]  # a final status is the first and only event
