"""Cross-cutting HTTP behaviour of API.md's Operations section: request ids, security headers,
CORS, the JSON access log, /metrics and rate limiting (in-process limiter; the Redis one is
in test_rate_limiter.py)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.metrics import PrometheusMetrics
from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.fixtures.api import PASSWORD, bearer, login, register
from tests.integration.test_http_accounts import assert_problem


@pytest.fixture
def api(tmp_path, clock) -> Iterator[Callable[..., TestClient]]:
    """A client of an app built from the given settings (VODHUB_* names, lower case)."""
    opened = []

    def open_client(**settings: str) -> TestClient:
        vodhub = bootstrap(Settings(data_dir=tmp_path / f"var{len(opened)}", **settings), clock=clock,
                           hasher=Argon2PasswordHasher.fast_for_tests())
        client = TestClient(build_api(vodhub))
        opened.append(client.__enter__())
        return client

    yield open_client
    for client in opened:
        client.__exit__(None, None, None)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_lines(client) -> Iterator[list[dict]]:
    """The JSON lines the access log writes, formatted by its own formatter."""
    logger = logging.getLogger("vodhub.access")
    handler = Lines()
    handler.setFormatter(logger.handlers[0].formatter)
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


# --- request id and security headers -----------------------------------------------------


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/health/live", 200), ("GET", "/no/such/route", 404), ("DELETE", "/health/live", 405),
    ("GET", "/api/users/me", 401), ("POST", "/api/auth/register", 400),
])
def test_every_response_carries_a_request_id_and_security_headers(client, method, path, status):
    response = client.request(method, path)
    assert response.status_code == status
    assert len(response.headers["x-request-id"]) == 32
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_a_sane_incoming_request_id_is_echoed(client):
    response = client.get("/no/such/route", headers={"X-Request-ID": "gw-1234.abc_DEF"})
    assert response.headers["x-request-id"] == "gw-1234.abc_DEF"


@pytest.mark.parametrize("incoming", ["a" * 129, "has space", "semi;colon", "ünïcode"])
def test_an_unusable_request_id_is_replaced_by_a_fresh_one(client, incoming):
    response = client.get("/health/live", headers={"X-Request-ID": incoming.encode("utf-8")})
    assert response.headers["x-request-id"] != incoming
    assert len(response.headers["x-request-id"]) == 32


def test_request_ids_differ_between_requests(client):
    assert client.get("/health/live").headers["x-request-id"] != client.get("/health/live").headers["x-request-id"]


# --- CORS -------------------------------------------------------------------------------


def test_cors_allows_any_origin_without_credentials_by_default(client):
    preflight = client.options("/api/videos", headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    })
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers
    simple = client.get("/health/live", headers={"Origin": "https://player.example"})
    assert simple.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


def test_cors_origins_come_from_settings(api):
    client = api(cors_origins="https://app.example, https://admin.example")
    allowed = client.get("/health/live", headers={"Origin": "https://admin.example"})
    other = client.get("/health/live", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://admin.example"
    assert "access-control-allow-origin" not in other.headers


def test_cors_can_be_turned_off(api):
    client = api(cors_origins="off")
    response = client.get("/health/live", headers={"Origin": "https://a.example"})
    assert "access-control-allow-origin" not in response.headers


# --- access log ---------------------------------------------------------------------------


def test_each_request_writes_one_json_access_line(client, access_lines):
    register(client, "alice")
    tokens = login(client, "alice")
    access_lines.clear()
    missing = uuid.uuid4()
    response = client.get(f"/api/videos/{missing}", headers={**bearer(tokens), "X-Request-ID": "trace-42"})
    assert response.status_code == 404
    [line] = access_lines
    assert line["logger"] == "vodhub.access" and line["level"] == "info"
    assert line["request_id"] == "trace-42" and line["status"] == 404 and line["method"] == "GET"
    assert line["route"] == "/api/videos/{video_id}" and line["path"] == f"/api/videos/{missing}"
    assert line["user"] and uuid.UUID(line["user"])
    assert line["duration_ms"] >= 0 and line["ts"].endswith("+00:00")


def test_requests_no_route_matches_are_logged_too(client, access_lines):
    client.get("/nothing/here")
    assert [(line["route"], line["status"], line["user"]) for line in access_lines] == [(None, 404, None)]


# --- /metrics -----------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_and_status(client):
    route = "/api/users/{user_id}"
    before = metric(client, "vodhub_http_requests_total", method="GET", route=route, status="401")
    client.get(f"/api/users/{uuid.uuid4()}")
    client.get(f"/api/users/{uuid.uuid4()}")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert metric(client, "vodhub_http_requests_total", method="GET", route=route, status="401") == before + 2
    assert metric(client, "vodhub_http_request_duration_seconds_count", route=route, status="401") >= 2
    assert "/api/users/" + "0" * 8 not in response.text and "route=\"/api/users/" in response.text


def test_unmatched_paths_share_one_metrics_label(client):
    before = metric(client, "vodhub_http_requests_total", route="<unmatched>", status="404")
    client.get(f"/random/{uuid.uuid4()}")
    assert metric(client, "vodhub_http_requests_total", route="<unmatched>", status="404") == before + 1


def test_metrics_report_uploads_and_their_bytes(client, uploader):
    before = metric(client, "vodhub_upload_bytes_total", outcome="rejected")
    response = client.post("/api/videos/upload", headers=uploader, files={"file": ("a.mp4", b"x" * 5000, "video/mp4")})
    assert response.status_code == 415
    assert metric(client, "vodhub_upload_bytes_total", outcome="rejected") >= before + 5000
    assert metric(client, "vodhub_uploads_total", outcome="rejected") >= 1


def test_metrics_include_what_the_pipeline_records(client):
    recorder = PrometheusMetrics()
    recorder.transcode_finished("720p", 4.2)
    recorder.processing_outcome("processed")
    recorder.relay_position(published=40, latest=45)
    recorder.consumer_lag("video-processing", "video-uploaded-events", 2, 7)
    assert metric(client, "vodhub_transcode_duration_seconds_count", rung="720p") >= 1
    assert metric(client, "vodhub_processing_outcomes_total", outcome="processed") >= 1
    assert metric(client, "vodhub_relay_lag_notifications", log="videos") == 5
    assert metric(client, "vodhub_consumer_lag_messages", partition="2") == 7


def test_metrics_speak_openmetrics_when_asked(client):
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


RECORD_AND_SCRAPE = """
from prometheus_client import generate_latest
from adapters.inbound.http.metrics import _registry, record_request
record_request("GET", "/health/live", 200, 0.01, 0)
print(generate_latest(_registry()).decode())
"""


def test_with_a_multiprocess_dir_a_scrape_adds_up_every_process(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run = {"args": [sys.executable, "-c", RECORD_AND_SCRAPE], "env": env, "cwd": Path(__file__).parents[2],
           "check": True, "capture_output": True, "text": True, "timeout": 60}
    subprocess.run(**run)
    scraped = subprocess.run(**run).stdout
    assert 'vodhub_http_requests_total{method="GET",route="/health/live",status="200"} 2.0' in scraped


# --- rate limiting ----------------------------------------------------------------------------


def assert_limited(response) -> dict:
    body = assert_problem(response, 429)
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-remaining"] == "0"
    assert {"ratelimit-limit", "ratelimit-reset", "ratelimit-policy"} <= response.headers.keys()
    return body


def try_login(client, name: str):
    return client.post("/api/auth/login", json={"username_or_email": name, "password": "not the password"})


def test_login_is_limited_per_address_and_username(api):
    client = api(rate_limits="login=3/60")
    assert [try_login(client, "alice").status_code for _ in range(3)] == [401, 401, 401]
    body = assert_limited(try_login(client, "ALICE "))  # the same name, however it is written
    assert "login" in body["detail"]
    assert try_login(client, "bob").status_code == 401


def test_a_garbled_login_body_is_still_counted_and_still_rejected(api):
    client = api(rate_limits="login=1/60")
    garbled = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert_problem(client.post("/api/auth/login", **garbled), 400)
    assert_limited(client.post("/api/auth/login", **garbled))


def test_reads_are_limited_per_user_and_say_how_many_are_left(api):
    client = api(rate_limits="default=4/60")
    alice = bearer(login_new(client, "alice"))
    bob = bearer(login_new(client, "bob"))  # register counted against the address, not against bob
    responses = [client.get("/api/users/me", headers=alice) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses[:4]] == ["3", "2", "1", "0"]
    assert responses[0].headers["ratelimit-limit"] == "4"
    assert_limited(responses[-1])
    assert client.get("/api/users/me", headers=bob).status_code == 200


def test_requests_with_bad_tokens_count_against_the_address(api):
    client = api(rate_limits="default=3/60")
    junk = {"Authorization": "Bearer not-a-token"}
    assert [client.get("/api/users/me", headers=junk).status_code for _ in range(3)] == [401, 401, 401]
    assert_limited(client.get("/api/users/me", headers=junk))
    assert_limited(client.get("/.well-known/jwks.json"))  # the same address, no token


def test_uploads_have_their_own_limit_apart_from_reads(api):
    client = api(rate_limits="upload=1/3600,default=100/60")
    alice = bearer(login_new(client, "alice"))
    upload = {"headers": alice, "files": {"file": ("a.mp4", b"not a video", "video/mp4")}}
    assert client.post("/api/videos/upload", **upload).status_code == 415
    assert_limited(client.post("/api/videos/upload", **upload))
    assert client.get("/api/users/me", headers=alice).status_code == 200


def test_health_and_metrics_are_never_limited(api):
    client = api(rate_limits="default=1/60")
    statuses = {client.get(path).status_code for path in ("/health/live", "/metrics") * 5}
    assert statuses == {200}


def test_rate_limits_can_be_turned_off(api):
    client = api(rate_limits="off")
    assert {try_login(client, "alice").status_code for _ in range(12)} == {401}


def test_a_bad_rate_limit_setting_stops_the_process_with_a_reason(tmp_path):
    with pytest.raises(SystemExit, match="VODHUB_RATE_LIMITS"):
        bootstrap(Settings(data_dir=tmp_path, rate_limits="login=lots"), hasher=Argon2PasswordHasher.fast_for_tests())


def login_new(client, name: str) -> dict:
    register(client, name)
    response = client.post("/api/auth/login", json={"username_or_email": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()
