"""Circuit breakers, one per dependency (postgresql, s3, kafka, redis), on `purgatory`.

purgatory (maintained, typed, MIT) was chosen over aiobreaker (no release since 2021) and
pybreaker (its async support is Tornado's): its state machine is plain synchronous code, so
one breaker guards both the synchronous clients (psycopg, SQLAlchemy, redis-py, run in
threads) and the asyncio ones (obstore, aiokafka, redis.asyncio) of the same server.

Only outages count: a failed connection or a timeout, never an answer the server gave (a
unique-key conflict, a missing key). While a breaker is open every guarded call fails at once
with `CircuitOpen` (503 + Retry-After); after `open_s` calls are tried again (half-open): the
first success closes the breaker, a failure opens it again."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Gauge
from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from application.errors import Unavailable

logger = logging.getLogger("vodhub.breakers")

DEPENDENCIES = ("postgresql", "s3", "kafka", "redis")
STATE_VALUES = {"closed": 0, "opened": 1, "half-opened": 2}
STATE_NAMES = {"closed": "closed", "opened": "open", "half-opened": "half-open"}

BREAKER_STATE = Gauge(
    "vodhub_breaker_state", "Circuit breaker state per dependency: 0 closed, 1 open, 2 half-open.",
    ["dependency"], multiprocess_mode="livemax",
)


class CircuitOpen(Unavailable, ConnectionError):
    """A dependency's breaker is open: the call was not even tried. A ConnectionError too, so
    code that treats outages as transient (retries, fallbacks) treats this one alike."""

    def __init__(self, dependency: str, retry_after_s: float) -> None:
        super().__init__(f"{dependency} is unavailable (circuit open); retry in {retry_after_s:.0f} s")
        self.dependency = dependency
        self.retry_after_s = retry_after_s
        self.problem_extra = {"dependency": dependency}


# Libraries' own classes for "could not talk to the server", matched by name so that this
# module imports none of the drivers.
OUTAGE_CLASSES = frozenset({"OperationalError", "InterfaceError", "ConnectionError", "TimeoutError",
                            "KafkaConnectionError", "KafkaTimeoutError"})
# PostgreSQL answers that psycopg files under OperationalError although the server is up:
# contention (eventsourcing locks the events table with a timeout), cancelled statements.
ANSWERED_CLASSES = frozenset({"LockNotAvailable", "QueryCanceled", "TransactionRollback", "SerializationFailure",
                              "DeadlockDetected"})


def is_outage(error: BaseException) -> bool:
    """Whether an error means the server is away, rather than that it answered 'no'."""
    if isinstance(error, CircuitOpen):
        return False
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(chain) < 5:
        chain.append(cause)
        cause = cause.__cause__
    names = {cls.__name__ for link in chain for cls in type(link).__mro__}
    if names & ANSWERED_CLASSES:
        return False
    return isinstance(error, ConnectionError | TimeoutError) or bool(names & OUTAGE_CLASSES)


class Breaker:
    """One dependency's breaker. Use `with breaker:` around a call (sync or async code)."""

    def __init__(self, factory: SyncCircuitBreakerFactory, dependency: str, open_s: float) -> None:
        self.dependency = dependency
        self.open_s = open_s
        self._factory = factory
        self._lock = threading.Lock()  # purgatory's state machine is not thread-safe by itself
        self._breaker = factory.get_breaker(dependency, exclude=[(BaseException, lambda error: not is_outage(error))])

    @property
    def state(self) -> str:
        """closed, open or half-open."""
        return STATE_NAMES[self._breaker.context.state]

    def __enter__(self) -> Breaker:
        with self._lock:
            try:
                self._breaker.__enter__()
            except OpenedState as opened:
                remaining = opened.opened_at + self.open_s - time.time()
                raise CircuitOpen(self.dependency, max(1.0, remaining)) from None
        return self

    def __exit__(self, exc_type: Any, error: BaseException | None, tb: Any) -> None:
        with self._lock:
            self._breaker.__exit__(exc_type, error, tb)

    def guard(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function` (sync) called through this breaker."""

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return guarded

    def guard_async(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function` (a coroutine function) awaited through this breaker."""

        @functools.wraps(function)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            with self:
                return await function(*args, **kwargs)

        return guarded


class Breakers:
    """The process's breakers by dependency; their states go to the metric and to readiness."""

    def __init__(self, failures: int = 3, open_s: float = 10.0) -> None:
        self._factory = SyncCircuitBreakerFactory(default_threshold=failures, default_ttl=open_s)
        self._factory.add_listener(self._changed)
        self._breakers = {name: Breaker(self._factory, name, open_s) for name in DEPENDENCIES}
        for name in DEPENDENCIES:
            BREAKER_STATE.labels(dependency=name).set(0)

    def __getitem__(self, dependency: str) -> Breaker:
        return self._breakers[dependency]

    def states(self) -> dict[str, str]:
        return {name: breaker.state for name, breaker in self._breakers.items()}

    def _changed(self, name: str, kind: str, event: Any) -> None:
        if kind != "state_changed":
            return
        BREAKER_STATE.labels(dependency=name).set(STATE_VALUES[event.state])
        logger.warning("circuit breaker %s is now %s", name, STATE_NAMES[event.state])


def standalone_breaker(dependency: str, failures: int = 1, open_s: float = 5.0) -> Breaker:
    """A breaker of its own, for an adapter built without the process's `Breakers` (tests, tools)."""
    return Breaker(SyncCircuitBreakerFactory(default_threshold=failures, default_ttl=open_s), dependency, open_s)


def guard_eventsourcing(recorder: Any, breaker: Breaker) -> None:
    """Route a PostgreSQL recorder's connections through `breaker`: eventsourcing retries a
    failed statement ten times, and once the breaker opens, the remaining retries (and every
    later call) fail at once instead of waiting for a connect timeout each."""
    datastore: Any = getattr(recorder, "datastore", None)  # eventsourcing's, untyped here
    if type(datastore).__name__ != "PostgresDatastore" or getattr(datastore, "_vodhub_guarded", False):
        return  # SQLite or in-memory: nothing remote to guard
    get_connection = datastore.get_connection

    @contextmanager
    def guarded_connection(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with breaker, get_connection(*args, **kwargs) as connection:
            yield connection

    datastore.get_connection = guarded_connection
    datastore._vodhub_guarded = True


def guard_sqlalchemy(engine: Any, breaker: Breaker) -> None:
    """Route a PostgreSQL engine's connection checkouts (and their pre-ping) through `breaker`."""
    if engine.dialect.name != "postgresql" or getattr(engine, "_vodhub_guarded", False):
        return
    engine.raw_connection = breaker.guard(engine.raw_connection)
    engine._vodhub_guarded = True
