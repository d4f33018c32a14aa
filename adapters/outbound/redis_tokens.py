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
from adapters.outbound.redis_invalidations import InvalidationChannel
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
    """With an invalidation channel, each process also mirrors the list (it is short: ids and
    users' cutoffs revoked within the access-token lifetime): is_revoked then answers from memory
    while the channel is up, and every revocation is published to all processes as it is written."""

    KIND = "revoked"
    USER_KIND = "revoked-user"

    def __init__(
        self, client: redis.Redis, clock: Clock, prefix: str = "vodhub:", breaker: Breaker | None = None,
        channel: InvalidationChannel | None = None,
    ) -> None:
        self._redis = client
        self._clock = clock
        self._prefix = f"{prefix}revoked:"
        self._channel_name = f"{prefix}invalidations"
        self._outage = _Outage()
        self._breaker = breaker or standalone_breaker("redis")
        self._channel = channel
        self._mirror: dict[str, int] = {}  # id -> Unix seconds it stays revoked until
        self._cutoffs: dict[str, tuple[float, int]] = {}  # user id -> (cutoff, Unix seconds kept until)
        if channel is not None:
            channel.listen(self.KIND, self)
            channel.listen(self.USER_KIND, self)

    @_fails_closed
    def revoke(self, token_id: str, until: datetime) -> None:
        if until > self._clock.now():
            expire_at = _expire_at(until)
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._prefix + token_id, b"1", exat=expire_at)
                pipe.publish(self._channel_name, f"{self.KIND}:{expire_at} {token_id}")
                pipe.execute()
            self._remember(token_id, expire_at)  # this process knows before the message returns

    @_fails_closed
    def revoke_issued_before(self, user_id: UUID, cutoff: datetime, until: datetime) -> None:
        if until > self._clock.now():
            expire_at = _expire_at(until)
            with self._redis.pipeline(transaction=True) as pipe:
                # A one-member sorted set for ZADD GT: a later cutoff replaces an earlier one, never
                # the other way round, atomically.
                pipe.zadd(self._user_cutoffs_key(user_id), {"cutoff": cutoff.timestamp()}, gt=True)
                pipe.expireat(self._user_cutoffs_key(user_id), expire_at)
                pipe.publish(self._channel_name, f"{self.USER_KIND}:{expire_at} {user_id} {cutoff.timestamp()!r}")
                pipe.execute()
            self._remember_cutoff(str(user_id), cutoff.timestamp(), expire_at)

    def answers_without_io(self) -> bool:
        return self._channel is not None and self._channel.live

    def is_revoked(self, *token_ids: str, user_id: UUID | None = None, issued_at: datetime | None = None) -> bool:
        if self.answers_without_io():
            # Every request asks, and the mirror is mostly empty: no clock read or user id
            # formatted unless there is something to compare them with.
            mirror, cutoffs = self._mirror, self._cutoffs
            if not mirror and not cutoffs:
                return False
            now = self._clock.now().timestamp()
            for token_id in token_ids:
                if mirror.get(token_id, 0) > now:
                    return True
            cutoff, kept_until = cutoffs.get(str(user_id), (None, 0)) if user_id is not None and cutoffs else (None, 0)
            return cutoff is not None and kept_until > now and issued_at is not None and issued_at.timestamp() < cutoff
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

    def resync(self) -> None:
        """Read the whole list again (the channel was down: revocations may have been missed)."""
        keys = list(self._redis.scan_iter(match=self._prefix + "*", count=1000))
        users = [key for key in keys if key.decode()[len(self._prefix):].startswith("user:")]
        with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.ttl(key)
            for key in users:
                pipe.zscore(key, "cutoff")
            answers = pipe.execute()
        lives, scores = dict(zip(keys, answers[: len(keys)], strict=True)), answers[len(keys):]
        now = int(self._clock.now().timestamp())
        start = len(self._prefix)
        self._mirror = {key.decode()[start:]: now + life + 1 for key, life in lives.items()
                        if life > 0 and key not in users}
        self._cutoffs = {key.decode()[start + len("user:"):]: (score, now + lives[key] + 1)
                         for key, score in zip(users, scores, strict=True) if score is not None and lives[key] > 0}

    def invalidated(self, kind: str, payload: str) -> None:
        if kind == self.USER_KIND:
            expire_at, user_id, cutoff = payload.split(" ")
            self._remember_cutoff(user_id, float(cutoff), int(expire_at))
            return
        expire_at, _, token_id = payload.partition(" ")
        self._remember(token_id, int(expire_at))

    def _remember(self, token_id: str, expire_at: int) -> None:
        mirror = self._mirror
        mirror[token_id] = max(expire_at, mirror.get(token_id, 0))
        if len(mirror) % 1024 == 0:  # now and then, forget what has expired
            now = self._clock.now().timestamp()
            self._mirror = {key: until for key, until in mirror.items() if until > now}

    def _remember_cutoff(self, user_id: str, cutoff: float, expire_at: int) -> None:
        known = self._cutoffs.get(user_id)
        if known is None or known[0] < cutoff:
            self._cutoffs[user_id] = (cutoff, expire_at)
        elif known[1] < expire_at:
            self._cutoffs[user_id] = (known[0], expire_at)

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
