"""The webhooks use cases and the notifier on in-memory adapters: what is queued for whom,
retries with one webhook-id, order per video, lanes per endpoint, disabling. The same
scenarios run against the SQL store in tests/integration/test_webhook_store.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio
import msgspec
import pytest
from standardwebhooks.webhooks import Webhook

from adapters.outbound.clock import RandomIdGenerator, SettableClock
from adapters.outbound.in_memory_webhooks import InMemoryWebhookSender, InMemoryWebhookStore, SentRequest
from adapters.outbound.secret_box import AesGcmSecretBox
from application.accounts import Principal
from application.errors import Conflict, NotFound
from application.integration_events import VideoProcessed, VideoSummary
from application.notifier import Notifier, WebhookDispatcher
from application.webhook_ports import AttemptResult
from application.webhooks import Webhooks
from domain.webhooks import DELIVERED, FAILED, PENDING


@pytest.fixture
def store():
    return InMemoryWebhookStore()


@pytest.fixture
def hub(store):
    return Hub(store)


class Hub:
    """Use cases, notifier and dispatcher around one store, with a settable clock."""

    def __init__(self, store) -> None:
        self.store = store
        self.clock = SettableClock()
        self.webhooks = Webhooks(store, AesGcmSecretBox.generate(), self.clock, RandomIdGenerator())
        self.notifier = Notifier(store, self.clock)
        self.sender = InMemoryWebhookSender()
        self.dispatcher = self.new_dispatcher()

    def new_dispatcher(self) -> WebhookDispatcher:
        return WebhookDispatcher(self.store, self.webhooks.box, self.sender, self.clock, first_retry_s=5,
                                 jitter=lambda: 0.5, poll_interval_s=0.01)

    def deliver_due(self) -> int:
        return anyio.run(self.dispatcher.deliver_due)


def principal(roles: tuple[str, ...] = ("user",), user_id: uuid.UUID | None = None) -> Principal:
    return Principal(user_id=user_id or uuid.uuid4(), username="u", roles=roles, token_id="t", session_id="s",
                     expires_at=datetime.now(UTC) + timedelta(hours=1))


def announced(owner: Principal, status: str = "ready", video_id: uuid.UUID | None = None) -> VideoProcessed:
    return VideoProcessed(
        event_id=str(uuid.uuid4()), video_id=str(video_id or uuid.uuid4()), status=status, renditions=["360p"],
        hls_key=None, dash_key=None, failure_reason=None, processed_at=datetime.now(UTC), owner_id=str(owner.user_id),
        video=VideoSummary(title="Holiday", visibility="public", status=status, playable=status == "ready"),
    )


def verified(secret: str, request: SentRequest) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


def test_an_event_is_queued_for_every_endpoint_that_wants_it(hub):
    alice, bob, admin = principal(), principal(), principal(("admin", "user"))
    ready = hub.webhooks.register(alice, url="https://a.example/ready", events=["video.ready"])
    hub.webhooks.register(alice, url="https://a.example/failed", events=["video.failed"])
    hub.webhooks.register(bob, url="https://b.example/ready", events=["video.ready"])
    watcher = hub.webhooks.register(admin, url="https://ops.example/all", events=["video.ready"], scope="all")
    event = announced(alice)
    assert hub.notifier.enqueue(event) == 2
    assert hub.notifier.enqueue(event) == 0  # a redelivered event queues nothing new
    assert hub.deliver_due() == 2
    by_url = {request.url: request for request in hub.sender.sent}
    assert set(by_url) == {"https://a.example/ready", "https://ops.example/all"}
    body = verified(ready.secret, by_url["https://a.example/ready"])
    assert body["type"] == "video.ready" and body["data"]["id"] == event.video_id
    assert body["data"]["owner_id"] == str(alice.user_id) and body["data"]["title"] == "Holiday"
    verified(watcher.secret, by_url["https://ops.example/all"])


def test_a_receiver_failing_twice_gets_the_same_webhook_id_three_times(hub):
    alice = principal()
    hook = hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"])
    hub.sender.answer("https://a.example/in", 500, 503)
    hub.notifier.enqueue(announced(alice))
    assert hub.deliver_due() == 1
    assert hub.deliver_due() == 0  # not due before its backoff
    hub.clock.advance(3.75)  # 5 s × (0.5 + 0.5 / 2): the first pause with this jitter
    assert hub.deliver_due() == 1
    hub.clock.advance(7.5)
    assert hub.deliver_due() == 1
    first, second, third = hub.sender.sent
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    for request in (first, second, third):
        verified(hook.secret, request)
    (logged,) = hub.webhooks.deliveries(alice, hook.id).items
    assert (logged.status, logged.attempt, logged.status_code, logged.id) == (
        DELIVERED, 3, 200, first.headers["webhook-id"])
    assert hub.webhooks.get(alice, hook.id).failing_since is None


def test_a_notifier_restarted_mid_backoff_resumes_from_the_store(hub):
    alice = principal()
    hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"])
    hub.sender.answer("https://a.example/in", 500)
    hub.notifier.enqueue(announced(alice))
    hub.deliver_due()
    hub.dispatcher = hub.new_dispatcher()  # the old one is gone, with anything it held in memory
    hub.clock.advance(3.75)
    assert hub.deliver_due() == 1
    assert [r.headers["webhook-id"] for r in hub.sender.sent][0] == hub.sender.sent[1].headers["webhook-id"]


def test_one_videos_events_keep_their_order_while_the_first_is_retried(hub):
    alice = principal()
    hook = hub.webhooks.register(alice, url="https://a.example/in", events=["video.processing", "video.ready"])
    video_id, other_video = uuid.uuid4(), uuid.uuid4()
    hub.sender.answer("https://a.example/in", 500)
    hub.notifier.enqueue(announced(alice, "processing", video_id))
    hub.notifier.enqueue(announced(alice, "ready", video_id))
    hub.notifier.enqueue(announced(alice, "ready", other_video))
    for _ in range(3):
        hub.deliver_due()
    hub.clock.advance(3.75)
    while hub.deliver_due():
        pass
    types = [(verified(hook.secret, r)["type"], verified(hook.secret, r)["data"]["id"]) for r in hub.sender.sent]
    assert types == [("video.processing", str(video_id)), ("video.ready", str(other_video)),
                     ("video.processing", str(video_id)), ("video.ready", str(video_id))]


def test_a_slow_endpoint_does_not_hold_back_the_others(hub):
    alice = principal()
    hub.webhooks.register(alice, url="https://slow.example/in", events=["video.ready"])
    fast = hub.webhooks.register(alice, url="https://fast.example/in", events=["video.ready"])
    released = anyio.Event()

    async def hang(_: SentRequest) -> AttemptResult:
        await released.wait()
        return AttemptResult(200)

    hub.sender.responders["https://slow.example/in"] = hang

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(hub.dispatcher.run)
            for _ in range(3):
                hub.notifier.enqueue(announced(alice))
            def slow_calls() -> list[SentRequest]:
                return [r for r in hub.sender.sent if r.url == "https://slow.example/in"]

            # Both endpoints' work started (the slow one's first request may go out after the
            # fast one's three, on another task): the fast one is done while the slow one hangs.
            with anyio.fail_after(10):
                while ([d.status for d in hub.store.list_deliveries(fast.id, before=None, limit=10)] != [DELIVERED] * 3
                       or not slow_calls()):
                    await anyio.sleep(0.01)
            await anyio.sleep(0.05)  # time for a second slow request, were it (wrongly) sent
            assert len(slow_calls()) == 1  # its first delivery still hangs; its others wait their turn
            released.set()
            with anyio.fail_after(10):
                while len(slow_calls()) < 3:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    anyio.run(scenario)


def test_an_endpoint_failing_for_five_days_is_disabled_and_says_why(hub):
    alice = principal()
    hook = hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"])
    hub.sender.answer("https://a.example/in", *([500] * 100))
    hub.notifier.enqueue(announced(alice))
    hub.notifier.enqueue(announced(alice))
    started = hub.clock.now()
    while hub.clock.now() - started < timedelta(days=5, hours=7):
        hub.deliver_due()
        hub.clock.advance(3600)
    view = hub.webhooks.get(alice, hook.id)
    assert view.disabled and "HTTP 500" in view.disabled_reason and view.failing_since is not None
    log = hub.webhooks.deliveries(alice, hook.id).items
    assert [d.status for d in log] == [FAILED, FAILED] and all(d.next_attempt_at is None for d in log)
    assert hub.notifier.enqueue(announced(alice)) == 0  # a disabled endpoint gets nothing new
    assert hub.deliver_due() == 0
    with pytest.raises(Conflict, match="disabled"):
        hub.webhooks.send_test(alice, hook.id)


def test_the_secret_is_shown_once_and_others_endpoints_are_not_found(hub):
    alice, bob = principal(), principal()
    hook = hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"], description="ci")
    assert hook.secret.startswith("whsec_") and len(Webhook(hook.secret)._whsecret) == 32
    for view in (hub.webhooks.get(alice, hook.id), *hub.webhooks.list(alice).items):
        assert "secret" not in msgspec.to_builtins(view) and hook.secret not in msgspec.json.encode(view).decode()
    assert hook.secret.removeprefix("whsec_") not in hub.store.get_endpoint(hook.id).sealed_secret
    for action in (hub.webhooks.get, hub.webhooks.delete, hub.webhooks.deliveries, hub.webhooks.send_test):
        with pytest.raises(NotFound):
            action(bob, hook.id)
    assert hub.webhooks.list(bob).items == []
    with pytest.raises(NotFound):
        hub.webhooks.get(alice, uuid.uuid4())


def test_a_test_event_is_delivered_by_the_notifier(hub):
    alice = principal()
    hook = hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"])
    queued = hub.webhooks.send_test(alice, hook.id)
    assert queued.status == PENDING and hub.sender.sent == []
    hub.deliver_due()
    body = verified(hook.secret, hub.sender.sent[0])
    assert body["type"] == "webhook.test" and hub.sender.sent[0].headers["webhook-id"] == queued.id


def test_deleting_an_endpoint_drops_its_queue(hub):
    alice = principal()
    hook = hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"])
    hub.notifier.enqueue(announced(alice))
    hub.webhooks.delete(alice, hook.id)
    assert hub.deliver_due() == 0 and hub.webhooks.list(alice).items == []


def test_the_delivery_log_pages_newest_first(hub):
    alice = principal()
    hook = hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"])
    events = [announced(alice) for _ in range(5)]
    for event in events:
        hub.notifier.enqueue(event)
    first = hub.webhooks.deliveries(alice, hook.id, limit=3)
    second = hub.webhooks.deliveries(alice, hook.id, cursor=first.next_cursor, limit=3)
    assert len(first.items) == 3 and len(second.items) == 2 and second.next_cursor is None
    assert len({d.id for d in first.items + second.items}) == 5


def test_registration_refuses_an_eleventh_endpoint(hub):
    alice = principal()
    for n in range(10):
        hub.webhooks.register(alice, url=f"https://a.example/{n}", events=["video.ready"])
    with pytest.raises(Conflict):
        hub.webhooks.register(alice, url="https://a.example/11", events=["video.ready"])


def test_finished_deliveries_leave_the_log_after_a_while_and_pending_ones_never(hub):
    alice = principal()
    hook = hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"])
    hub.sender.answer("https://a.example/in", 200, 500)
    hub.notifier.enqueue(announced(alice))
    hub.notifier.enqueue(announced(alice))
    hub.deliver_due()
    hub.deliver_due()
    assert hub.store.prune(hub.clock.now() - timedelta(days=1)) == 0
    assert hub.store.prune(hub.clock.now() + timedelta(seconds=1)) == 1
    (left,) = hub.webhooks.deliveries(alice, hook.id).items
    assert left.status == PENDING


def test_a_backlog_at_one_endpoint_leaves_room_for_the_others(hub):
    alice = principal()
    crowded = hub.webhooks.register(alice, url="https://a.example/in", events=["video.ready"])
    quiet = hub.webhooks.register(alice, url="https://b.example/in", events=["video.failed"])
    for _ in range(5):
        hub.notifier.enqueue(announced(alice, "ready"))
    hub.notifier.enqueue(announced(alice, "failed"))
    now = hub.clock.now()
    claimed = hub.store.claim_due(now, now + timedelta(minutes=1), 2)
    assert {d.endpoint_id for d in claimed} == {crowded.id, quiet.id}


def test_an_event_whose_deliveries_cannot_be_queued_is_held_not_dead_lettered(hub, monkeypatch):
    from adapters.inbound.messaging import IncomingMessage
    from adapters.inbound.notification_consumer import VideoProcessedConsumer
    from application.errors import OutcomeNotRecorded
    from application.integration_events import VIDEO_PROCESSED_TOPIC, to_message

    def database_away(event):
        raise ConnectionError("database away")

    monkeypatch.setattr(hub.notifier, "enqueue", database_away)
    outgoing = to_message(announced(principal()), VIDEO_PROCESSED_TOPIC)
    message = IncomingMessage(topic=outgoing.topic, partition=0, offset=0, key=outgoing.key, value=outgoing.value)
    consume = VideoProcessedConsumer(hub.notifier)

    with pytest.raises(ConnectionError):  # retried as usual
        anyio.run(lambda: consume(message, attempt=1, final_attempt=False))
    with pytest.raises(OutcomeNotRecorded):  # and on the last attempt, never given up on
        anyio.run(lambda: consume(message, attempt=5, final_attempt=True))
