"""Webhooks: endpoints that subscribe to video events, and the deliveries made to them.

Both are state-stored entities, not event-sourced aggregates. An endpoint is configuration,
and a delivery's state changes on every attempt (dozens over days) and is queried by due
time across all endpoints; the notifier needs the current state at once, transactionally,
not a projection that lags the log. The rules still live here: what a valid endpoint is,
who sees it, how long a failing delivery is retried and when an endpoint is disabled."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from domain.errors import Conflict, NotFound, PermissionDenied, ValidationError
from domain.users import ADMIN

EVENT_TYPES = ("video.processing", "video.playable", "video.ready", "video.failed", "video.deleted")
TEST_EVENT = "webhook.test"
SCOPES = ("own", "all")  # a user's own videos; every video (admins only)
MAX_ENDPOINTS_PER_USER = 10
URL_MAX = 2048
DESCRIPTION_MAX = 500
RETRY_FOR = timedelta(days=5)  # a delivery is retried this long (the contract says at least 24 h)
DISABLE_AFTER = timedelta(days=5)  # an endpoint failing for this long is disabled
MAX_BACKOFF = timedelta(hours=6)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a webhook may be sent there: globally routable unicast only. IPv4-mapped IPv6
    addresses are refused outright, whatever they map to: they exist to smuggle IPv4 past
    checks that only look at IPv6 ranges."""
    if isinstance(address, ipaddress.IPv6Address) and (address.ipv4_mapped or address.sixtofour or address.teredo):
        return False
    return address.is_global and not (
        address.is_multicast or address.is_loopback or address.is_link_local or address.is_private
        or address.is_unspecified or address.is_reserved
    )


