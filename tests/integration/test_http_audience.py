"""The audience over HTTP on the embedded app: genres, merge patch, likes, comments, views,
history, related videos and stats (catalog projected from the log, views counted as the
analytics consumer does)."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.api import bearer, login, register
from tests.integration.test_http_accounts import assert_problem

NO_SUCH = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def bob(client) -> dict:
    register(client, "bob")
    return bearer(login(client, "bob"))


@pytest.fixture
def carol(client) -> dict:
    register(client, "carol")
    return bearer(login(client, "carol"))


def video(client, headers, video_id) -> dict:
    response = client.get(f"/api/videos/{video_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def fields(response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


# --- genres and merge patch ------------------------------------------------------------------


def test_genres_are_listed(client, uploader):
    genres = client.get("/api/videos/genres", headers=uploader).json()
    assert "music" in genres and "howto" in genres
    assert_problem(client.get("/api/videos/genres"), 401)


def test_genre_at_upload_and_unknown_genres_are_422(client, uploader, small_clip):
    files = {"file": ("clip.mp4", small_clip, "video/mp4")}
    response = client.post("/api/videos/upload", headers=uploader, data={"genre": "Music"}, files=files)
    assert response.status_code == 202 and response.json()["genre"] == "music"
    refused = client.post("/api/videos/upload", headers=uploader, data={"genre": "opera"}, files=files)
    assert_problem(refused, 422)
    assert fields(refused) == {"genre"} and "music" in refused.json()["errors"][0]["message"]


def test_patch_is_a_json_merge_patch(client, uploader, make_ready):
    video_id = make_ready(uploader)["id"]
    edited = client.patch(f"/api/videos/{video_id}", headers=uploader, json={
        "description": "about", "tags": ["a"], "genre": "travel"}).json()
    assert (edited["description"], edited["tags"], edited["genre"]) == ("about", ["a"], "travel")
    unchanged = client.patch(f"/api/videos/{video_id}", headers=uploader, json={"title": "New"}).json()
    assert (unchanged["title"], unchanged["genre"], unchanged["tags"]) == ("New", "travel", ["a"])
    cleared = client.patch(f"/api/videos/{video_id}", headers=uploader, json={
        "description": None, "tags": None, "genre": None}).json()
    assert (cleared["description"], cleared["tags"], cleared["genre"], cleared["title"]) == ("", [], None, "New")
    for field in ("title", "visibility"):
        refused = client.patch(f"/api/videos/{video_id}", headers=uploader, json={field: None})
        assert_problem(refused, 422)
        assert fields(refused) == {field}
    assert_problem(client.patch(f"/api/videos/{video_id}", headers=uploader, json={"genre": "opera"}), 422)
    assert video(client, uploader, video_id)["title"] == "New"


def test_listing_filters_by_genre(client, uploader, make_ready, project):
    music, film = make_ready(uploader)["id"], make_ready(uploader)["id"]
    client.patch(f"/api/videos/{music}", headers=uploader, json={"genre": "music"})
    client.patch(f"/api/videos/{film}", headers=uploader, json={"genre": "film"})
    project()
    items = client.get("/api/videos?genre=music", headers=uploader).json()["items"]
    assert [item["id"] for item in items] == [music] and items[0]["genre"] == "music"
    refused = client.get("/api/videos?genre=opera", headers=uploader)
    assert_problem(refused, 422)
    assert fields(refused) == {"genre"}
    assert_problem(client.get("/api/videos?sort=oldest", headers=uploader), 422)


# --- likes ---------------------------------------------------------------------------------------


def test_likes_are_idempotent_and_counted(client, uploader, bob, make_ready, project):
    video_id = make_ready(uploader)["id"]
    for _ in range(2):
        assert client.put(f"/api/videos/{video_id}/like", headers=bob).status_code == 204
    project()
    shown = video(client, bob, video_id)
    assert (shown["like_count"], shown["liked_by_me"]) == (1, True)
    assert video(client, uploader, video_id)["liked_by_me"] is False
    listed = client.get("/api/videos", headers=bob).json()["items"][0]
    assert (listed["like_count"], listed["liked_by_me"]) == (1, True)
    for _ in range(2):
        assert client.delete(f"/api/videos/{video_id}/like", headers=bob).status_code == 204
    project()
    assert (video(client, bob, video_id)["like_count"], video(client, bob, video_id)["liked_by_me"]) == (0, False)


def test_sort_by_likes(client, uploader, bob, carol, make_ready, project):
    once, twice, never = (make_ready(uploader)["id"] for _ in range(3))
    for headers, liked in ((bob, once), (bob, twice), (carol, twice)):
        client.put(f"/api/videos/{liked}/like", headers=headers)
    project()
    ids = [item["id"] for item in client.get("/api/videos?sort=likes", headers=bob).json()["items"]]
    assert ids == [twice, once, never]
    first = client.get("/api/videos?sort=likes&limit=1", headers=bob).json()
    second = client.get(f"/api/videos?sort=likes&limit=2&cursor={first['next_cursor']}", headers=bob).json()
    assert [item["id"] for item in second["items"]] == [once, never]


def test_likes_of_videos_one_may_not_see(client, uploader, bob, make_ready):
    private = make_ready(uploader, visibility="private")["id"]
    assert_problem(client.put(f"/api/videos/{private}/like", headers=bob), 404)
    assert_problem(client.put(f"/api/videos/{NO_SUCH}/like", headers=bob), 404)
    assert_problem(client.put(f"/api/videos/{private}/like"), 401)
    assert client.put(f"/api/videos/{private}/like", headers=uploader).status_code == 204


# --- comments ---------------------------------------------------------------------------------------


def comment(client, headers, video_id, body="Nice", parent_id=None):
    response = client.post(f"/api/videos/{video_id}/comments", headers=headers,
                           json={"body": body, **({"parent_id": parent_id} if parent_id else {})})
    assert response.status_code == 201, response.text
    return response.json()


def test_comments_threads_and_pages(client, uploader, bob, make_ready, project):
    video_id = make_ready(uploader)["id"]
    first = comment(client, bob, video_id, "<script>alert(1)</script>\nsecond line")
    assert first["author"]["username"] == "bob" and first["body"] == "<script>alert(1)</script>\nsecond line"
    reply = comment(client, uploader, video_id, "thanks", parent_id=first["id"])
    assert reply["parent_id"] == first["id"]
    refused = client.post(f"/api/videos/{video_id}/comments", headers=bob, json={"body": "x", "parent_id": reply["id"]})
    assert fields(refused) == {"parent_id"}
    third = comment(client, bob, video_id, "third")
    project()
    page = client.get(f"/api/videos/{video_id}/comments?limit=2", headers=bob).json()
    assert [item["id"] for item in page["items"]] == [first["id"], reply["id"]]
    rest = client.get(f"/api/videos/{video_id}/comments?cursor={page['next_cursor']}", headers=bob).json()
    assert [item["id"] for item in rest["items"]] == [third["id"]] and rest["next_cursor"] is None
    assert video(client, bob, video_id)["comment_count"] == 3


@pytest.mark.parametrize("body", [{"body": ""}, {"body": "   "}, {"body": "x" * 5001}, {"body": "a\x00b"}, {}])
def test_bad_comments_are_422(client, uploader, make_ready, body):
    video_id = make_ready(uploader)["id"]
    response = client.post(f"/api/videos/{video_id}/comments", headers=uploader, json=body)
    assert_problem(response, 422)
    assert fields(response) == {"body"}


def test_editing_and_deleting_comments(client, uploader, bob, carol, make_ready, project):
    video_id = make_ready(uploader)["id"]
    mine = comment(client, bob, video_id)
    assert_problem(client.patch(f"/api/comments/{mine['id']}", headers=carol, json={"body": "hijacked"}), 403)
    assert_problem(client.patch(f"/api/comments/{mine['id']}", headers=uploader, json={"body": "owner"}), 403)
    edited = client.patch(f"/api/comments/{mine['id']}", headers=bob, json={"body": "better"})
    assert edited.status_code == 200 and edited.json()["body"] == "better" and edited.json()["edited_at"]
    assert_problem(client.delete(f"/api/comments/{mine['id']}", headers=carol), 403)
    assert client.delete(f"/api/comments/{mine['id']}", headers=uploader).status_code == 204  # the video's owner
    assert_problem(client.delete(f"/api/comments/{NO_SUCH}", headers=uploader), 404)
    project()
    item = client.get(f"/api/videos/{video_id}/comments", headers=bob).json()["items"][0]
    assert (item["deleted"], item["body"]) == (True, "")
    assert video(client, bob, video_id)["comment_count"] == 0


def test_comments_of_private_and_deleted_videos(client, vodhub, uploader, bob, make_ready, project):
    private = make_ready(uploader, visibility="private")["id"]
    comment(client, uploader, private)
    assert_problem(client.get(f"/api/videos/{private}/comments", headers=bob), 404)
    assert_problem(client.post(f"/api/videos/{private}/comments", headers=bob, json={"body": "hi"}), 404)
    public = make_ready(uploader)["id"]
    said = comment(client, bob, public)
    client.put(f"/api/videos/{public}/like", headers=bob)
    assert client.delete(f"/api/videos/{public}", headers=uploader).status_code == 204
    project()
    assert_problem(client.get(f"/api/videos/{public}/comments", headers=bob), 404)
    assert_problem(client.patch(f"/api/comments/{said['id']}", headers=bob, json={"body": "x"}), 404)
    assert vodhub.catalog.counts(uuid.UUID(public)) == (0, 0, 0)  # its likes and comments are gone


def test_comments_are_rate_limited(client, uploader, make_ready):
    video_id = make_ready(uploader)["id"]
    statuses = [client.post(f"/api/videos/{video_id}/comments", headers=uploader, json={"body": f"#{n}"}).status_code
                for n in range(21)]
    assert statuses == [201] * 20 + [429]
    assert client.get(f"/api/videos/{video_id}/comments", headers=uploader).status_code == 200  # other routes


# --- views, history, related, stats ---------------------------------------------------------------------


def test_views_count_once_per_viewer_in_the_window(client, uploader, bob, carol, make_ready, project, count_views):
    video_id = make_ready(uploader)["id"]
    for headers in (bob, bob, carol):
        assert client.post(f"/api/videos/{video_id}/views", headers=headers).status_code == 202
    assert count_views() == 2
    project()
    assert video(client, bob, video_id)["view_count"] == 2
    assert_problem(client.post(f"/api/videos/{video_id}/views"), 401)
    assert_problem(client.post(f"/api/videos/{NO_SUCH}/views", headers=bob), 404)
    private = make_ready(uploader, visibility="private")["id"]
    assert_problem(client.post(f"/api/videos/{private}/views", headers=bob), 404)


def test_sort_by_views_history_related_and_stats(client, clock, uploader, bob, carol, make_ready, project, count_views):
    a, b, c, d = (make_ready(uploader)["id"] for _ in range(4))
    client.patch(f"/api/videos/{d}", headers=uploader, json={"genre": "music", "tags": ["jazz"]})
    client.patch(f"/api/videos/{a}", headers=uploader, json={"genre": "music"})
    for headers, watched in ((bob, [a, b, c]), (carol, [a, b])):
        for video_id in watched:
            client.post(f"/api/videos/{video_id}/views", headers=headers)
            clock.advance(1)
    assert count_views() == 5
    project()
    ranked = [item["id"] for item in client.get("/api/videos?sort=views", headers=bob).json()["items"]]
    assert ranked[:2] in ([b, a], [a, b]) and ranked[2:] == [c, d]

    history = client.get("/api/users/me/history", headers=bob).json()
    assert [item["video"]["id"] for item in history["items"]] == [c, b, a]
    page = client.get("/api/users/me/history?limit=2", headers=bob).json()
    assert len(page["items"]) == 2 and page["next_cursor"]

    related = [item["id"] for item in client.get(f"/api/videos/{a}/related", headers=carol).json()["items"]]
    assert related == [b, c, d]  # co-viewed by two, then by one, then the same genre
    assert a not in related

    stats = client.get(f"/api/videos/{a}/stats", headers=uploader).json()
    assert (stats["view_count"], sum(day["views"] for day in stats["views_by_day"])) == (2, 2)
    assert_problem(client.get(f"/api/videos/{a}/stats", headers=bob), 403)
    assert_problem(client.get(f"/api/videos/{NO_SUCH}/stats", headers=uploader), 404)

    assert client.delete("/api/users/me/history", headers=bob).status_code == 204
    assert client.get("/api/users/me/history", headers=bob).json()["items"] == []
    assert_problem(client.get("/api/users/me/history"), 401)


def test_related_videos_hide_what_the_caller_may_not_see(client, uploader, bob, make_ready, project, count_views):
    seen, hidden = make_ready(uploader)["id"], make_ready(uploader, visibility="private")["id"]
    for video_id in (seen, hidden):
        client.post(f"/api/videos/{video_id}/views", headers=uploader)
    count_views()
    project()
    assert client.get(f"/api/videos/{seen}/related", headers=bob).json()["items"] == []
    assert [item["id"] for item in client.get(f"/api/videos/{seen}/related", headers=uploader).json()["items"]] == [hidden]
    assert_problem(client.get(f"/api/videos/{hidden}/related", headers=bob), 404)


ROUTES = [
    ("PUT", "/api/videos/{id}/like"), ("DELETE", "/api/videos/{id}/like"), ("GET", "/api/videos/{id}/comments"),
    ("POST", "/api/videos/{id}/comments"), ("POST", "/api/videos/{id}/views"), ("GET", "/api/videos/{id}/related"),
    ("GET", "/api/videos/{id}/stats"), ("PATCH", "/api/comments/{id}"), ("DELETE", "/api/comments/{id}"),
]


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_audience_route_needs_a_token_and_an_existing_thing(client, uploader, method, path):
    url = path.format(id=NO_SUCH)
    body = {"json": {"body": "hi"}} if method in ("POST", "PATCH") and "views" not in path else {}
    anonymous = client.request(method, url, **body)
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert_problem(client.request(method, url, headers=uploader, **body), 404)


def test_malformed_audience_requests_are_4xx(client, uploader, make_ready):
    video_id = make_ready(uploader)["id"]
    said = comment(client, uploader, video_id)
    assert_problem(client.patch(f"/api/comments/{said['id']}", headers=uploader, json={"body": ""}), 422)
    assert_problem(client.patch(f"/api/comments/{said['id']}", headers=uploader, json={}), 422)
    assert_problem(client.post(f"/api/videos/{video_id}/comments", headers=uploader, json={"body": "x", "parent_id": "no"}),
                   422)
    assert_problem(client.get(f"/api/videos/{video_id}/comments?limit=101", headers=uploader), 422)
    assert_problem(client.get(f"/api/videos/{video_id}/comments?cursor=garbage!!", headers=uploader), 422)
    assert_problem(client.get("/api/users/me/history?cursor=garbage!!", headers=uploader), 422)
    assert_problem(client.put("/api/videos/not-a-uuid/like", headers=uploader), 404)
