"""Streaming over HTTP: the stream endpoint's choices and /media's byte ranges, validators,
cache headers, signed paths and refusals."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.api import bearer, login, register
from tests.integration.test_http_accounts import assert_problem


@pytest.fixture
def public_video(make_ready, uploader):
    return make_ready(uploader)


def media(video: dict, name: str) -> str:
    return f"/media/{video['id']}/{name}"


# --- /media ------------------------------------------------------------------------------


def test_whole_file_with_validators_and_cache_headers(client, public_video):
    response = client.get(media(public_video, "mp4/240p.mp4"))
    assert response.status_code == 200
    assert response.content == public_video["files"]["mp4/240p.mp4"]
    headers = response.headers
    assert headers["accept-ranges"] == "bytes" and headers["etag"].startswith('"')
    assert headers["last-modified"].endswith("GMT") and headers["content-type"] == "video/mp4"
    assert "immutable" in headers["cache-control"]


@pytest.mark.parametrize("name, media_type", [
    ("cmaf/master.m3u8", "application/vnd.apple.mpegurl"), ("cmaf/manifest.mpd", "application/dash+xml"),
    ("cmaf/chunk_0_00001.m4s", "video/iso.segment"), ("thumbnails/poster.jpg", "image/jpeg"),
])
def test_content_types(client, public_video, name, media_type):
    response = client.get(media(public_video, name))
    assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-99", 0, 100), ("bytes=1000-", 1000, None), ("bytes=-777", -777, None),
    ("bytes=99990-200000", 99990, None),
])
def test_ranges_are_byte_exact(client, public_video, header, start, end):
    data = public_video["files"]["cmaf/chunk_0_00001.m4s"]
    response = client.get(media(public_video, "cmaf/chunk_0_00001.m4s"), headers={"Range": header})
    expected = data[start:end] if end is not None else data[start:]
    assert response.status_code == 206 and response.content == expected
    first = len(data) + start if start < 0 else start
    assert response.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert response.headers["content-length"] == str(len(expected))


@pytest.mark.parametrize("header", ["bytes=100000-", "bytes=5000000-6000000", "bytes=-0"])
def test_unsatisfiable_range_is_416_with_the_size(client, public_video, header):
    response = client.get(media(public_video, "cmaf/chunk_0_00001.m4s"), headers={"Range": header})
    assert_problem(response, 416)
    assert response.headers["content-range"] == "bytes */100000"


@pytest.mark.parametrize("header", ["bytes=5-1", "bytes=0-1,4-5", "pages=1-2", "bytes=abc", "bytes=" + "9" * 40 + "-"])
def test_malformed_reversed_and_multi_ranges_get_the_whole_file(client, public_video, header):
    response = client.get(media(public_video, "cmaf/chunk_0_00001.m4s"), headers={"Range": header})
    assert response.status_code == 200 and len(response.content) == 100_000


def test_if_none_match_gives_304_and_if_range_guards_ranges(client, public_video):
    url = media(public_video, "mp4/240p.mp4")
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == public_video["files"]["mp4/240p.mp4"]


def test_head_sends_the_headers_only(client, public_video):
    response = client.head(media(public_video, "mp4/240p.mp4"), headers={"Range": "bytes=0-9"})
    assert response.status_code == 206 and response.content == b""
    assert response.headers["content-length"] == "10" and response.headers["content-range"].startswith("bytes 0-9/")


def test_a_manifest_answers_head_and_if_none_match_like_any_file(client, public_video):
    url = media(public_video, "cmaf/master.m3u8")
    full = client.get(url)
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    for name in ("content-length", "content-type", "etag", "cache-control", "last-modified"):
        assert head.headers[name] == full.headers[name], name
    assert full.headers["content-length"] == str(len(full.content))
    unchanged = client.get(url, headers={"If-None-Match": full.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == full.headers["etag"] and "x-request-id" in unchanged.headers


@pytest.mark.parametrize("path", [
    "/media/{id}/cmaf/..%2f..%2fraw/original.mp4",
    "/media/{id}/cmaf%2F..%2F..%2Fraw", "/media/{id}/raw/original.mp4",
    "/media/{id}//etc/passwd", "/media/{id}/cmaf/%2e%2e/%2e%2e/raw/original.mp4", "/media/not-a-uuid/mp4/240p.mp4",
    "/media/{other}/mp4/240p.mp4", "/media/{id}/mp4/none.mp4", "/media/{id}", "/media/{id}/cmaf\\..\\x",
])
def test_paths_outside_the_video_folders_are_404(client, public_video, path):
    url = path.format(id=public_video["id"], other=uuid.uuid4())
    assert_problem(client.get(url), 404)


def test_media_of_a_video_that_is_not_ready_is_404(client, vodhub, uploader, small_clip):
    video_id = client.post("/api/videos/upload", headers=uploader,
                           files={"file": ("a.mp4", small_clip, "video/mp4")}).json()["id"]
    assert_problem(client.get(f"/media/{video_id}/mp4/240p.mp4"), 404)


# --- signed paths ----------------------------------------------------------------------


def test_private_media_needs_its_signed_path(client, make_ready, uploader, clock):
    video = make_ready(uploader, visibility="private")
    assert_problem(client.get(media(video, "mp4/240p.mp4")), 404)
    location = client.get(f"/api/videos/stream/{video['id']}?format=mp4", headers=uploader).headers["location"]
    assert location.startswith("/media/t/") and location.endswith(f"/{video['id']}/mp4/240p.mp4")
    played = client.get(location)
    assert played.status_code == 200 and played.headers["cache-control"].startswith("private")
    token = location.split("/")[3]
    other = make_ready(uploader, visibility="unlisted")
    assert_problem(client.get(f"/media/t/{token}/{other['id']}/mp4/240p.mp4"), 403)
    assert_problem(client.get(f"/media/t/not.a-token/{video['id']}/mp4/240p.mp4"), 403)
    clock.advance(3601)
    assert_problem(client.get(location), 403)


def test_relative_uris_in_a_signed_playlist_stay_under_the_token(client, make_ready, uploader):
    video = make_ready(uploader, visibility="unlisted")
    master = client.get(f"/api/videos/stream/{video['id']}", headers=uploader).headers["location"]
    assert master.endswith("/cmaf/master.m3u8")
    playlist = client.get(master.rsplit("/", 1)[0] + "/media_0.m3u8")
    assert playlist.status_code == 200


# --- the stream endpoint ----------------------------------------------------------------


@pytest.mark.parametrize("query, accept, suffix", [
    ("", None, "cmaf/master.m3u8"), ("?format=dash", None, "cmaf/manifest.mpd"),
    ("?format=mp4", None, "mp4/240p.mp4"), ("", "application/dash+xml", "cmaf/manifest.mpd"),
    ("", "video/mp4", "mp4/240p.mp4"), ("", "application/vnd.apple.mpegurl", "cmaf/master.m3u8"),
    ("?quality=240p", None, "cmaf/media_0.m3u8"), ("?format=mp4&quality=240p", None, "mp4/240p.mp4"),
])
def test_stream_redirects_to_the_chosen_rendition(client, public_video, uploader, query, accept, suffix):
    headers = {**uploader, **({"Accept": accept} if accept else {})}
    response = client.get(f"/api/videos/stream/{public_video['id']}{query}", headers=headers)
    assert response.status_code == 302
    assert response.headers["location"] == f"/media/{public_video['id']}/{suffix}"


def test_quality_the_video_lacks_is_404_naming_the_available_ones(client, public_video, uploader):
    response = client.get(f"/api/videos/stream/{public_video['id']}?quality=1080p", headers=uploader)
    assert assert_problem(response, 404)["available"] == ["240p"]


@pytest.mark.parametrize("query", ["?format=flv", "?delivery=carrier-pigeon"])
def test_unknown_format_or_delivery_is_422(client, public_video, uploader, query):
    assert_problem(client.get(f"/api/videos/stream/{public_video['id']}{query}", headers=uploader), 422)


def test_stream_of_a_video_not_ready_is_409_with_its_status(client, uploader, small_clip):
    video_id = client.post("/api/videos/upload", headers=uploader,
                           files={"file": ("a.mp4", small_clip, "video/mp4")}).json()["id"]
    problem = assert_problem(client.get(f"/api/videos/stream/{video_id}", headers=uploader), 409)
    assert problem["video_status"] == "uploaded"


def test_stream_needs_a_token_and_hides_private_videos(client, make_ready, uploader):
    video = make_ready(uploader, visibility="private")
    assert_problem(client.get(f"/api/videos/stream/{video['id']}"), 401)
    register(client, "bob")
    assert_problem(client.get(f"/api/videos/stream/{video['id']}", headers=bearer(login(client, "bob"))), 404)
    assert_problem(client.get("/api/videos/stream/not-a-uuid", headers=uploader), 404)


def test_proxy_delivery_serves_ranges_itself(client, public_video, uploader):
    response = client.get(f"/api/videos/stream/{public_video['id']}?format=mp4&delivery=proxy",
                          headers={**uploader, "Range": "bytes=0-15"})
    assert response.status_code == 206 and response.content == public_video["files"]["mp4/240p.mp4"][:16]


def test_proxied_playlists_point_at_the_media_folder(client, public_video, uploader):
    response = client.get(f"/api/videos/stream/{public_video['id']}?delivery=proxy", headers=uploader)
    assert response.status_code == 200
    assert f"/media/{public_video['id']}/cmaf/media_0.m3u8" in response.text
    mpd = client.get(f"/api/videos/stream/{public_video['id']}?format=dash&delivery=proxy", headers=uploader).text
    assert f"<BaseURL>/media/{public_video['id']}/cmaf/</BaseURL>" in mpd