def check_url(url: str, *, allow_http: bool = False, allow_private: bool = False) -> str:
    """An absolute https URL (http too when allowed) without credentials or fragment, whose
    host is not a non-public address literal or localhost. Whether a host name resolves to a
    public address can only be known when sending, so it is checked at every delivery."""
    if len(url) > URL_MAX:
        raise ValidationError("url", f"at most {URL_MAX} characters")
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise ValidationError("url", "spaces and control characters are not allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("url", "not a URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise ValidationError("url", "must be an https:// URL")
    if not parts.hostname:
        raise ValidationError("url", "needs a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("url", "must not carry credentials")
    if parts.fragment:
        raise ValidationError("url", "must not have a fragment")
    if port == 0:
        raise ValidationError("url", "not a valid port")
    if not allow_private and _names_a_private_host(parts.hostname):
        raise ValidationError("url", "must not point at a loopback, private, link-local or otherwise non-public address")
    return url


def _names_a_private_host(host: str) -> bool:
    host = host.rstrip(".").casefold()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not is_public_address(ipaddress.ip_address(host))
    except ValueError:  # a name, not an address
        return False


def check_event_types(events: list[str]) -> list[str]:
    """Known event types, de-duplicated in order; at least one."""
    unknown = [name for name in events if name not in EVENT_TYPES]
    if unknown:
        raise ValidationError("events", f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
    cleaned = list(dict.fromkeys(events))
    if not cleaned:
        raise ValidationError("events", "subscribe to at least one event type")
    return cleaned


def check_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError("description", f"at most {DESCRIPTION_MAX} characters")
    if any((ord(ch) < 32 and ch not in "\t") or ord(ch) == 127 for ch in description):
        raise ValidationError("description", "control characters are not allowed")
    return description.strip()


def check_scope(scope: str, roles: tuple[str, ...]) -> str:
    if scope not in SCOPES:
        raise ValidationError("scope", f"one of {', '.join(SCOPES)}")
    if scope == "all" and ADMIN not in roles:
        raise PermissionDenied("only an admin's webhooks may receive every video's events")
    return scope


def backoff(attempt: int, first_retry_s: float, jitter: float) -> timedelta:
    """The pause after the attempt-th failure: doubling from first_retry_s up to MAX_BACKOFF,
    then scaled into [50 %, 100 %) by jitter ∈ [0, 1) so failed endpoints do not retry in step."""
    if not 0 <= jitter < 1:
        raise ValueError("jitter is a fraction in [0, 1)")
    exponent = min(attempt - 1, 40)  # 2**40 s is far past MAX_BACKOFF; avoids huge floats
    delay = min(timedelta(seconds=first_retry_s * 2**exponent), MAX_BACKOFF)
    return delay * (0.5 + jitter / 2)


@dataclass
class WebhookEndpoint:
    id: UUID
    owner_id: UUID
    url: str
    events: list[str]
    description: str
    scope: str
    created_at: datetime
    sealed_secret: str  # the signing secret as the SecretBox sealed it; never shown again
    failing_since: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None

    @classmethod
    def register(
        cls, *, id: UUID, owner_id: UUID, owner_roles: tuple[str, ...], url: str, events: list[str],
        description: str, scope: str, existing: int, sealed_secret: str, now: datetime,
        allow_http: bool = False, allow_private: bool = False,
    ) -> WebhookEndpoint:
        """`existing` is how many endpoints the owner has already."""
        if existing >= MAX_ENDPOINTS_PER_USER:
            raise Conflict(f"at most {MAX_ENDPOINTS_PER_USER} webhooks per user; delete one first")
        return cls(
            id=id, owner_id=owner_id, url=check_url(url, allow_http=allow_http, allow_private=allow_private),
            events=check_event_types(events),
            description=check_description(description), scope=check_scope(scope, owner_roles), created_at=now,
            sealed_secret=sealed_secret,
        )

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def check_owned_by(self, actor_id: UUID) -> None:
        """Others' endpoints do not exist as far as they can tell."""
        if actor_id != self.owner_id:
            raise NotFound("no such webhook")

    def check_enabled(self) -> None:
        if self.disabled:
            raise Conflict(f"the webhook is disabled: {self.disabled_reason}; register it again to resume deliveries")

    def receives(self, event_type: str, video_owner_id: UUID | None) -> bool:
        if self.disabled or event_type not in self.events:
            return False
        return self.scope == "all" or (video_owner_id is not None and video_owner_id == self.owner_id)

    def attempt_succeeded(self) -> None:
        self.failing_since = None

    def attempt_failed(self, now: datetime, error: str) -> None:
        """An endpoint that has not answered a single delivery for DISABLE_AFTER is disabled."""
        if self.failing_since is None:
            self.failing_since = now
        elif now - self.failing_since >= DISABLE_AFTER and not self.disabled:
            self.disabled_at = now
            self.disabled_reason = (
                f"every delivery failed since {self.failing_since.isoformat()} ({DISABLE_AFTER.days} days); "
                f"last error: {error}"
            )[:500]


@dataclass
class Delivery:
    id: UUID  # stable per (endpoint, event): the webhook-id of every attempt
    endpoint_id: UUID
    event_type: str
    video_id: UUID | None
    payload: str  # the JSON body, signed as is
    created_at: datetime
    next_attempt_at: datetime | None
    attempt: int = 0
    status: str = PENDING
    status_code: int | None = None
    error: str | None = None
    delivered_at: datetime | None = None
    seq: int | None = field(default=None, compare=False)  # creation order, given by the store

    @property
    def message_id(self) -> str:
        return f"msg_{self.id.hex}"

    def succeeded(self, now: datetime, status_code: int) -> None:
        self.attempt += 1
        self.status, self.status_code, self.error = DELIVERED, status_code, None
        self.delivered_at, self.next_attempt_at = now, None

    def failed(self, now: datetime, status_code: int | None, error: str, retry_in: timedelta) -> None:
        """Retried after `retry_in` until RETRY_FOR has passed since it was created."""
        self.attempt += 1
        self.status_code, self.error = status_code, error[:500]
        if now - self.created_at >= RETRY_FOR:
            self.status, self.next_attempt_at = FAILED, None
        else:
            self.next_attempt_at = now + retry_in

    def abandon(self, reason: str) -> None:
        if self.status == PENDING:
            self.status, self.error, self.next_attempt_at = FAILED, reason[:500], None
