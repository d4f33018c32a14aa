"""Resumable uploads over tus 1.0.0: a real clip sent in pieces becomes the same video a
multipart POST makes, and every protocol refusal keeps nothing of the refused bytes."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime

import anyio
import pytest

from application.accounts import Principal
from tests.fixtures.api import bearer, login, register
from tests.fixtures.uploads import recorded_events, stored_keys
from tests.integration.test_http_accounts import assert_problem

UPLOADS = "/api/videos/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(client, headers, length: int, **metadata: str):
    fields = ",".join(f"{key} {b64(value)}" for key, value in metadata.items())
    extra = {"Upload-Metadata": fields} if fields else {}
    return client.post(UPLOADS, headers={**headers, **TUS, "Upload-Length": str(length), **extra})


def new_upload(client, headers, length: int, **metadata: str) -> str:
    response = create(client, headers, length, **metadata)
    assert response.status_code == 201, response.text
    return response.headers["location"]


def send(client, headers, location: str, offset: int, data: bytes, **extra: str):
    return client.patch(location, content=data, headers={**headers, **TUS, **OCTETS, "Upload-Offset": str(offset), **extra})


def offset_of(client, headers, location: str) -> int:
    response = client.head(location, headers={**headers, **TUS})
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def assert_head_status(response, status: int) -> None:
    """A HEAD answer has the problem's status and headers but no body."""
    assert response.status_code == status, response.text
    assert response.headers["tus-resumable"] == "1.0.0"


def parts(vodhub) -> list[str]:
    return stored_keys(vodhub.storage, "uploads")


def test_a_clip_in_three_chunks_becomes_a_video(client, vodhub, uploader, small_clip):
    location = new_upload(client, uploader, len(small_clip), filename="Beach Day.mp4", tags="beach, Sun",
                          visibility="unlisted", description="sun", genre="Travel")
    assert location.startswith(f"{UPLOADS}/")
    third = len(small_clip) // 3
    pieces = [small_clip[:third], small_clip[third:2 * third], small_clip[2 * third:]]
    offset = 0
    for piece in pieces[:2]:
        response = send(client, uploader, location, offset, piece)
        assert response.status_code == 204, response.text
        offset += len(piece)
        assert int(response.headers["upload-offset"]) == offset and "upload-expires" in response.headers
        assert "vodhub-video-id" not in response.headers
    assert len(parts(vodhub)) == 2

    final = send(client, uploader, location, offset, pieces[2])
    assert final.status_code == 204, final.text
    video_id = final.headers["vodhub-video-id"]
    assert final.headers["location"] == f"/api/videos/{video_id}"
    assert final.headers["tus-resumable"] == "1.0.0"
    assert int(final.headers["upload-offset"]) == len(small_clip)

    later = client.head(location, headers={**uploader, **TUS})
    assert (later.headers["vodhub-video-id"], later.headers["location"]) == (video_id, f"/api/videos/{video_id}")
    assert later.headers["upload-length"] == str(len(small_clip)) and later.headers["cache-control"] == "no-store"
    video = client.get(f"/api/videos/{video_id}", headers=uploader).json()
    assert (video["title"], video["tags"], video["visibility"], video["status"], video["genre"]) == (
        "Beach Day", ["beach", "sun"], "unlisted", "uploaded", "travel")
    assert stored_keys(vodhub.storage) == [f"raw/{video_id}/original.mp4"]
    assert parts(vodhub) == []
    stored = vodhub.videos.repository.get(uuid.UUID(video_id))
    assert stored.source_sha256 == hashlib.sha256(small_clip).hexdigest()
    assert send(client, uploader, location, len(small_clip), b"more").status_code == 409


def test_an_interrupted_chunk_is_resumed_from_the_offset_head_gives(client, vodhub, uploader, small_clip):
    location = new_upload(client, uploader, len(small_clip), filename="clip.mp4")
    assert send(client, uploader, location, 0, small_clip[:1000]).status_code == 204
    upload_id = uuid.UUID(location.rsplit("/", 1)[1])
    owner = Principal(user_id=vodhub.uploads.repository.get(upload_id).owner_id, username="alice", roles=("user",),
                      token_id="t", session_id="s", expires_at=datetime.now(UTC))

    async def cut_off():
        yield small_clip[1000:2000]
        raise ConnectionResetError("the client went away")

    async def interrupted():
        try:
            await vodhub.uploads.append(owner, upload_id, 1000, cut_off())
        except ConnectionResetError:
            return
        raise AssertionError("the interruption was swallowed")

    anyio.run(interrupted)
    assert offset_of(client, uploader, location) == 1000
    response = send(client, uploader, location, 1000, small_clip[1000:])
    assert response.status_code == 204 and "vodhub-video-id" in response.headers


def test_a_wrong_offset_is_409(client, vodhub, uploader, small_clip):
    location = new_upload(client, uploader, len(small_clip))
    assert_problem(send(client, uploader, location, 5, small_clip[5:100]), 409)
    assert offset_of(client, uploader, location) == 0 and parts(vodhub) == []


def test_a_wrong_content_type_is_415(client, uploader, small_clip):
    location = new_upload(client, uploader, len(small_clip))
    response = send(client, uploader, location, 0, small_clip[:100], **{"Content-Type": "application/octet-stream"})
    assert_problem(response, 415)
    assert response.headers["tus-resumable"] == "1.0.0"


def test_without_tus_resumable_it_is_412_naming_the_version(client, uploader, small_clip):
    response = client.post(UPLOADS, headers={**uploader, "Upload-Length": "10"})
    assert_problem(response, 412)
    assert response.headers["tus-version"] == "1.0.0"
    location = new_upload(client, uploader, len(small_clip))
    response = client.patch(location, content=b"x", headers={**uploader, **OCTETS, "Upload-Offset": "0",
                                                             "Tus-Resumable": "0.2.2"})
    assert_problem(response, 412)


