"""Ports of the webhooks context: where endpoints and deliveries are kept, how secrets are
kept unreadable at rest, and how a signed delivery reaches an endpoint."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.webhooks import Delivery, WebhookEndpoint


class SecretBox(Protocol):
    def seal(self, secret: bytes, context: str) -> str:
        """The secret encrypted and authenticated, bound to context (an endpoint id), as text."""

    def open(self, sealed: str, context: str) -> bytes:
        """The secret back; raises ValueError if sealed was altered or belongs to another context."""


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None  # None when no HTTP answer came (refused, unreachable, timed out)
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    async def send(self, url: str, secret: bytes, message_id: str, timestamp: datetime, body: bytes) -> AttemptResult:
        """Sign the body (Standard Webhooks) and POST it once; the endpoint's faults are results, not errors."""


class WebhookStore(Protocol):
    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Keep a newly registered endpoint."""

    def count_endpoints(self, owner_id: UUID) -> int:
        """How many endpoints the user has."""

    def get_endpoint(self, endpoint_id: UUID) -> WebhookEndpoint | None:
        """The endpoint, or None when unknown."""

    def list_endpoints(self, owner_id: UUID) -> list[WebhookEndpoint]:
        """The user's endpoints, oldest first."""

    def delete_endpoint(self, endpoint_id: UUID) -> None:
        """Forget the endpoint and its deliveries."""

    def endpoints_receiving(self, event_type: str, video_owner_id: UUID | None) -> list[WebhookEndpoint]:
        """The enabled endpoints that want this event about a video of this owner."""

    def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Keep new deliveries, skipping ids already kept (a redelivered event); how many were new."""

    def claim_due(self, now: datetime, lease_until: datetime, limit: int, busy: Collection[UUID] = ()) -> list[Delivery]:
        """Pending deliveries due by now, at most one per endpoint and none for the `busy` ones,
        none of a video while an older delivery of it to the same endpoint is pending. Each is
        claimed by moving its next attempt to lease_until, so no other dispatcher takes it meanwhile."""

    def record_attempt(self, delivery: Delivery, endpoint: WebhookEndpoint) -> None:
        """Save the delivery's outcome and the endpoint's failure state together; when the
        endpoint was disabled, its other pending deliveries are given up."""

    def list_deliveries(self, endpoint_id: UUID, *, before: int | None, limit: int) -> list[Delivery]:
        """The endpoint's deliveries, newest first, older than the `before` seq when given."""

    def prune(self, created_before: datetime) -> int:
        """Forget finished (delivered or failed) deliveries created before then; how many."""
