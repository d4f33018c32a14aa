"""The ObjectStorage port's behaviour, the same for each adapter: in memory, in a local
directory and on S3 (SeaweedFS)."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.outbound.object_storage import (
    InMemoryObjectStorage,
    LocalObjectStorage,
    ObstoreObjectStorage,
    S3ObjectStorage,
    StorageUnavailable,
)
from tests.servers.s3 import S3Server

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
KEY = "raw/video-1/original.mp4"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # obstore's futures run on asyncio only


@pytest.fixture(params=["memory", "local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ObstoreObjectStorage:
    if request.param == "memory":
        return InMemoryObjectStorage()
    if request.param == "local":
        return LocalObjectStorage(tmp_path / "objects")
    return request.getfixturevalue("s3_storage")


@pytest.fixture(scope="module")
def large_payload() -> bytes:
    """Over two multipart parts, so uploads cross part boundaries."""
    return os.urandom(10 * MiB + 12345)


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(300_000)


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


class UploadInterrupted(Exception):
    pass


async def chunks_then_failure(data: bytes, size: int) -> AsyncIterator[bytes]:
    async for chunk in chunks_of(data, size):
        yield chunk
    raise UploadInterrupted


async def chunks_then_stall(data: bytes, size: int, sent: asyncio.Event) -> AsyncIterator[bytes]:
    async for chunk in chunks_of(data, size):
        yield chunk
    sent.set()
    await asyncio.Event().wait()


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_streamed_upload_stores_every_chunk(
    storage: ObstoreObjectStorage, large_payload: bytes
) -> None:
    size = await storage.put_stream(KEY, chunks_of(large_payload, 64 * 1024), "video/mp4")

    info = await storage.head(KEY)
    assert size == len(large_payload)
    assert info is not None
    assert (info.key, info.size) == (KEY, len(large_payload))
    assert info.etag and info.last_modified
    assert await collect(storage.stream(KEY)) == large_payload


async def test_ranged_read_returns_exactly_the_requested_bytes(
    storage: ObstoreObjectStorage, payload: bytes
) -> None:
    await storage.put_bytes(KEY, payload)

    for start, end in [(0, 1), (1000, 5000), (len(payload) - 7, len(payload)), (5, 5)]:
        assert await storage.get_range(KEY, start, end) == payload[start:end]


async def test_stream_yields_exactly_the_requested_range(
    storage: ObstoreObjectStorage, payload: bytes
) -> None:
    await storage.put_bytes(KEY, payload)

    assert await collect(storage.stream(KEY)) == payload
    assert await collect(storage.stream(KEY, start=1234)) == payload[1234:]
    assert await collect(storage.stream(KEY, 1000, 200_000)) == payload[1000:200_000]
    assert await collect(storage.stream(KEY, 10, 10)) == b""


async def test_reader_seeks_and_reads_exact_bytes_up_to_the_end(
    storage: ObstoreObjectStorage, payload: bytes
) -> None:
    await storage.put_bytes(KEY, payload)

    def read_like_a_demuxer() -> None:
        with storage.open_reader(KEY) as reader:
            assert reader.seekable() and reader.readable()
            assert reader.read(10) == payload[:10]
            assert reader.seek(200_000) == 200_000
            assert reader.read(5000) == payload[200_000:205_000]
            assert reader.tell() == 205_000
            reader.seek(-10, io.SEEK_CUR)
            assert reader.read(20) == payload[204_990:205_010]
            reader.seek(-7, io.SEEK_END)
            assert reader.read(100) == payload[-7:]
            assert reader.read(100) == b""
            buffer = bytearray(16)
            reader.seek(len(payload) + 50)
            assert reader.readinto(buffer) == 0
            reader.seek(0)
            assert reader.read() == payload

    await asyncio.to_thread(read_like_a_demuxer)


async def test_reader_of_missing_object_raises_file_not_found(
    storage: ObstoreObjectStorage,
) -> None:
    with pytest.raises(FileNotFoundError):
        await asyncio.to_thread(storage.open_reader, "no/such/object")


async def test_download_copies_the_object_into_a_file(
    storage: ObstoreObjectStorage, payload: bytes, tmp_path: Path
) -> None:
    await storage.put_bytes(KEY, payload)
    target = tmp_path / "copy.mp4"

    await storage.download(KEY, target)

    assert target.read_bytes() == payload


async def test_put_file_uploads_a_large_local_file(
    storage: ObstoreObjectStorage, large_payload: bytes, tmp_path: Path
) -> None:
    source = tmp_path / "source.mp4"
    source.write_bytes(large_payload)

    await storage.put_file(KEY, source, "video/mp4")

    info = await storage.head(KEY)
    assert info is not None and info.size == len(large_payload)
    assert await storage.get_range(KEY, 5 * MiB - 3, 5 * MiB + 3) == large_payload[
        5 * MiB - 3 : 5 * MiB + 3
    ]


async def test_prefixes_match_whole_path_segments(storage: ObstoreObjectStorage) -> None:
    for key in ["processed/v1/a.m4s", "processed/v1/cmaf/b.m4s", "processed/v10/c.m4s"]:
        await storage.put_bytes(key, b"x")

    inside_v1 = ["processed/v1/a.m4s", "processed/v1/cmaf/b.m4s"]
    assert sorted(await storage.list_keys("processed/v1")) == inside_v1
    assert sorted(await storage.list_keys("processed/v1/")) == inside_v1
    assert len(await storage.list_keys("")) == 3


async def test_delete_removes_the_object_and_tolerates_a_missing_one(
    storage: ObstoreObjectStorage,
) -> None:
    await storage.put_bytes(KEY, b"x")

    await storage.delete(KEY)
    await storage.delete(KEY)

    assert await storage.head(KEY) is None


async def test_delete_prefix_removes_only_objects_under_the_prefix(
    storage: ObstoreObjectStorage,
) -> None:
    for key in ["processed/v1/a.m4s", "processed/v1/cmaf/b.m4s", "processed/v10/c.m4s"]:
        await storage.put_bytes(key, b"x")

    assert await storage.delete_prefix("processed/v1") == 2
    assert await storage.list_keys("") == ["processed/v10/c.m4s"]
    assert await storage.delete_prefix("processed/v1") == 0


async def test_head_of_missing_object_is_none(storage: ObstoreObjectStorage) -> None:
    assert await storage.head("no/such/object") is None


async def test_interrupted_stream_leaves_no_object(
    storage: ObstoreObjectStorage, large_payload: bytes
) -> None:
    # Fails after more than one part, so S3 has a multipart upload to abort.
    with pytest.raises(UploadInterrupted):
        await storage.put_stream(KEY, chunks_then_failure(large_payload[: 7 * MiB], MiB))

    assert await storage.head(KEY) is None
    assert await storage.list_keys("") == []


async def test_cancelled_stream_leaves_no_object(
    storage: ObstoreObjectStorage, large_payload: bytes
) -> None:
    sent = asyncio.Event()
    upload = asyncio.ensure_future(
        storage.put_stream(KEY, chunks_then_stall(large_payload[: 7 * MiB], MiB, sent))
    )
    await sent.wait()

    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload

    assert await storage.head(KEY) is None
    assert await storage.list_keys("") == []


async def test_interrupted_stream_leaves_no_unfinished_multipart_upload(
    s3_server: S3Server, s3_bucket: str, large_payload: bytes
) -> None:
    prefix = f"test-{uuid4().hex}"
    storage = S3ObjectStorage(s3_server.endpoint, s3_bucket, prefix=prefix)

    with pytest.raises(UploadInterrupted):
        await storage.put_stream(KEY, chunks_then_failure(large_payload[: 7 * MiB], MiB))

    assert unfinished_multipart_uploads(s3_server, s3_bucket, prefix) == []


async def test_ping_succeeds_when_storage_is_reachable(storage: ObstoreObjectStorage) -> None:
    await storage.ping()


async def test_ping_fails_fast_when_s3_is_unreachable() -> None:
    storage = S3ObjectStorage(f"http://127.0.0.1:{closed_port()}", "videos")
    started = time.monotonic()

    with pytest.raises(StorageUnavailable):
        await storage.ping()

    assert time.monotonic() - started < 10


async def test_ping_fails_when_the_bucket_is_missing(s3_server: S3Server) -> None:
    storage = S3ObjectStorage(s3_server.endpoint, "no-such-bucket")

    with pytest.raises(StorageUnavailable):
        await storage.ping()


def unfinished_multipart_uploads(server: S3Server, bucket: str, prefix: str) -> list[str]:
    url = f"{server.endpoint}/{bucket}?uploads&prefix={prefix}/"
    with urllib.request.urlopen(url, timeout=10) as response:
        listing = ET.fromstring(response.read())
    return [element.text or "" for element in listing.iter() if element.tag.endswith("}Key")]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_every_operation_on_an_unreachable_store_raises_storage_unavailable() -> None:
    storage = S3ObjectStorage(f"http://127.0.0.1:{closed_port()}", "videos")

    async def one_chunk():
        yield b"x"

    operations = [storage.head("k"), storage.put_bytes("k", b"x"), storage.get_range("k", 0, 1),
                  storage.list_keys("p"), storage.delete_prefix("p"), storage.put_stream("k", one_chunk())]
    for operation in operations:
        with pytest.raises(StorageUnavailable):
            await operation
    with pytest.raises(StorageUnavailable):
        async for _ in storage.stream("k"):
            pass