@pytest.mark.parametrize("settings_overrides", [{"max_upload_bytes": 1000}])
def test_creation_needs_a_length_within_the_limit(client, uploader):
    assert_problem(client.post(UPLOADS, headers={**uploader, **TUS}), 400)
    assert_problem(client.post(UPLOADS, headers={**uploader, **TUS, "Upload-Defer-Length": "1"}), 400)
    assert_problem(create(client, uploader, 1001), 413)
    assert create(client, uploader, 1000).status_code == 201


def test_bad_details_are_refused_at_creation(client, uploader):
    problem = assert_problem(create(client, uploader, 100, visibility="everyone"), 422)
    assert problem["errors"][0]["field"] == "visibility"
    problem = assert_problem(create(client, uploader, 100, genre="opera"), 422)
    assert problem["errors"][0]["field"] == "genre" and "music" in problem["errors"][0]["message"]
    assert_problem(client.post(UPLOADS, headers={**uploader, **TUS, "Upload-Length": "9",
                                                 "Upload-Metadata": "title not-base64!"}), 400)


def test_bytes_beyond_the_length_are_refused_and_not_kept(client, vodhub, uploader, small_clip):
    location = new_upload(client, uploader, 100)
    assert_problem(send(client, uploader, location, 0, small_clip[:150]), 413)
    assert offset_of(client, uploader, location) == 0 and parts(vodhub) == []


def test_a_chunk_matching_its_checksum_is_kept(client, vodhub, uploader, small_clip):
    location = new_upload(client, uploader, len(small_clip))
    digest = base64.b64encode(hashlib.sha1(small_clip[:500]).digest()).decode()
    response = send(client, uploader, location, 0, small_clip[:500], **{"Upload-Checksum": f"sha1 {digest}"})
    assert response.status_code == 204 and response.headers["upload-offset"] == "500"


def test_a_chunk_not_matching_its_checksum_is_460_and_discarded(client, vodhub, uploader, small_clip):
    location = new_upload(client, uploader, len(small_clip))
    digest = base64.b64encode(hashlib.sha1(b"something else").digest()).decode()
    response = send(client, uploader, location, 0, small_clip[:500], **{"Upload-Checksum": f"sha1 {digest}"})
    assert_problem(response, 460)
    assert offset_of(client, uploader, location) == 0 and parts(vodhub) == []
    assert_problem(send(client, uploader, location, 0, b"x", **{"Upload-Checksum": f"crc99 {digest}"}), 400)


def test_termination_drops_the_upload_and_its_bytes(client, vodhub, uploader, small_clip):
    location = new_upload(client, uploader, len(small_clip))
    assert send(client, uploader, location, 0, small_clip[:500]).status_code == 204
    response = client.delete(location, headers={**uploader, **TUS})
    assert response.status_code == 204 and response.headers["tus-resumable"] == "1.0.0"
    assert parts(vodhub) == []
    assert_head_status(client.head(location, headers={**uploader, **TUS}), 404)
    assert_problem(send(client, uploader, location, 500, small_clip[500:]), 404)


def test_another_users_upload_is_not_found(client, vodhub, uploader, small_clip):
    location = new_upload(client, uploader, len(small_clip))
    register(client, "bob")
    bob = bearer(login(client, "bob"))
    assert_head_status(client.head(location, headers={**bob, **TUS}), 404)
    assert_problem(send(client, bob, location, 0, small_clip[:100]), 404)
    assert_problem(client.delete(location, headers={**bob, **TUS}), 404)
    assert offset_of(client, uploader, location) == 0 and parts(vodhub) == []


def test_uploads_need_a_token(client):
    assert_problem(client.post(UPLOADS, headers={**TUS, "Upload-Length": "10"}), 401)


def test_non_video_bytes_are_415_at_completion_and_leave_nothing(client, vodhub, uploader):
    payload = b"just some text, not a video" * 40
    location = new_upload(client, uploader, len(payload), filename="movie.mp4")
    assert send(client, uploader, location, 0, payload[:300]).status_code == 204
    assert_problem(send(client, uploader, location, 300, payload[300:]), 415)
    assert stored_keys(vodhub.storage) == [] and parts(vodhub) == []
    assert recorded_events(vodhub.videos) == 0
    assert_head_status(client.head(location, headers={**uploader, **TUS}), 404)


def test_an_expired_upload_is_gone_with_its_bytes(client, vodhub, clock, uploader, small_clip):
    response = create(client, uploader, len(small_clip))
    assert "GMT" in response.headers["upload-expires"]
    location = response.headers["location"]
    assert send(client, uploader, location, 0, small_clip[:500]).status_code == 204
    clock.advance(24 * 3600 + 1)
    uploader = bearer(login(client, "alice"))  # the old access token expired too
    assert_head_status(client.head(location, headers={**uploader, **TUS}), 410)
    assert_problem(send(client, uploader, location, 500, small_clip[500:]), 410)
    assert parts(vodhub) == []


def test_options_advertises_the_server(client, vodhub):
    response = client.options(UPLOADS)
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {"creation", "termination", "expiration", "checksum"}
    assert response.headers["tus-max-size"] == str(vodhub.videos.max_upload_bytes)
    assert "sha1" in response.headers["tus-checksum-algorithm"].split(",")


def test_openapi_lists_the_tus_routes(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert {"post", "options"} <= paths[UPLOADS].keys()
    assert {"head", "patch", "delete"} <= paths[f"{UPLOADS}/{{upload_id}}"].keys()
