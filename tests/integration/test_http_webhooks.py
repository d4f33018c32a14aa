"""The webhook routes over HTTP (in-process app on embedded adapters), and the whole embedded
chain: domain events → relay → video-processed-events → notifier → a signed POST to a
receiver on 127.0.0.1 (allowed by the development settings)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import anyio
import pytest
from litestar.testing import TestClient
from standardwebhooks.webhooks import Webhook

from adapters.inbound.messaging import IncomingMessage
from adapters.inbound.notification_consumer import VideoProcessedConsumer
from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.http_webhooks import HttpWebhookSender
from adapters.outbound.in_process_bus import InProcessEventBus
from application.notifier import Notifier, WebhookDispatcher
from domain.media import Manifests, Rendition, Thumbnails
from domain.videos import Video
from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.fixtures.api import bearer, login, register


@pytest.fixture
def dev_vodhub(tmp_path, clock):
    settings = Settings(data_dir=tmp_path / "var", webhooks_allow_http=True, webhooks_allow_private=True)
    app = bootstrap(settings, clock=clock, hasher=Argon2PasswordHasher.fast_for_tests(), publisher=InProcessEventBus())
    yield app
    app.close()


@pytest.fixture
def dev_client(dev_vodhub) -> Iterator[TestClient]:
    with TestClient(build_api(dev_vodhub)) as test_client:
        yield test_client


def hook(client: TestClient, headers: dict, **body) -> dict:
    response = client.post("/api/webhooks", headers=headers, json={"events": ["video.ready"], **body})
    assert response.status_code == 201, response.text
    return response.json()


def deliver_due(vodhub) -> int:
    dispatcher = WebhookDispatcher(vodhub.webhooks.store, vodhub.webhooks.box,
                                   HttpWebhookSender(allow_http=True, allow_private=True), vodhub.webhooks.clock)
    return anyio.run(dispatcher.deliver_due)


def test_register_read_list_and_delete_without_the_secret(client):
    register(client, "alice")
    alice = bearer(login(client, "alice"))
    created = client.post("/api/webhooks", headers=alice, json={
        "url": "https://hooks.example.com/vodhub", "events": ["video.ready", "video.failed"], "description": "ci"})
    assert created.status_code == 201 and created.headers["location"] == f"/api/webhooks/{created.json()['id']}"
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["video.ready", "video.failed"]
    assert (body["scope"], body["disabled"], body["description"]) == ("own", False, "ci")
    one = client.get(f"/api/webhooks/{body['id']}", headers=alice)
    listed = client.get("/api/webhooks", headers=alice)
    for response in (one, listed):
        assert response.status_code == 200 and "secret" not in response.text and body["secret"] not in response.text
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
    assert client.get(f"/api/webhooks/{body['id']}/deliveries", headers=alice).json() == {
        "items": [], "next_cursor": None}
    assert client.delete(f"/api/webhooks/{body['id']}", headers=alice).status_code == 204
    assert client.get(f"/api/webhooks/{body['id']}", headers=alice).status_code == 404


def test_another_users_endpoints_are_invisible(client):
    register(client, "alice")
    register(client, "mallory")
    alice, mallory = bearer(login(client, "alice")), bearer(login(client, "mallory"))
    hook_id = hook(client, alice, url="https://hooks.example.com/a")["id"]
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/deliveries"), ("POST", "/test")):
        response = client.request(method, f"/api/webhooks/{hook_id}{path}", headers=mallory)
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    assert client.get("/api/webhooks", headers=mallory).json() == {"items": []}
    assert client.get(f"/api/webhooks/{hook_id}", headers=alice).status_code == 200


BAD_REGISTRATIONS = [
    ({"url": "http://hooks.example.com/a", "events": ["video.ready"]}, 422, "url"),
    ({"url": "https://10.0.0.1/a", "events": ["video.ready"]}, 422, "url"),
    ({"url": "https://hooks.example.com/" + "a" * 2100, "events": ["video.ready"]}, 422, "url"),
    ({"url": "https://hooks.example.com/a", "events": ["video.liked"]}, 422, "events"),
    ({"url": "https://hooks.example.com/a", "events": []}, 422, "events"),
    ({"url": "https://hooks.example.com/a"}, 422, "events"),
    ({"url": "https://hooks.example.com/a", "events": ["video.ready"], "scope": "all"}, 403, None),
]


def test_bad_registrations_are_clear_client_errors(client):
    register(client, "admin0")  # the first account is the admin; the next is a plain user
    register(client, "alice")
    alice = bearer(login(client, "alice"))
    for body, status, field in BAD_REGISTRATIONS:
        response = client.post("/api/webhooks", headers=alice, json=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        if field:
            assert [error["field"] for error in response.json()["errors"]] == [field]
    assert client.get("/api/webhooks", headers=alice).json() == {"items": []}


def test_malformed_input_is_a_client_error(client):
    register(client, "alice")
    alice = bearer(login(client, "alice"))
    assert client.post("/api/webhooks", headers=alice, content=b"{not json").status_code == 400
    hook_id = hook(client, alice, url="https://hooks.example.com/a")["id"]
    assert client.get(f"/api/webhooks/{hook_id}/deliveries?cursor=zz", headers=alice).status_code == 422
    assert client.get(f"/api/webhooks/{hook_id}/deliveries?limit=1000", headers=alice).status_code == 422
    assert client.get("/api/webhooks/not-a-uuid", headers=alice).status_code == 404
    assert client.get("/api/webhooks").status_code == 401


def test_an_eleventh_endpoint_is_a_conflict_and_admins_may_watch_everything(client):
    register(client, "admin0")
    admin = bearer(login(client, "admin0"))
    assert hook(client, admin, url="https://ops.example.com/all", scope="all")["scope"] == "all"
    for n in range(9):
        hook(client, admin, url=f"https://ops.example.com/{n}")
    response = client.post("/api/webhooks", headers=admin, json={"url": "https://ops.example.com/x",
                                                                  "events": ["video.ready"]})
    assert response.status_code == 409 and "at most 10" in response.json()["detail"]


def test_a_receiver_failing_twice_gets_one_webhook_id_three_times_and_the_secret_is_never_logged(
    dev_client, dev_vodhub, webhook_receiver, caplog, capsys,
):
    caplog.set_level(logging.DEBUG)
    register(dev_client, "alice")
    alice = bearer(login(dev_client, "alice"))
    created = hook(dev_client, alice, url=webhook_receiver.url())
    webhook_receiver.statuses = [500, 503]
    queued = dev_client.post(f"/api/webhooks/{created['id']}/test", headers=alice)
    assert queued.status_code == 202 and queued.json()["event_type"] == "webhook.test"
    for _ in range(3):
        assert deliver_due(dev_vodhub) == 1
        dev_vodhub.webhooks.clock.advance(60)  # past the backoff
    received = webhook_receiver.wait_for(3)
    assert {r.headers["webhook-id"] for r in received} == {queued.json()["id"]}
    for request in received:
        assert Webhook(created["secret"]).verify(request.body, request.headers)["type"] == "webhook.test"
    (logged,) = dev_client.get(f"/api/webhooks/{created['id']}/deliveries", headers=alice).json()["items"]
    assert (logged["status"], logged["attempt"], logged["status_code"]) == ("delivered", 3, 200)
    printed = capsys.readouterr()
    secret_key = created["secret"].removeprefix("whsec_")
    assert "HTTP 500" in caplog.text and "HTTP 503" in caplog.text  # the failures were logged…
    for text in (caplog.text, printed.out, printed.err):
        assert secret_key not in text  # …and the secret never


def test_the_relay_and_notifier_deliver_a_videos_events_in_order(dev_client, dev_vodhub, webhook_receiver):
    owner = register(dev_client, "alice")
    alice = bearer(login(dev_client, "alice"))
    created = hook(dev_client, alice, url=webhook_receiver.url(), events=["video.processing", "video.ready"])
    video = Video.upload(uuid.uuid4(), uuid.UUID(owner["id"]), ("user",), title="Holiday", description="",
                         tags=[], visibility="private", source_key="raw/k/original.mp4", source_size=5,
                         source_content_type="video/mp4", source_sha256="ab" * 32)
    video.start_processing()
    video.record_processed(duration_s=2.0, width=640, height=360, renditions=[
        Rendition(name="360p", width=640, height=360, bitrate=800_000)],
        manifests=Manifests(hls="h.m3u8", dash="d.mpd"), thumbnails=Thumbnails())
    dev_vodhub.videos.save(video)
    anyio.run(dev_vodhub.relay.relay_once)
    bus: InProcessEventBus = dev_vodhub.publisher
    consumer = VideoProcessedConsumer(Notifier(dev_vodhub.webhooks.store, dev_vodhub.webhooks.clock))

    async def consume() -> None:
        subscription = bus.subscribe(dev_vodhub.settings.topic_video_processed)
        for offset in range(bus.pending(dev_vodhub.settings.topic_video_processed)):
            message = await subscription.__anext__()
            await consumer(IncomingMessage(message.topic, 0, offset, message.key, message.value),
                           attempt=1, final_attempt=False)

    anyio.run(consume)
    while deliver_due(dev_vodhub):
        pass
    bodies = [Webhook(created["secret"]).verify(r.body, r.headers) for r in webhook_receiver.wait_for(2)]
    assert [(b["type"], b["data"]["status"], b["data"]["playable"]) for b in bodies] == [
        ("video.processing", "processing", False), ("video.ready", "ready", True)]
    assert bodies[1]["data"]["renditions"] == [{"name": "360p", "width": 640, "height": 360, "bitrate": 800_000}]
    assert {b["data"]["id"] for b in bodies} == {str(video.id)}
