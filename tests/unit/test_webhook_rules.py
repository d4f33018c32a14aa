"""Webhook endpoints and deliveries: what is valid, who sees what, how failures are retried."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import Conflict, NotFound, PermissionDenied, ValidationError
from domain.webhooks import (
    DELIVERED,
    FAILED,
    MAX_BACKOFF,
    MAX_ENDPOINTS_PER_USER,
    PENDING,
    Delivery,
    WebhookEndpoint,
    backoff,
    check_url,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def endpoint(**overrides) -> WebhookEndpoint:
    values = dict(id=uuid.uuid4(), owner_id=uuid.uuid4(), owner_roles=("user",), url="https://hooks.example.com/in",
                  events=["video.ready"], description="", scope="own", existing=0, sealed_secret="s", now=NOW)
    return WebhookEndpoint.register(**{**values, **overrides})


def delivery(**overrides) -> Delivery:
    values = dict(id=uuid.uuid4(), endpoint_id=uuid.uuid4(), event_type="video.ready", video_id=uuid.uuid4(),
                  payload="{}", created_at=NOW, next_attempt_at=NOW)
    return Delivery(**{**values, **overrides})


@pytest.mark.parametrize("url, message", [
    ("http://hooks.example.com/in", "https://"),
    ("ftp://hooks.example.com/in", "https://"),
    ("https:///in", "host"),
    ("https://user:pw@hooks.example.com/in", "credentials"),
    ("https://hooks.example.com/in#x", "fragment"),
    ("https://hooks.example.com/a b", "spaces"),
    ("https://hooks.example.com:99999/", "not a URL"),
    ("https://hooks.example.com/" + "a" * 2048, "at most 2048"),
    ("https://127.0.0.1/in", "non-public"),
    ("https://[::1]/in", "non-public"),
    ("https://169.254.169.254/latest/meta-data", "non-public"),
    ("https://[::ffff:127.0.0.1]/in", "non-public"),
    ("https://localhost:8443/in", "non-public"),
])
def test_a_webhook_url_must_be_public_https(url, message):
    with pytest.raises(ValidationError, match=message):
        check_url(url)


def test_the_development_settings_relax_the_url_rules():
    assert check_url("http://127.0.0.1:9000/in", allow_http=True, allow_private=True) == "http://127.0.0.1:9000/in"
    with pytest.raises(ValidationError):
        check_url("http://127.0.0.1:9000/in", allow_private=True)


def test_only_known_event_types_and_at_least_one():
    assert endpoint(events=["video.ready", "video.ready", "video.failed"]).events == ["video.ready", "video.failed"]
    with pytest.raises(ValidationError, match="unknown event type 'video.liked'"):
        endpoint(events=["video.liked"])
    with pytest.raises(ValidationError, match="at least one"):
        endpoint(events=[])


def test_a_user_has_at_most_ten_endpoints():
    endpoint(existing=MAX_ENDPOINTS_PER_USER - 1)
    with pytest.raises(Conflict, match="at most 10"):
        endpoint(existing=MAX_ENDPOINTS_PER_USER)


def test_only_an_admin_may_receive_every_videos_events():
    with pytest.raises(PermissionDenied):
        endpoint(scope="all")
    watcher = endpoint(scope="all", owner_roles=("admin",))
    assert watcher.receives("video.ready", uuid.uuid4()) and watcher.receives("video.ready", None)
    with pytest.raises(ValidationError, match="scope"):
        endpoint(scope="everyone")


def test_an_endpoint_receives_its_events_about_its_owners_videos_only():
    mine = endpoint(events=["video.ready"])
    assert mine.receives("video.ready", mine.owner_id)
    assert not mine.receives("video.failed", mine.owner_id)
    assert not mine.receives("video.ready", uuid.uuid4())


def test_others_endpoints_are_not_found():
    mine = endpoint()
    mine.check_owned_by(mine.owner_id)
    with pytest.raises(NotFound):
        mine.check_owned_by(uuid.uuid4())


def test_backoff_doubles_with_jitter_up_to_a_cap():
    assert backoff(1, 5, 0.0) == timedelta(seconds=2.5)
    assert backoff(1, 5, 0.999) < timedelta(seconds=5)
    assert backoff(4, 5, 0.0) == timedelta(seconds=20)
    assert backoff(60, 5, 0.0) == MAX_BACKOFF / 2
    with pytest.raises(ValueError):
        backoff(1, 5, 1.0)


def test_a_failing_delivery_is_retried_for_five_days_then_given_up():
    attempt = delivery()
    attempt.failed(NOW + timedelta(days=4), 500, "HTTP 500", timedelta(hours=6))
    assert (attempt.status, attempt.attempt, attempt.next_attempt_at) == (PENDING, 1, NOW + timedelta(days=4, hours=6))
    attempt.failed(NOW + timedelta(days=5), None, "timed out", timedelta(hours=6))
    assert (attempt.status, attempt.attempt, attempt.next_attempt_at, attempt.error) == (FAILED, 2, None, "timed out")


def test_a_delivery_succeeds_with_its_status_and_time():
    attempt = delivery()
    attempt.succeeded(NOW, 204)
    assert (attempt.status, attempt.status_code, attempt.delivered_at, attempt.next_attempt_at) == (
        DELIVERED, 204, NOW, None)
    assert attempt.message_id == f"msg_{attempt.id.hex}"


def test_an_endpoint_failing_for_five_days_is_disabled_with_a_reason():
    flaky = endpoint()
    flaky.attempt_failed(NOW, "HTTP 500")
    flaky.attempt_failed(NOW + timedelta(days=2), "HTTP 500")
    flaky.attempt_succeeded()
    flaky.attempt_failed(NOW + timedelta(days=3), "HTTP 502")
    flaky.attempt_failed(NOW + timedelta(days=7), "HTTP 502")
    assert not flaky.disabled  # it answered on day 2, so it has failed for 4 days only
    flaky.attempt_failed(NOW + timedelta(days=8), "connection refused")
    assert flaky.disabled and flaky.disabled_at == NOW + timedelta(days=8)
    assert "5 days" in flaky.disabled_reason and "connection refused" in flaky.disabled_reason
    assert not flaky.receives("video.ready", flaky.owner_id)
