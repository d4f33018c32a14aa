"""The webhooks ports in memory: the store, and a sender that signs like the real one and
answers as told (the embedded default never needs it; unit tests do)."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from adapters.outbound.webhook_signing import signed_headers
from application.webhook_ports import AttemptResult
from domain.webhooks import PENDING, Delivery, WebhookEndpoint


class InMemoryWebhookStore:
    def __init__(self) -> None:
        self._endpoints: dict[UUID, WebhookEndpoint] = {}
        self._deliveries: dict[UUID, Delivery] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        with self._lock:
            self._endpoints[endpoint.id] = copy.deepcopy(endpoint)

    def count_endpoints(self, owner_id: UUID) -> int:
        with self._lock:
            return sum(1 for e in self._endpoints.values() if e.owner_id == owner_id)

    def get_endpoint(self, endpoint_id: UUID) -> WebhookEndpoint | None:
        with self._lock:
            endpoint = self._endpoints.get(endpoint_id)
            return copy.deepcopy(endpoint) if endpoint else None

    def list_endpoints(self, owner_id: UUID) -> list[WebhookEndpoint]:
        with self._lock:
            found = [e for e in self._endpoints.values() if e.owner_id == owner_id]
            return copy.deepcopy(sorted(found, key=lambda e: (e.created_at, str(e.id))))

    def delete_endpoint(self, endpoint_id: UUID) -> None:
        with self._lock:
            self._endpoints.pop(endpoint_id, None)
            for key in [k for k, d in self._deliveries.items() if d.endpoint_id == endpoint_id]:
                del self._deliveries[key]

    def endpoints_receiving(self, event_type: str, video_owner_id: UUID | None) -> list[WebhookEndpoint]:
        with self._lock:
            return copy.deepcopy([e for e in self._endpoints.values() if e.receives(event_type, video_owner_id)])

    def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        added = 0
        with self._lock:
            for delivery in deliveries:
                if delivery.id in self._deliveries or delivery.endpoint_id not in self._endpoints:
                    continue
                kept = copy.deepcopy(delivery)
                kept.seq = next(self._seq)
                self._deliveries[kept.id] = kept
                added += 1
        return added

    def claim_due(self, now: datetime, lease_until: datetime, limit: int, busy: Collection[UUID] = ()) -> list[Delivery]:
        claimed: list[Delivery] = []
        taken = set(busy)
        with self._lock:
            pending = sorted((d for d in self._deliveries.values() if d.status == PENDING), key=lambda d: d.seq or 0)
            for delivery in pending:
                endpoint = self._endpoints.get(delivery.endpoint_id)
                if (len(claimed) >= limit or endpoint is None or endpoint.disabled or delivery.endpoint_id in taken
                        or delivery.next_attempt_at is None or delivery.next_attempt_at > now
                        or self._has_older_pending(delivery, pending)):
                    continue
                delivery.next_attempt_at = lease_until
                taken.add(delivery.endpoint_id)
                claimed.append(copy.deepcopy(delivery))
        return claimed

    @staticmethod
    def _has_older_pending(delivery: Delivery, pending: list[Delivery]) -> bool:
        return delivery.video_id is not None and any(
            other.endpoint_id == delivery.endpoint_id and other.video_id == delivery.video_id
            and (other.seq or 0) < (delivery.seq or 0) for other in pending
        )

    def record_attempt(self, delivery: Delivery, endpoint: WebhookEndpoint) -> None:
        with self._lock:
            if delivery.id not in self._deliveries or endpoint.id not in self._endpoints:
                return  # deleted meanwhile
            seq = self._deliveries[delivery.id].seq
            self._deliveries[delivery.id] = copy.deepcopy(delivery)
            self._deliveries[delivery.id].seq = seq
            kept = self._endpoints[endpoint.id]
            kept.failing_since, kept.disabled_at, kept.disabled_reason = (
                endpoint.failing_since, endpoint.disabled_at, endpoint.disabled_reason)
            if endpoint.disabled:
                for other in self._deliveries.values():
                    if other.endpoint_id == endpoint.id:
                        other.abandon(f"the endpoint was disabled: {endpoint.disabled_reason}")

    def list_deliveries(self, endpoint_id: UUID, *, before: int | None, limit: int) -> list[Delivery]:
        with self._lock:
            found = [d for d in self._deliveries.values()
                     if d.endpoint_id == endpoint_id and (before is None or (d.seq or 0) < before)]
            return copy.deepcopy(sorted(found, key=lambda d: d.seq or 0, reverse=True)[:limit])

    def prune(self, created_before: datetime) -> int:
        with self._lock:
            old = [key for key, d in self._deliveries.items() if d.status != PENDING and d.created_at < created_before]
            for key in old:
                del self._deliveries[key]
            return len(old)


@dataclass(frozen=True)
class SentRequest:
    url: str
    headers: dict[str, str]
    body: bytes


Responder = Callable[[SentRequest], Awaitable[AttemptResult]]


class InMemoryWebhookSender:
    """Signs exactly as the HTTP sender does and hands the request to a responder per URL
    (default: 200), keeping every request it was given."""

    def __init__(self) -> None:
        self.sent: list[SentRequest] = []
        self.responders: dict[str, Responder] = {}

    async def send(self, url: str, secret: bytes, message_id: str, timestamp: datetime, body: bytes) -> AttemptResult:
        request = SentRequest(url, signed_headers(secret, message_id, timestamp, body), body)
        self.sent.append(request)
        responder = self.responders.get(url)
        return await responder(request) if responder else AttemptResult(200)

    def answer(self, url: str, *status_codes: int) -> None:
        """Answer the next requests to url with these statuses, then 200."""
        queue = list(status_codes)

        async def respond(_: SentRequest) -> AttemptResult:
            return AttemptResult(queue.pop(0) if queue else 200)

        self.responders[url] = respond
