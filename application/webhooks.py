"""Webhook endpoints: register (the secret is shown once), list, read, delete, the delivery
log, and a test event. Deliveries themselves are made by the notifier, never here."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime
from uuid import UUID

import msgspec

from application.accounts import Principal
from application.errors import NotFound, ValidationError
from application.ports import Clock, IdGenerator
from application.webhook_ports import SecretBox, WebhookStore
from domain.webhooks import TEST_EVENT, Delivery, WebhookEndpoint

SECRET_BYTES = 32
MAX_PAGE = 100


class WebhookView(msgspec.Struct, kw_only=True):
    id: UUID
    url: str
    events: list[str]
    description: str
    scope: str
    created_at: datetime
    disabled: bool
    disabled_reason: str | None
    failing_since: datetime | None


class NewWebhook(WebhookView, kw_only=True):
    secret: str  # whsec_…, shown in this answer only


class WebhookList(msgspec.Struct):
    items: list[WebhookView]


class DeliveryView(msgspec.Struct, kw_only=True):
    id: str  # the webhook-id header of every attempt
    event_type: str
    status: str  # pending, delivered, failed
    attempt: int
    status_code: int | None
    error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryView]
    next_cursor: str | None


def new_secret() -> tuple[bytes, str]:
    """Random key bytes and their Standard Webhooks form, `whsec_` + base64."""
    key = secrets.token_bytes(SECRET_BYTES)
    return key, "whsec_" + base64.b64encode(key).decode()


def webhook_view(endpoint: WebhookEndpoint) -> WebhookView:
    return WebhookView(
        id=endpoint.id, url=endpoint.url, events=list(endpoint.events), description=endpoint.description,
        scope=endpoint.scope, created_at=endpoint.created_at, disabled=endpoint.disabled,
        disabled_reason=endpoint.disabled_reason, failing_since=endpoint.failing_since,
    )


def delivery_view(delivery: Delivery) -> DeliveryView:
    return DeliveryView(
        id=delivery.message_id, event_type=delivery.event_type, status=delivery.status, attempt=delivery.attempt,
        status_code=delivery.status_code, error=delivery.error, created_at=delivery.created_at,
        delivered_at=delivery.delivered_at, next_attempt_at=delivery.next_attempt_at,
    )


class Webhooks:
    def __init__(
        self, store: WebhookStore, box: SecretBox, clock: Clock, ids: IdGenerator, *,
        allow_http: bool = False, allow_private: bool = False,
    ) -> None:
        self.store = store
        self.box = box
        self.clock = clock
        self.ids = ids
        self.allow_http = allow_http
        self.allow_private = allow_private

    def register(
        self, principal: Principal, *, url: str, events: list[str], description: str = "", scope: str = "own"
    ) -> NewWebhook:
        """Register an endpoint; the answer carries its signing secret, never shown again."""
        endpoint_id = self.ids.new_id()
        key, secret = new_secret()
        endpoint = WebhookEndpoint.register(
            id=endpoint_id, owner_id=principal.user_id, owner_roles=principal.roles, url=url, events=events,
            description=description, scope=scope, existing=self.store.count_endpoints(principal.user_id),
            sealed_secret=self.box.seal(key, str(endpoint_id)), now=self.clock.now(),
            allow_http=self.allow_http, allow_private=self.allow_private,
        )
        self.store.add_endpoint(endpoint)
        return NewWebhook(**msgspec.structs.asdict(webhook_view(endpoint)), secret=secret)

    def list(self, principal: Principal) -> WebhookList:
        """The caller's endpoints, without secrets."""
        return WebhookList(items=[webhook_view(e) for e in self.store.list_endpoints(principal.user_id)])

    def get(self, principal: Principal, endpoint_id: UUID) -> WebhookView:
        """One of the caller's endpoints; others' are not found."""
        return webhook_view(self._own(principal, endpoint_id))

    def delete(self, principal: Principal, endpoint_id: UUID) -> None:
        """Forget one of the caller's endpoints and its pending deliveries."""
        self.store.delete_endpoint(self._own(principal, endpoint_id).id)

    def deliveries(
        self, principal: Principal, endpoint_id: UUID, *, cursor: str | None = None, limit: int = 20
    ) -> DeliveryPage:
        """The endpoint's delivery log, newest first."""
        endpoint = self._own(principal, endpoint_id)
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError("limit", f"between 1 and {MAX_PAGE}")
        before = _decode_cursor(cursor) if cursor else None
        found = self.store.list_deliveries(endpoint.id, before=before, limit=limit + 1)
        page = found[:limit]
        more = len(found) > limit and page[-1].seq is not None
        return DeliveryPage(items=[delivery_view(d) for d in page], next_cursor=str(page[-1].seq) if more else None)

    def send_test(self, principal: Principal, endpoint_id: UUID) -> DeliveryView:
        """Queue a `webhook.test` delivery for the notifier to send now."""
        endpoint = self._own(principal, endpoint_id)
        endpoint.check_enabled()
        now = self.clock.now()
        delivery_id = self.ids.new_id()
        body = msgspec.json.encode({"type": TEST_EVENT, "timestamp": now, "data": {"webhook_id": str(endpoint.id)}})
        delivery = Delivery(
            id=delivery_id, endpoint_id=endpoint.id, event_type=TEST_EVENT, video_id=None,
            payload=body.decode(), created_at=now, next_attempt_at=now,
        )
        self.store.add_deliveries([delivery])
        return delivery_view(delivery)

    def _own(self, principal: Principal, endpoint_id: UUID) -> WebhookEndpoint:
        endpoint = self.store.get_endpoint(endpoint_id)
        if endpoint is None:
            raise NotFound("no such webhook")
        endpoint.check_owned_by(principal.user_id)
        return endpoint


def _decode_cursor(cursor: str) -> int:
    if not cursor.isdigit() or len(cursor) > 18:
        raise ValidationError("cursor", "not a cursor from this list")
    return int(cursor)


def delivery_id(endpoint_id: UUID, event_id: str) -> UUID:
    """The same event to the same endpoint is one delivery, however often it is announced."""
    return uuid.uuid5(endpoint_id, event_id)
