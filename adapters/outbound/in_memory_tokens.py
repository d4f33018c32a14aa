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
        self._lock = threading.Lock()

    def revoke(self, token_id: str, until: datetime) -> None:
        with self._lock:
            self._forget_expired()
            self._until[token_id] = until

    def is_revoked(self, *token_ids: str) -> bool:
        with self._lock:
            now = self._clock.now()
            return any((until := self._until.get(token_id)) is not None and until > now for token_id in token_ids)

    def answers_without_io(self) -> bool:
        return True

    def _forget_expired(self) -> None:
        now = self._clock.now()
        for token_id in [t for t, until in self._until.items() if until <= now]:
            del self._until[token_id]


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
