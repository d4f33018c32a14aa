"""POST /api/videos/upload over HTTP: the happy path and every bad input of the issue, each
leaving no object and no event behind."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import pytest

from application.accounts import Principal
from entrypoints.settings import Settings
from tests.fixtures.api import bearer, login, register, running_api
from tests.fixtures.uploads import recorded_events, stored_keys
from tests.integration.test_http_accounts import assert_problem

BOUNDARY = "vodhubboundary"


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """(name, filename or None, body) parts as a multipart/form-data body."""
    out = b""
    for name, filename, body in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + body + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def post_raw(client, headers, body: bytes, content_type: str = f"multipart/form-data; boundary={BOUNDARY}"):
    return client.post("/api/videos/upload", content=body, headers={**headers, "content-type": content_type})


def assert_nothing_left(vodhub):
    assert stored_keys(vodhub.storage) == []
    assert recorded_events(vodhub.videos) == 0


def test_upload_stores_the_original_and_records_the_video(client, vodhub, uploader, small_clip):
    response = client.post(
        "/api/videos/upload", headers=uploader,
        files={"file": ("Beach Day.mp4", small_clip, "application/octet-stream")},
        data={"description": "sun", "tags": "Beach, sun", "visibility": "unlisted"},
    )
    assert response.status_code == 202, response.text
    video = response.json()
    assert response.headers["location"] == f"/api/videos/{video['id']}"
    assert (video["title"], video["status"], video["tags"], video["visibility"]) == (
        "Beach Day", "uploaded", ["beach", "sun"], "unlisted")
    assert stored_keys(vodhub.storage) == [f"raw/{video['id']}/original.mp4"]
    assert client.get(response.headers["location"], headers=uploader).json()["id"] == video["id"]
    stored = vodhub.videos.repository.get(uuid.UUID(video["id"]))
    assert (stored.source_size, stored.source_sha256) == (len(small_clip), hashlib.sha256(small_clip).hexdigest())
    assert stored.source_content_type == "video/mp4"


def test_fields_may_come_before_or_after_the_file(client, vodhub, uploader, small_clip):
    body = multipart(("file", "a.mkv", small_clip), ("title", None, b"After the file"))
    response = post_raw(client, uploader, body)
    assert response.status_code == 202 and response.json()["title"] == "After the file"


@pytest.mark.parametrize("payload", [b"just some text, not a video" * 40, b"\x89PNG\r\n\x1a\n" + b"\0" * 200])
def test_non_video_bytes_named_mp4_are_415(client, vodhub, uploader, payload):
    response = client.post("/api/videos/upload", headers=uploader, files={"file": ("movie.mp4", payload, "video/mp4")})
    assert_problem(response, 415)
    assert_nothing_left(vodhub)


def test_empty_file_is_415(client, vodhub, uploader):
    assert_problem(client.post("/api/videos/upload", headers=uploader, files={"file": ("e.mp4", b"", "video/mp4")}), 415)
    assert_nothing_left(vodhub)


def test_truncated_header_is_415(client, vodhub, uploader, small_clip):
    response = client.post("/api/videos/upload", headers=uploader, files={"file": ("t.mp4", small_clip[:64], "video/mp4")})
    assert_problem(response, 415)
    assert_nothing_left(vodhub)


def test_missing_file_part_is_422(client, vodhub, uploader):
    problem = assert_problem(post_raw(client, uploader, multipart(("title", None, b"no file"))), 422)
    assert problem["errors"][0]["field"] == "file"
    assert_nothing_left(vodhub)


def test_browser_empty_file_input_counts_as_missing(client, vodhub, uploader):
    assert_problem(post_raw(client, uploader, multipart(("file", "", b""))), 422)


def test_two_file_parts_are_422(client, vodhub, uploader, small_clip):
    body = multipart(("file", "a.mp4", small_clip), ("file", "b.mp4", small_clip))
    assert_problem(post_raw(client, uploader, body), 422)
    assert_nothing_left(vodhub)


def test_missing_boundary_is_400(client, vodhub, uploader, small_clip):
    assert_problem(post_raw(client, uploader, multipart(("file", "a.mp4", small_clip)), "multipart/form-data"), 400)
    assert_nothing_left(vodhub)


def test_body_cut_before_the_closing_boundary_is_400(client, vodhub, uploader, small_clip):
    body = multipart(("file", "a.mp4", small_clip))[:-40]
    assert_problem(post_raw(client, uploader, body), 400)
    assert_nothing_left(vodhub)


def test_not_multipart_is_415(client, vodhub, uploader, small_clip):
    assert_problem(post_raw(client, uploader, small_clip, "video/mp4"), 415)


@pytest.mark.parametrize("field, value", [
    ("title", b"t" * 10_000),
    ("tags", b"fine,bad\x01tag"),
    ("visibility", b"everyone"),
    ("description", b"d" * 70_000),
    ("title", b"\xff\xfe not utf-8"),
])
def test_invalid_fields_are_422_and_leave_nothing(client, vodhub, uploader, small_clip, field, value):
    body = multipart(("file", "a.mp4", small_clip), (field, None, value))
    problem = assert_problem(post_raw(client, uploader, body), 422)
    assert problem["errors"][0]["field"] == field
    assert_nothing_left(vodhub)


def test_over_the_size_limit_is_413_and_leaves_nothing(tmp_path, clock, small_clip):
    settings = Settings(data_dir=tmp_path / "var", max_upload_bytes=len(small_clip) - 1)
    with running_api(settings, clock) as (vodhub, client):
        register(client, "alice")
        uploader = bearer(login(client, "alice"))
        response = client.post("/api/videos/upload", headers=uploader, files={"file": ("a.mp4", small_clip, "video/mp4")})
        assert_problem(response, 413)
        assert_nothing_left(vodhub)


@pytest.mark.parametrize("settings_overrides", [{"max_upload_bytes": 1000}])
def test_announced_length_over_the_limit_is_refused_before_reading(client, uploader):
    headers = {**uploader, "content-length": str(10 * 1024 * 1024)}
    response = post_raw(client, headers, b"x" * 10)
    assert_problem(response, 413)


def test_upload_needs_a_token(client, vodhub, small_clip):
    assert_problem(client.post("/api/videos/upload", files={"file": ("a.mp4", small_clip, "video/mp4")}), 401)
    assert_nothing_left(vodhub)


def test_private_video_is_not_found_for_others(client, vodhub, uploader, small_clip):
    from tests.fixtures.api import bearer, login, register

    response = client.post("/api/videos/upload", headers=uploader, data={"visibility": "private"},
                           files={"file": ("a.mp4", small_clip, "video/mp4")})
    location = response.headers["location"]
    register(client, "bob")
    assert_problem(client.get(location, headers=bearer(login(client, "bob"))), 404)
    assert client.get(location, headers=uploader).status_code == 200


def test_unknown_video_is_404(client, uploader):
    assert_problem(client.get("/api/videos/00000000-0000-0000-0000-000000000000", headers=uploader), 404)
    assert_problem(client.get("/api/videos/not-a-uuid", headers=uploader), 404)


def test_a_json_body_over_the_request_limit_is_413(client):
    response = client.post("/api/auth/login", content=b'{"username_or_email": "' + b"a" * 2_000_000 + b'"}',
                           headers={"content-type": "application/json"})
    assert_problem(response, 413)


def test_an_upload_that_stalls_is_408_and_leaves_nothing(vodhub, small_clip):
    import anyio

    from adapters.inbound.http.multipart import SlowUpload, upload_events

    async def stalling():
        yield b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        yield small_clip[:1000]
        await anyio.sleep(10)

    async def run():
        principal = Principal(user_id=uuid.uuid4(), username="a", roles=("user",), token_id="t", session_id="s",
                              expires_at=datetime.now(UTC))
        events = upload_events(f"multipart/form-data; boundary={BOUNDARY}", stalling(), read_timeout_s=0.3)
        await vodhub.videos.upload(principal, events)

    with pytest.raises(SlowUpload):
        anyio.run(run)
    assert_nothing_left(vodhub)


def test_request_limits_come_from_settings(tmp_path, clock):
    from litestar.testing import TestClient

    from adapters.outbound.argon2_hasher import Argon2PasswordHasher
    from entrypoints.api import build_api
    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import Settings

    settings = Settings(data_dir=tmp_path / "var", max_request_bytes=100, body_read_timeout_s=7.0)
    vodhub = bootstrap(settings, clock=clock, hasher=Argon2PasswordHasher.fast_for_tests())
    app = build_api(vodhub)
    assert app.state["upload_read_timeout_s"] == 7.0
    with TestClient(app) as small:
        response = small.post("/api/auth/login", json={"username_or_email": "a" * 200, "password": "x"})
        assert_problem(response, 413)
    vodhub.close()
