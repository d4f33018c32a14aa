"""Two api processes on one Redis: what one answers from memory (a warm manifest, a known
token) stops being answered as soon as the other changes the video or logs the token out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from entrypoints.api import build_api
from entrypoints.bootstrap import Vodhub, bootstrap
from entrypoints.settings import Settings

TIMEOUT_S = 20.0


def eventually(check, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def redis_vodhub(tmp_path, clock, redis_url: str, redis_prefix: str) -> Vodhub:
    settings = Settings(data_dir=tmp_path / "var", redis_url=redis_url, redis_prefix=redis_prefix, rate_limits="off")
    return bootstrap(settings, clock=clock, hasher=Argon2PasswordHasher.fast_for_tests())


@pytest.fixture
def vodhub(tmp_path, clock, redis_url, redis_prefix) -> Iterator[Vodhub]:
    """The first process (the `client` fixture serves it)."""
    app = redis_vodhub(tmp_path, clock, redis_url, redis_prefix)
    yield app
    app.close()


@pytest.fixture
def other(tmp_path, clock, redis_url, redis_prefix, vodhub) -> Iterator[TestClient]:
    """A second process on the same event store, storage and Redis."""
    app = redis_vodhub(tmp_path, clock, redis_url, redis_prefix)
    with TestClient(build_api(app)) as client:
        yield client
    app.close()


def test_a_warm_manifest_is_dropped_when_another_process_hides_the_video(client, other, vodhub, make_ready, uploader):
    video = make_ready(uploader)
    master = f"/media/{video['id']}/cmaf/master.m3u8"
    video_id = uuid.UUID(video["id"])
    eventually(lambda: client.get(master).status_code == 200 and vodhub.playback.known_info(video_id) is not None)
    assert client.get(master).text.startswith("#EXTM3U")  # from memory now
    changed = other.patch(f"/api/videos/{video['id']}", headers=uploader, json={"visibility": "private"})
    assert changed.status_code == 200, changed.text
    eventually(lambda: client.get(master).status_code == 404)


def test_a_token_logged_out_in_another_process_is_refused(client, other):
    from tests.fixtures.api import PASSWORD, register

    register(client, "bob")
    tokens = client.post("/api/auth/login", json={"username_or_email": "bob", "password": PASSWORD}).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/auth/validate", headers=bearer).status_code == 200
    assert client.get("/api/auth/validate", headers=bearer).status_code == 200  # known now
    assert other.post("/api/auth/logout", headers=bearer).status_code == 204
    eventually(lambda: client.get("/api/auth/validate", headers=bearer).status_code == 401)
