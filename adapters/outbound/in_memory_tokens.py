"""In-process twins of the revocation list and refresh-token store (embedded default, unit tests)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from application.ports import Clock, RefreshGrant


class InMemoryRevocationList:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until: dict[str, datetime] = {}
        self._user_cutoffs: dict[UUID, tuple[datetime, datetime]] = {}  # user -> (cutoff, until)
        self._lock = threading.Lock()

    def revoke_issued_before(self, user_id: UUID, cutoff: datetime, until: datetime) -> None:
        with self._lock:
            self._forget_expired()
            previous = self._user_cutoffs.get(user_id)
            if previous is None or previous[0] < cutoff:
                self._user_cutoffs[user_id] = (cutoff, until)

    def revoke(self, token_id: str, until: datetime) -> None:
        with self._lock:
            self._forget_expired()
            self._until[token_id] = until

    def is_revoked(self, *token_ids: str, user_id: UUID | None = None, issued_at: datetime | None = None) -> bool:
        with self._lock:
            now = self._clock.now()
            if any((until := self._until.get(token_id)) is not None and until > now for token_id in token_ids):
                return True
            cutoff = self._user_cutoffs.get(user_id) if user_id is not None else None
            return cutoff is not None and cutoff[1] > now and issued_at is not None and issued_at < cutoff[0]

    def answers_without_io(self) -> bool:
        return True

    def _forget_expired(self) -> None:
        now = self._clock.now()
        for token_id in [t for t, until in self._until.items() if until <= now]:
            del self._until[token_id]
        for user_id in [u for u, (_, until) in self._user_cutoffs.items() if until <= now]:
            del self._user_cutoffs[user_id]


@dataclass
class _Entry:
    user_id: UUID
    family_id: str
    expires_at: datetime
    uses: int = 0


class InMemoryRefreshTokenStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tokens: dict[str, _Entry] = {}
        self._revoked_families: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def add(self, token_hash: str, user_id: UUID, family_id: str, expires_at: datetime) -> None:
        with self._lock:
            now = self._clock.now()
            self._tokens = {h: e for h, e in self._tokens.items() if e.expires_at > now}
            self._tokens[token_hash] = _Entry(user_id, family_id, expires_at)

    def use(self, token_hash: str) -> RefreshGrant | None:
        with self._lock:
            entry = self._tokens.get(token_hash)
            if entry is None or entry.expires_at <= self._clock.now():
                return None
            entry.uses += 1
            return RefreshGrant(entry.user_id, entry.family_id, entry.expires_at, entry.uses > 1)

    def revoke_family(self, family_id: str, until: datetime) -> None:
        with self._lock:
            now = self._clock.now()
            self._revoked_families = {f: u for f, u in self._revoked_families.items() if u > now}
            self._revoked_families[family_id] = until

    def is_family_revoked(self, family_id: str) -> bool:
        with self._lock:
            until = self._revoked_families.get(family_id)
            return until is not None and until > self._clock.now()
