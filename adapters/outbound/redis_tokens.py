"""Revocation list and refresh-token store in Redis, shared by every API replica."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar
from uuid import UUID

import redis
from redis.exceptions import RedisError

from adapters.outbound.breakers import Breaker, CircuitOpen, standalone_breaker
from application.errors import Unavailable
from application.ports import Clock, RefreshGrant

logger = logging.getLogger("vodhub.tokens")
P = ParamSpec("P")
T = TypeVar("T")


class _Outage:
    """The chosen behaviour while Redis is down, in one place:
    - checking an access token's revocation fails OPEN: the token is accepted (it expires
      within the access-token lifetime, 15 minutes by default) and the outage is logged;
    - anything that writes or spends a refresh token, and logging out, fails CLOSED with
      503: a refresh token must never be spent twice and a logout must not be lost."""

    def __init__(self) -> None:
        self.logged = False

    def warn_once(self, error: Exception) -> None:
        if not self.logged:
            logger.warning("redis unavailable; revocation checks accept unexpired tokens: %s", error)
            self.logged = True

    def recovered(self) -> None:
        self.logged = False


def _fails_closed(method: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            with args[0]._breaker:  # type: ignore[attr-defined]
                return method(*args, **kwargs)
        except RedisError as error:
            raise Unavailable(f"the token store is unavailable: {error}") from None

    return guarded


def _expire_at(until: datetime) -> int:
    """Unix seconds, rounded up so a key never outlives less than its token."""
    return int(until.timestamp()) + 1


class RedisRevocationList:
    def __init__(self, client: redis.Redis, clock: Clock, prefix: str = "vodhub:", breaker: Breaker | None = None) -> None:
        self._redis = client
        self._clock = clock
        self._prefix = f"{prefix}revoked:"
        self._outage = _Outage()
        self._breaker = breaker or standalone_breaker("redis")

    @_fails_closed
    def revoke(self, token_id: str, until: datetime) -> None:
        if until > self._clock.now():
            self._redis.set(self._prefix + token_id, b"1", exat=_expire_at(until))

    @_fails_closed
    def revoke_issued_before(self, user_id: UUID, cutoff: datetime, until: datetime) -> None:
        if until > self._clock.now():
            key = self._user_cutoffs_key(user_id)
            with self._redis.pipeline(transaction=True) as pipe:
                # A one-member sorted set for ZADD GT: a later cutoff replaces an earlier one, never
                # the other way round, atomically.
                pipe.zadd(key, {"cutoff": cutoff.timestamp()}, gt=True)
                pipe.expireat(key, _expire_at(until))
                pipe.execute()

    def is_revoked(self, *token_ids: str, user_id: UUID | None = None, issued_at: datetime | None = None) -> bool:
        try:
            with self._breaker, self._redis.pipeline(transaction=False) as pipe:
                pipe.exists(*(self._prefix + token_id for token_id in token_ids))
                if user_id is not None:
                    pipe.zscore(self._user_cutoffs_key(user_id), "cutoff")
                answers = pipe.execute()
        except (RedisError, CircuitOpen) as error:
            self._outage.warn_once(error)
            return False
        self._outage.recovered()
        if answers[0]:
            return True
        cutoff = answers[1] if len(answers) > 1 else None
        return cutoff is not None and issued_at is not None and issued_at.timestamp() < cutoff

    def _user_cutoffs_key(self, user_id: UUID) -> str:
        return f"{self._prefix}user:{user_id}"


class RedisRefreshTokenStore:
    """One hash per token; HINCRBY on `uses` is atomic, so of two concurrent refreshes with
    the same token exactly one sees uses == 1."""

    def __init__(self, client: redis.Redis, clock: Clock, prefix: str = "vodhub:", breaker: Breaker | None = None) -> None:
        self._redis = client
        self._clock = clock
        self._breaker = breaker or standalone_breaker("redis")
        self._token_prefix = f"{prefix}refresh:"
        self._family_prefix = f"{prefix}refresh-family-revoked:"

    @_fails_closed
    def add(self, token_hash: str, user_id: UUID, family_id: str, expires_at: datetime) -> None:
        key = self._token_prefix + token_hash
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "user_id": str(user_id), "family_id": family_id,
                "expires_at": str(expires_at.timestamp()), "uses": 0,
            })
            pipe.expireat(key, _expire_at(expires_at))
            pipe.execute()

    @_fails_closed
    def use(self, token_hash: str) -> RefreshGrant | None:
        key = self._token_prefix + token_hash
        if not self._redis.exists(key):
            return None
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "uses", 1)
            pipe.hgetall(key)
            uses, fields = pipe.execute()
        if b"user_id" not in fields:  # expired between the two calls; drop the stub HINCRBY made
            self._redis.delete(key)
            return None
        expires_at = datetime.fromtimestamp(float(fields[b"expires_at"]), UTC)
        return RefreshGrant(
            user_id=UUID(fields[b"user_id"].decode()), family_id=fields[b"family_id"].decode(),
            expires_at=expires_at, already_used=uses > 1,
        )

    @_fails_closed
    def revoke_family(self, family_id: str, until: datetime) -> None:
        if until > self._clock.now():
            self._redis.set(self._family_prefix + family_id, b"1", exat=_expire_at(until))

    @_fails_closed
    def is_family_revoked(self, family_id: str) -> bool:
        return bool(self._redis.exists(self._family_prefix + family_id))
