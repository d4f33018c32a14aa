"""The notifier: video-processed-events become deliveries, and deliveries become signed POSTs.

Two halves, joined only by the store, so the retry state is durable and a restart resumes it:
- `Notifier.enqueue` turns one integration event into one delivery per endpoint that wants it
  (idempotent: a redelivered event maps to the same delivery ids), then the message may be
  committed;
- `WebhookDispatcher` claims due deliveries and sends each in its own task, one at a time per
  endpoint, so a slow or dead endpoint only ever holds back its own deliveries. A failed
  attempt is scheduled again with exponential backoff and jitter; nothing sleeps on it."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import anyio
import msgspec
from anyio import to_thread
from anyio.abc import TaskGroup

from application.integration_events import VideoProcessed
from application.ports import Clock
from application.webhook_ports import AttemptResult, SecretBox, WebhookSender, WebhookStore
from application.webhooks import delivery_id
from domain.webhooks import Delivery, WebhookEndpoint, backoff

logger = logging.getLogger("vodhub.notifier")

ATTEMPT_TIMEOUT_S = 10.0
# A claimed delivery whose dispatcher died mid-attempt is taken again after this.
LEASE = timedelta(seconds=ATTEMPT_TIMEOUT_S * 6)
KEEP_LOG_FOR = timedelta(days=30)  # finished deliveries stay in the log this long
PRUNE_EVERY = timedelta(hours=1)


def webhook_body(event: VideoProcessed) -> tuple[str, bytes]:
    """The event type and the JSON body of the webhook announcing the integration event."""
    event_type = f"video.{event.status}"
    data: dict[str, Any] = {"id": event.video_id, "owner_id": event.owner_id, "status": event.status,
                  "failure_reason": event.failure_reason}
    if event.video is not None:
        data |= msgspec.to_builtins(event.video)
        data["status"] = event.video.status
    return event_type, msgspec.json.encode({"type": event_type, "timestamp": event.processed_at, "data": data})


class Notifier:
    def __init__(self, store: WebhookStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def enqueue(self, event: VideoProcessed) -> int:
        """Queue a delivery of the event to every endpoint that wants it; how many were new."""
        event_type, body = webhook_body(event)
        owner = UUID(event.owner_id) if event.owner_id else None
        endpoints = self.store.endpoints_receiving(event_type, owner)
        now = self.clock.now()
        return self.store.add_deliveries([
            Delivery(id=delivery_id(endpoint.id, event.event_id), endpoint_id=endpoint.id, event_type=event_type,
                     video_id=UUID(event.video_id), payload=body.decode(), created_at=now, next_attempt_at=now)
            for endpoint in endpoints
        ])


class WebhookDispatcher:
    def __init__(
        self, store: WebhookStore, box: SecretBox, sender: WebhookSender, clock: Clock, *,
        first_retry_s: float = 5.0, jitter: Callable[[], float] = random.random, concurrency: int = 32,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.store = store
        self.box = box
        self.sender = sender
        self.clock = clock
        self.first_retry_s = first_retry_s
        self.jitter = jitter
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self._busy: set[UUID] = set()  # endpoints with an attempt under way in this process
        self._lane_freed: anyio.Event | None = None  # set while run() waits for its next round

    async def run(self) -> None:
        """Deliver whatever falls due, until cancelled; a store outage only pauses it."""
        pruned_at = None
        async with anyio.create_task_group() as group:
            while True:
                self._lane_freed = anyio.Event()
                try:
                    await self._start_due(group)
                    if pruned_at is None or self.clock.now() - pruned_at >= PRUNE_EVERY:
                        pruned_at = self.clock.now()
                        await to_thread.run_sync(self.store.prune, pruned_at - KEEP_LOG_FOR)
                except Exception as error:  # the database is away: keep trying, loudly
                    logger.warning("notifier: cannot claim deliveries (%s); retrying", error)
                # An endpoint's next delivery may go as soon as its previous one ended.
                with anyio.move_on_after(self.poll_interval_s):
                    await self._lane_freed.wait()

    async def deliver_due(self) -> int:
        """One round: claim what is due now, attempt it, and return once every attempt ended."""
        async with anyio.create_task_group() as group:
            started = await self._start_due(group)
        return started

    async def _start_due(self, group: TaskGroup) -> int:
        room = self.concurrency - len(self._busy)
        if room <= 0:
            return 0
        now = self.clock.now()
        claimed = await to_thread.run_sync(
            lambda: self.store.claim_due(now, now + LEASE, room, busy=frozenset(self._busy))
        )
        for delivery in claimed:
            self._busy.add(delivery.endpoint_id)
            group.start_soon(self._attempt_releasing, delivery)
        return len(claimed)

    async def _attempt_releasing(self, delivery: Delivery) -> None:
        try:
            await self.attempt(delivery)
        except Exception:  # the lease runs out and the delivery is tried again
            logger.exception("notifier: attempt at %s failed unexpectedly", delivery.message_id)
        finally:
            self._busy.discard(delivery.endpoint_id)
            if self._lane_freed is not None:
                self._lane_freed.set()

    async def attempt(self, delivery: Delivery) -> None:
        """Send one attempt and record its outcome with the endpoint's failure state."""
        endpoint = await to_thread.run_sync(self.store.get_endpoint, delivery.endpoint_id)
        if endpoint is None:
            return  # deleted meanwhile, its deliveries with it
        if endpoint.disabled:
            delivery.abandon(f"the endpoint is disabled: {endpoint.disabled_reason}")
            await to_thread.run_sync(self.store.record_attempt, delivery, endpoint)
            return
        result = await self._send(endpoint, delivery)
        now = self.clock.now()
        if result.succeeded:
            assert result.status_code is not None
            delivery.succeeded(now, result.status_code)
            endpoint.attempt_succeeded()
        else:
            error = result.error or f"HTTP {result.status_code}"
            delivery.failed(now, result.status_code, error, backoff(delivery.attempt + 1, self.first_retry_s,
                                                                    self.jitter()))
            endpoint.attempt_failed(now, error)
            logger.info("notifier: %s to endpoint %s failed (attempt %d): %s", delivery.message_id, endpoint.id,
                        delivery.attempt, error)
        await to_thread.run_sync(self.store.record_attempt, delivery, endpoint)

    async def _send(self, endpoint: WebhookEndpoint, delivery: Delivery) -> AttemptResult:
        try:
            secret = self.box.open(endpoint.sealed_secret, str(endpoint.id))
        except ValueError:
            return AttemptResult(None, "the endpoint's secret cannot be read with the current key")
        with anyio.move_on_after(ATTEMPT_TIMEOUT_S + 1) as scope:  # the sender's own timeout is 10 s
            return await self.sender.send(endpoint.url, secret, delivery.message_id, self.clock.now(),
                                          delivery.payload.encode())
        assert scope.cancelled_caught
        return AttemptResult(None, f"no answer within {ATTEMPT_TIMEOUT_S:.0f} s")
