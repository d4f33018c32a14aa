"""ObjectStorage on obstore: one implementation, three stores (S3, a local directory,
memory). obstore gives the three the same API, so the adapters differ only in how
they build their store."""

from __future__ import annotations

import asyncio
import functools
import io
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ParamSpec, TypeVar

import obstore
from anyio import to_thread
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, MemoryStore, S3Store

from application.ports import ObjectInfo

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

# Multipart uploads buffer PART_SIZE bytes per part with at most PARTS_IN_FLIGHT
# parts in flight, so one upload holds about 20 MiB however large the object is.
PART_SIZE = 5 * 1024 * 1024  # the smallest part S3 accepts
PARTS_IN_FLIGHT = 4
STREAM_CHUNK_SIZE = 1024 * 1024
LOCAL_READ_SIZE = 2 * 1024 * 1024  # one read answers a player's usual 1 MiB range
# PyAV reads in small pieces and every raw read is one ranged GET: a larger buffer
# turns many tiny requests into few.
READER_BUFFER_SIZE = 256 * 1024
PING_TIMEOUT_S = 5.0
LIST_PAGE_SIZE = 1000

S3_CLIENT_OPTIONS: ClientConfig = {
    # An unreachable endpoint should fail in seconds, not after obstore's defaults.
    "connect_timeout": "2s",
    # A streamed GET is one request that lives as long as its reader; obstore's
    # default whole-request timeout (30 s) would cut off a slow viewer.
    "timeout": "1h",
}
S3_RETRY_CONFIG: RetryConfig = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=20),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=2),
        "base": 2,
    },
}


class StorageUnavailable(ConnectionError):
    """The object store did not answer in time, or refused the request."""


P = ParamSpec("P")
T = TypeVar("T")


def _unavailable(error: ObstoreError) -> Exception:
    """A missing object stays FileNotFoundError; any other store failure is the store being
    unavailable, which callers treat as transient (503 for a request, a retry for a worker)."""
    if isinstance(error, NotFoundError):
        return FileNotFoundError(str(error))
    return StorageUnavailable(str(error))


