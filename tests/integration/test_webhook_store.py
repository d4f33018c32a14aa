"""The SQL webhook store on PostgreSQL (its own schema per test) and on a SQLite file: the
notifier scenarios of the unit tests again, plus what only a shared database shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from adapters.outbound.sql_webhooks import SqlWebhookStore
from domain.webhooks import Delivery, WebhookEndpoint
from tests.unit.test_webhook_notifier import (  # noqa: F401 (collected here, on the SQL store)
    hub,  # noqa: F401 (the fixture, over the store below)
    test_a_backlog_at_one_endpoint_leaves_room_for_the_others,
    test_a_notifier_restarted_mid_backoff_resumes_from_the_store,
    test_a_receiver_failing_twice_gets_the_same_webhook_id_three_times,
    test_a_slow_endpoint_does_not_hold_back_the_others,
    test_a_test_event_is_delivered_by_the_notifier,
    test_an_endpoint_failing_for_five_days_is_disabled_and_says_why,
    test_an_event_is_queued_for_every_endpoint_that_wants_it,
    test_deleting_an_endpoint_drops_its_queue,
    test_finished_deliveries_leave_the_log_after_a_while_and_pending_ones_never,
    test_one_videos_events_keep_their_order_while_the_first_is_retried,
    test_the_delivery_log_pages_newest_first,
    test_the_secret_is_shown_once_and_others_endpoints_are_not_found,
)


@pytest.fixture(params=["postgres", "sqlite"])
def store(request, tmp_path):
    if request.param == "postgres":
        url = f"{request.getfixturevalue('postgres_url')}?schema={request.getfixturevalue('postgres_schema')}"
    else:
        url = f"sqlite:///{tmp_path / 'webhooks.sqlite3'}"
    sql_store = SqlWebhookStore(url)
    sql_store.create_tables()
    yield sql_store
    sql_store.close()


def test_two_dispatchers_never_claim_the_same_delivery(store):
    now = datetime.now(UTC)
    endpoint = WebhookEndpoint(id=uuid.uuid4(), owner_id=uuid.uuid4(), url="https://a.example/in",
                               events=["video.ready"], description="", scope="own", created_at=now, sealed_secret="s")
    store.add_endpoint(endpoint)
    store.add_deliveries([Delivery(id=uuid.uuid4(), endpoint_id=endpoint.id, event_type="video.ready",
                                   video_id=uuid.uuid4(), payload="{}", created_at=now, next_attempt_at=now)])
    lease = now + timedelta(minutes=1)
    assert len(store.claim_due(now, lease, 10)) == 1
    assert store.claim_due(now, lease, 10) == []
    (again,) = store.claim_due(lease, lease + timedelta(minutes=1), 10)  # its dispatcher died: the lease ran out
    assert again.attempt == 0


def test_a_restarted_store_keeps_the_retry_schedule(tmp_path, postgres_url, postgres_schema):
    url = f"{postgres_url}?schema={postgres_schema}"
    now = datetime.now(UTC)
    first = SqlWebhookStore(url)
    first.create_tables()
    endpoint = WebhookEndpoint(id=uuid.uuid4(), owner_id=uuid.uuid4(), url="https://a.example/in",
                               events=["video.ready"], description="", scope="own", created_at=now, sealed_secret="s")
    first.add_endpoint(endpoint)
    first.add_deliveries([Delivery(id=uuid.uuid4(), endpoint_id=endpoint.id, event_type="video.ready",
                                   video_id=None, payload="{}", created_at=now, next_attempt_at=now)])
    (claimed,) = first.claim_due(now, now + timedelta(minutes=1), 10)
    claimed.failed(now, 500, "HTTP 500", timedelta(seconds=30))
    endpoint.attempt_failed(now, "HTTP 500")
    first.record_attempt(claimed, endpoint)
    first.close()
    second = SqlWebhookStore(url)
    assert second.claim_due(now + timedelta(seconds=29), now + timedelta(minutes=2), 10) == []
    (resumed,) = second.claim_due(now + timedelta(seconds=30), now + timedelta(minutes=2), 10)
    assert (resumed.id, resumed.attempt, resumed.error) == (claimed.id, 1, "HTTP 500")
    assert second.get_endpoint(endpoint.id).failing_since == now
    second.close()
