"""Bulkheads: separate, bounded capacity per kind of work, so that a burst of one kind (logins
hashing with 64 MiB each, media probes, a slow event store or object store) cannot take the
capacity the others need. Each bulkhead runs at most `capacity` calls at once and lets at most
`queue` more wait; beyond that a call is refused at once with `Overloaded` (503 + Retry-After)
instead of waiting behind a queue that will not drain in time.

Blocking calls run on the bulkhead's own worker threads (an anyio limiter of its own), never on
anyio's default pool, which stays for everything else; `operations` (health checks, metrics)
has a small pool of its own with no queue limit, so probes never wait behind the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from anyio import to_thread

from application.errors import Unavailable

T = TypeVar("T")
UNBOUNDED = 1_000_000


class Overloaded(Unavailable):
    """A bulkhead is full: its calls are all busy and its queue is at its limit."""

    def __init__(self, bulkhead: str, retry_after_s: float) -> None:
        super().__init__(f"too busy ({bulkhead}); try again shortly")
        self.bulkhead = bulkhead
        self.retry_after_s = retry_after_s
        self.problem_extra = {"bulkhead": bulkhead}


class Bulkhead:
    def __init__(
        self, name: str, capacity: int, queue: int = UNBOUNDED, retry_after_s: float = 1.0,
        on_reject: Callable[[str], None] = lambda name: None,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.queue = queue
        self.retry_after_s = retry_after_s
        self.on_reject = on_reject  # told the bulkhead's name each time a call is refused (a metric)
        # anyio primitives belong to one event loop; a process may run several in turn (tests).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: anyio.Semaphore | None = None
        self._threads: anyio.CapacityLimiter | None = None

    def _primitives(self) -> tuple[anyio.Semaphore, anyio.CapacityLimiter]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._slots is None or self._threads is None:
            self._slots = anyio.Semaphore(self.capacity, fast_acquire=True)
            self._threads = anyio.CapacityLimiter(self.capacity)
            self._loop = loop
        return self._slots, self._threads

    @property
    def busy(self) -> int:
        return 0 if self._slots is None else self.capacity - self._slots.value

    @property
    def waiting(self) -> int:
        return 0 if self._slots is None else self._slots.statistics().tasks_waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the bulkhead's places; Overloaded at once when none is free and the queue is full."""
        slots, _ = self._primitives()
        if slots.value == 0 and slots.statistics().tasks_waiting >= self.queue:
            self.on_reject(self.name)
            raise Overloaded(self.name, self.retry_after_s)
        async with slots:
            yield

    async def run(self, function: Callable[..., T], *args: Any, abandon_on_cancel: bool = False) -> T:
        """`function(*args)` on one of this bulkhead's threads; with `abandon_on_cancel` a
        cancelled caller (a probe's timeout) does not wait for the thread to finish."""
        async with self.slot():
            _, threads = self._primitives()
            return await to_thread.run_sync(function, *args, limiter=threads, abandon_on_cancel=abandon_on_cancel)

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Await `function(*args)` (a coroutine function) holding one of this bulkhead's places."""
        async with self.slot():
            return await function(*args)


@dataclass
class Bulkheads:
    """The process's bulkheads; the defaults suit one api replica on a few cores."""

    hashing: Bulkhead = field(default_factory=lambda: Bulkhead("password hashing", 4, 32))
    inspection: Bulkhead = field(default_factory=lambda: Bulkhead("media inspection", 4, 16))
    event_store: Bulkhead = field(default_factory=lambda: Bulkhead("event store", 16, 128))
    storage: Bulkhead = field(default_factory=lambda: Bulkhead("object storage", 64, 256))
    operations: Bulkhead = field(default_factory=lambda: Bulkhead("operations", 4))

    def all(self) -> list[Bulkhead]:
        return [self.hashing, self.inspection, self.event_store, self.storage, self.operations]