def _unavailable_when_failing(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except ObstoreError as error:
            raise _unavailable(error) from error

    return guarded


class ObstoreObjectStorage:
    """Every ObjectStorage operation on an obstore store. Prefixes (list_keys,
    delete_prefix) match whole path segments: `processed/v1` covers
    `processed/v1/...` but not `processed/v10/...`."""

    # Whether the store can keep a Content-Type with the object.
    keeps_content_type = True

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    @_unavailable_when_failing
    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> int:
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        # When the iterable raises, obstore aborts its multipart upload (S3) or
        # discards its staging file (local) before re-raising, so nothing appears
        # under key. A cancelled upload is not visible under key either, but on S3 it
        # leaves an unfinished multipart upload for a bucket lifecycle rule to expire.
        await obstore.put_async(
            self._store,
            key,
            counted(),
            attributes=self._attributes(content_type),
            chunk_size=PART_SIZE,
            max_concurrency=PARTS_IN_FLIGHT,
        )
        return size

    @_unavailable_when_failing
    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        await obstore.put_async(
            self._store, key, data, attributes=self._attributes(content_type)
        )

    @_unavailable_when_failing
    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        await obstore.put_async(
            self._store,
            key,
            path,
            attributes=self._attributes(content_type),
            chunk_size=PART_SIZE,
            max_concurrency=PARTS_IN_FLIGHT,
        )

    @_unavailable_when_failing
    async def head(self, key: str) -> ObjectInfo | None:
        try:
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
        return ObjectInfo(
            key=key, size=meta["size"], etag=meta["e_tag"], last_modified=meta["last_modified"]
        )

    @_unavailable_when_failing
    async def get_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""  # obstore refuses empty ranges
        return bytes(await obstore.get_range_async(self._store, key, start=start, end=end))

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            return
        options: GetOptions = {"range": {"offset": start} if end is None else (start, end)}
        try:
            result = await obstore.get_async(self._store, key, options=options)
            async for chunk in result.stream(min_chunk_size=STREAM_CHUNK_SIZE):
                yield chunk
        except ObstoreError as error:
            raise _unavailable(error) from error

    @_unavailable_when_failing
    async def download(self, key: str, path: Path) -> None:
        result = await obstore.get_async(self._store, key)
        try:
            with path.open("wb") as file:
                async for chunk in result.stream(min_chunk_size=STREAM_CHUNK_SIZE):
                    await asyncio.to_thread(file.write, chunk)  # disk writes off the loop
        except BaseException:
            # A half-written file would pass for the object on the next attempt.
            path.unlink(missing_ok=True)
            raise

    @_unavailable_when_failing
    async def list_keys(self, prefix: str) -> list[str]:
        pages = obstore.list(self._store, prefix, chunk_size=LIST_PAGE_SIZE)
        return [meta["path"] async for page in pages for meta in page]

    @_unavailable_when_failing
    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError:
            pass  # S3 and memory accept a missing key; the local store does not

    @_unavailable_when_failing
    async def delete_prefix(self, prefix: str) -> int:
        keys = await self.list_keys(prefix)
        if keys:
            await obstore.delete_async(self._store, keys)  # batched by obstore
        return len(keys)

    def open_reader(self, key: str) -> BinaryIO:
        size = obstore.head(self._store, key)["size"]
        raw = RangedObjectReader(self._store, key, size)
        return io.BufferedReader(raw, buffer_size=READER_BUFFER_SIZE)

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                # Listing (unlike a HEAD) fails when the bucket itself is missing.
                pages = obstore.list(self._store, chunk_size=1)
                await anext(pages, None)
        except (ObstoreError, OSError) as error:  # OSError covers the timeout
            raise StorageUnavailable(str(error)) from error

    def _attributes(self, content_type: str | None) -> dict[str, str] | None:
        if content_type is None or not self.keeps_content_type:
            return None
        return {"Content-Type": content_type}


class RangedObjectReader(io.RawIOBase):
    """A read-only, seekable raw file over one object whose every read is a ranged
    GET, so a library can seek through a large object without downloading it."""

    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._ensure_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._ensure_open()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        self._ensure_open()
        end = min(self._position + len(buffer), self._size)
        if end <= self._position:
            return 0  # at or past the end; obstore refuses ranges starting there
        data = obstore.get_range(self._store, self._key, start=self._position, end=end)
        count = len(data)
        with memoryview(buffer) as view:
            view.cast("B")[:count] = memoryview(data)
        self._position += count
        return count

    def _ensure_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


class S3ObjectStorage(ObstoreObjectStorage):
    """Any S3-compatible server, path-style; anonymous (unsigned) without credentials.
    Every key is stored under prefix, when one is given."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        ca_file: str | None = None,
    ) -> None:
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("give both the access key id and the secret access key, or neither")
        if access_key_id is not None:
            credentials: dict[str, Any] = {
                "access_key_id": access_key_id,
                "secret_access_key": secret_access_key,
            }
        else:
            # Without skip_signature obstore would go looking for credentials in the
            # environment and the cloud metadata service.
            credentials = {"skip_signature": True}
        store = S3Store(
            bucket,
            prefix=prefix or None,
            endpoint=endpoint,
            region=region,
            virtual_hosted_style_request=False,
            client_options=s3_client_options(endpoint, ca_file),
            retry_config=S3_RETRY_CONFIG,
            **credentials,
        )
        super().__init__(store)


def s3_client_options(endpoint: str, ca_file: str | None = None) -> ClientConfig:
    """Plain HTTP only when the endpoint says http://; a custom CA is trusted besides the system's."""
    options: ClientConfig = {**S3_CLIENT_OPTIONS, "allow_http": endpoint.lower().startswith("http://")}
    if ca_file:
        options["root_certificate"] = Path(ca_file).read_bytes()
    return options


class LocalObjectStorage(ObstoreObjectStorage):
    """Objects as files under root: the embedded default."""

    # obstore's local store has nowhere to keep attributes and refuses them.
    keeps_content_type = False

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._root = root.resolve()
        # automatic_cleanup removes directories that deletes leave empty.
        super().__init__(LocalStore(self._root, automatic_cleanup=True))

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Straight from the file, LOCAL_READ_SIZE at a time, each read in a worker thread
        (it releases the GIL, so the loop keeps serving meanwhile): media ranges move several
        times faster than through obstore's stream of small pieces."""
        if end is not None and end <= start:
            return
        if key.startswith("/") or ".." in key.split("/"):  # obstore's keys never leave the root either
            raise FileNotFoundError(key)
        fd = await to_thread.run_sync(os.open, self._root / key, os.O_RDONLY)
        try:
            position = start
            stop = end if end is not None else os.fstat(fd).st_size
            while position < stop:
                chunk = await to_thread.run_sync(os.pread, fd, min(LOCAL_READ_SIZE, stop - position), position)
                if not chunk:
                    return
                position += len(chunk)
                yield chunk
        finally:
            os.close(fd)


class InMemoryObjectStorage(ObstoreObjectStorage):
    """Objects in process memory, for unit tests."""

    def __init__(self) -> None:
        super().__init__(MemoryStore())
