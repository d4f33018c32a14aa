"""GET /api/videos over HTTP, from the catalog that the projection keeps."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.api import bearer, login, register
from tests.integration.test_http_accounts import assert_problem


@pytest.fixture
def library(client, make_ready, uploader, project):
    """Five ready public videos, one private and one unlisted, newest last."""
    public = []
    for title, tags in [("Sea shells", "sea,beach"), ("Mountain hike", "hiking"), ("Sea storm", "sea"),
                        ("City lights", "city"), ("Quiet forest", "forest,hiking")]:
        video = make_ready(uploader)
        client.patch(f"/api/videos/{video['id']}", headers=uploader, json={"title": title, "tags": tags.split(",")})
        public.append(video["id"])
    hidden = [make_ready(uploader, visibility=v)["id"] for v in ("private", "unlisted")]
    project()
    return public, hidden


def list_ids(client, headers, query: str = "") -> list[str]:
    response = client.get(f"/api/videos{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_lists_public_ready_videos_newest_first(client, uploader, library):
    public, hidden = library
    assert list_ids(client, uploader) == public[::-1]
    assert not set(hidden) & set(list_ids(client, uploader))


def test_items_carry_playable_links(client, uploader, library):
    item = client.get("/api/videos?limit=1", headers=uploader).json()["items"][0]
    assert item["streams"]["hls"] == f"/media/{item['id']}/cmaf/master.m3u8"
    assert item["thumbnails"]["poster"].endswith("/thumbnails/poster.jpg")


@pytest.mark.parametrize("query, titles", [
    ("?tag=sea", ["Sea storm", "Sea shells"]), ("?tag=HIKING", ["Quiet forest", "Mountain hike"]),
    ("?q=sea", ["Sea storm", "Sea shells"]), ("?q=forest%20quiet", ["Quiet forest"]), ("?q=nothing", []),
])
def test_filters(client, uploader, library, query, titles):
    items = client.get(f"/api/videos{query}", headers=uploader).json()["items"]
    assert [item["title"] for item in items] == titles


def test_owner_filter(client, uploader, library):
    owner = client.get("/api/users/me", headers=uploader).json()["id"]
    assert len(list_ids(client, uploader, f"?owner={owner}")) == 5
    assert list_ids(client, uploader, "?owner=00000000-0000-0000-0000-000000000000") == []


def test_cursor_pages_cover_everything_once(client, uploader, library):
    public, _ = library
    seen, cursor = [], ""
    while True:
        page = client.get(f"/api/videos?limit=2{cursor}", headers=uploader).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == public[::-1]


@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=x", "?cursor=garbage!!", "?owner=nope",
                                   "?q=" + "x" * 300])
def test_bad_parameters_are_4xx(client, uploader, query):
    response = client.get(f"/api/videos{query}", headers=uploader)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_listing_needs_a_token(client):
    assert_problem(client.get("/api/videos"), 401)


def test_my_videos_are_all_of_mine_whatever_their_visibility_and_nobody_elses(client, uploader, library):
    public, hidden = library
    mine = client.get("/api/users/me/videos?limit=100", headers=uploader)
    assert mine.status_code == 200 and [item["id"] for item in mine.json()["items"]] == [*hidden[::-1], *public[::-1]]
    register(client, "bob")
    assert client.get("/api/users/me/videos", headers=bearer(login(client, "bob"))).json()["items"] == []


def test_my_videos_show_how_far_processing_is(client, vodhub, uploader, small_clip, project):
    from domain.transcode_jobs import TranscodeJob

    response = client.post("/api/videos/upload", headers=uploader, files={"file": ("clip.mp4", small_clip, "video/mp4")})
    video_id = uuid.UUID(response.json()["id"])
    video = vodhub.videos.get_aggregate(video_id)
    video.start_processing()
    plan_id = uuid.uuid4()
    video.plan_processing(plan_id, duration_s=12.0, width=640, height=360)
    plan = {"rungs": [{"name": "240p"}, {"name": "360p"}], "chunks": [[0, 1, 0], [1, 2, 0]], "segments": [0, 1, 2],
            "audio": False}
    job = TranscodeJob.create(video_id, plan_id, video.attempts, plan)
    job.task_done("low", 0, {"tracks": {}})
    vodhub.videos.save(video, job)
    project()
    shown = client.get(f"/api/videos/{video_id}", headers=uploader).json()
    assert shown["status"] == "processing" and 0 < shown["progress"] < 1
    mine = client.get("/api/users/me/videos", headers=uploader).json()["items"]
    assert [(item["id"], item["progress"]) for item in mine] == [(str(video_id), shown["progress"])]


def test_my_videos_are_listed_while_the_event_store_is_away(client, vodhub, uploader, small_clip, project, monkeypatch):
    from application.errors import Unavailable

    response = client.post("/api/videos/upload", headers=uploader, files={"file": ("clip.mp4", small_clip, "video/mp4")})
    video = vodhub.videos.get_aggregate(uuid.UUID(response.json()["id"]))
    video.start_processing()
    vodhub.videos.save(video)
    project()

    def away(video_id):
        raise Unavailable("the event store is away")

    monkeypatch.setattr(vodhub.listing, "processing_progress", away)
    mine = client.get("/api/users/me/videos", headers=uploader)
    assert mine.status_code == 200 and [item["progress"] for item in mine.json()["items"]] == [0.0]
