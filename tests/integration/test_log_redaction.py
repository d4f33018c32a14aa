"""No secret reaches a log line: a full walk-through (register, login, refresh, upload, signed
private playback, webhook creation) with the process's real log handlers, every line scanned."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from adapters.inbound.http.middleware.access_log import ACCESS_LOGGER
from adapters.log_redaction import REDACTED, RedactSecrets, redact, redact_handler
from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from entrypoints.bootstrap import Vodhub, bootstrap
from entrypoints.settings import Settings
from tests.fixtures.api import PASSWORD, bearer, login, register


@pytest.fixture
def vodhub(tmp_path, clock) -> Iterator[Vodhub]:
    """The HTTP app of tests.fixtures.api, allowed to register a local webhook."""
    settings = Settings(data_dir=tmp_path / "var", webhooks_allow_http=True, webhooks_allow_private=True)
    app = bootstrap(settings, clock=clock, hasher=Argon2PasswordHasher.fast_for_tests())
    yield app
    app.close()


@pytest.fixture
def application_log() -> Iterator[io.StringIO]:
    """Every record of every logger at DEBUG, through a handler set up as `vodhub` sets up its own."""
    captured = io.StringIO()
    handler = redact_handler(logging.StreamHandler(captured))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    level, root.level = root.level, logging.DEBUG
    root.addHandler(handler)
    yield captured
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_walk_through_leaves_no_token_or_secret_in_any_log(client, make_ready, application_log, capsys):
    register(client, "alice")
    first = login(client, "alice")
    refreshed = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})  # a replay ends the session
    second = login(client, "alice")
    auth = bearer(second)
    video = make_ready(auth, visibility="private")
    location = client.get(f"/api/videos/stream/{video['id']}?format=mp4", headers=auth).headers["location"]
    media_token = location.split("/")[3]
    assert client.get(location).status_code == 200
    assert client.get(location.replace(video["id"], "00000000-0000-4000-8000-000000000000")).status_code in (403, 404)
    hook = client.post("/api/webhooks", headers=auth, json={"url": "http://127.0.0.1:9/hook", "events": ["video.ready"]})
    assert hook.status_code == 201, hook.text
    assert client.get("/api/users/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401

    access_log = capsys.readouterr().err
    everything = access_log + application_log.getvalue()
    assert f"/media/t/{REDACTED}/{video['id']}/mp4/240p.mp4" in access_log  # the playback was logged
    secrets = {
        "access token": first["access_token"], "refreshed access token": refreshed["access_token"],
        "refresh token": first["refresh_token"], "rotated refresh token": refreshed["refresh_token"],
        "second access token": second["access_token"], "second refresh token": second["refresh_token"],
        "media token": media_token, "webhook secret": hook.json()["secret"], "password": PASSWORD,
    }
    leaked = [name for name, secret in secrets.items() if secret in everything]
    assert leaked == [], f"{leaked} in the logs"


@pytest.mark.parametrize(("line", "secret"), [
    ("GET /media/t/abc.def-ghi/1/mp4/240p.mp4 200", "abc.def-ghi"),
    ("token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl refused", "eyJzdWIiOiIxIn0"),
    ("headers {'authorization': 'Bearer s3cr3t-value'}", "s3cr3t-value"),
    ('body {"refresh_token": "Q2FuIHlvdSBzZWUgbWU"}', "Q2FuIHlvdSBzZWUgbWU"),
    ("GET /x?refresh_token=Q2FuIHlvdSBzZWUgbWU&y=1", "Q2FuIHlvdSBzZWUgbWU"),
    ("created whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("connecting to postgresql://vodhub:hunter22@db:5432/vodhub", "hunter22"),
])
def test_redact_removes_each_kind_of_secret(line, secret):
    assert secret not in redact(line) and REDACTED in redact(line)


def test_messages_without_secrets_are_left_alone():
    line = "planned: 4 chunks, 3 rungs; revocation checks accept unexpired tokens: timeout"
    assert redact(line) == line


def test_a_traceback_and_structured_fields_are_redacted_too():
    try:
        raise ValueError("bad token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")
    except ValueError:
        record = logging.getLogger(ACCESS_LOGGER).makeRecord(
            ACCESS_LOGGER, logging.ERROR, __file__, 1, "failed %s", ("/media/t/tok3n/x",), exc_info=sys.exc_info(),
            extra={"fields": {"path": "/media/t/tok3n/x/a.m3u8"}},
        )
    RedactSecrets().filter(record)
    assert "tok3n" not in record.getMessage() and "tok3n" not in record.fields["path"]
    assert "eyJzdWIiOiIxIn0" not in record.exc_text and "ValueError" in record.exc_text
