"""Decorators of the ObjectStorage and EventPublisher ports that add a circuit breaker (and, for
storage, a bulkhead) around any adapter, leaving the adapters' own connection code alone."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from adapters.outbound.breakers import Breaker
from application.bulkheads import Bulkhead
from application.ports import ObjectInfo, ObjectStorage, OutgoingMessage


class GuardedObjectStorage:
    """Every call goes through the breaker. Short calls also take a place in the storage
    bulkhead; long transfers (an upload's body, a streamed download) do not, since their length
    is the client's, and the ping of readiness never waits behind anything."""

    def __init__(self, storage: ObjectStorage, breaker: Breaker, bulkhead: Bulkhead) -> None:
        self._storage = storage
        self._breaker = breaker
        self._bulkhead = bulkhead

    def __getattr__(self, name: str) -> Any:  # adapter-specific attributes (keeps_content_type, root, …)
        return getattr(self._storage, name)

    async def _short(self, method: str, *args: Any) -> Any:
        async with self._bulkhead.slot():
            with self._breaker:
                return await getattr(self._storage, method)(*args)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        with self._breaker:
            return await self._storage.put_stream(key, chunks, content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        await self._short("put_bytes", key, data, content_type)

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        await self._short("put_file", key, path, content_type)

    async def head(self, key: str) -> ObjectInfo | None:
        return await self._short("head", key)

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        return await self._short("get_range", key, start, end)

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        with self._breaker:
            async for chunk in self._storage.stream(key, start, end):
                yield chunk

    async def download(self, key: str, path: Path) -> None:
        with self._breaker:
            await self._storage.download(key, path)

    async def list_keys(self, prefix: str) -> list[str]:
        return await self._short("list_keys", prefix)

    async def delete(self, key: str) -> None:
        await self._short("delete", key)

    async def delete_prefix(self, prefix: str) -> int:
        return await self._short("delete_prefix", prefix)

    def open_reader(self, key: str) -> BinaryIO:
        with self._breaker:
            return self._storage.open_reader(key)

    async def ping(self) -> None:
        with self._breaker:
            await self._storage.ping()


class GuardedEventPublisher:
    def __init__(self, publisher: Any, breaker: Breaker) -> None:
        self._publisher = publisher
        self._breaker = breaker

    def __getattr__(self, name: str) -> Any:  # close(), the in-process bus's subscribe(), …
        return getattr(self._publisher, name)

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        with self._breaker:
            await self._publisher.publish(messages)

    async def ping(self) -> None:
        with self._breaker:
            await self._publisher.ping()
