"""Idempotent multi-step requests: the one result of a request that may be sent twice.

A request that takes long (a tus upload's completion copies the whole file) may be retried
by its client on another replica while the first is still at work. Both may do the work, but
only one may record its result: each records a Completion whose id is uuid5 of the request's
key, atomically with the result itself. The second save conflicts on the completion's id
(optimistic concurrency in the event store, shared by every replica), and the loser answers
with the winner's result."""

from __future__ import annotations

import uuid
from uuid import UUID

from eventsourcing.domain import Aggregate, event

_NAMESPACE = uuid.UUID("5f0c5e42-6a55-4c4b-9a4e-3f0a0e7c1d21")


def completion_id(scope: str, key: UUID) -> UUID:
    """The one id a request's completion can have, e.g. ("tus-upload", upload id)."""
    return uuid.uuid5(_NAMESPACE, f"{scope}:{key}")


class Completion(Aggregate):
    @event("Recorded")
    def __init__(self, id: UUID, scope: str, key: UUID, result_id: UUID) -> None:
        self.scope = scope
        self.key = key
        self.result_id = result_id

    @classmethod
    def record(cls, scope: str, key: UUID, result_id: UUID) -> Completion:
        return cls(id=completion_id(scope, key), scope=scope, key=key, result_id=result_id)
