"""Each process's own S3 identity (deploy/seaweedfs-s3.json, the file compose mounts into
SeaweedFS) reaches only the prefixes that process needs, checked against real SeaweedFS."""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.outbound.object_storage import S3ObjectStorage, StorageUnavailable
from tests.servers.certificates import Certificates
from tests.servers.tls import TlsS3

pytestmark = pytest.mark.anyio


def _as(identity: str, tls_s3: TlsS3, certificates: Certificates) -> S3ObjectStorage:
    key, secret = tls_s3.credentials[identity]
    return S3ObjectStorage(tls_s3.endpoint, tls_s3.bucket, access_key_id=key, secret_access_key=secret,
                           ca_file=str(certificates.ca_file))


@pytest.fixture
def video() -> str:
    return uuid4().hex


async def test_the_worker_reads_raw_and_writes_renditions_but_cannot_write_raw(
    tls_s3: TlsS3, certificates: Certificates, video: str,
) -> None:
    api, worker = _as("vodhub-api", tls_s3, certificates), _as("vodhub-worker", tls_s3, certificates)
    await api.put_bytes(f"raw/{video}/original.mp4", b"source")
    assert await worker.get_range(f"raw/{video}/original.mp4", 0, 6) == b"source"
    await worker.put_bytes(f"processed/{video}/p1/master.m3u8", b"#EXTM3U")
    await worker.put_bytes(f"thumbnails/{video}/poster.jpg", b"jpeg")
    with pytest.raises(StorageUnavailable, match="(?i)access ?denied|403"):
        await worker.put_bytes(f"raw/{video}/original.mp4", b"overwritten")
    assert await api.get_range(f"raw/{video}/original.mp4", 0, 6) == b"source"


async def test_the_api_writes_uploads_and_reads_media_but_cannot_delete_or_write_it(
    tls_s3: TlsS3, certificates: Certificates, video: str,
) -> None:
    api, worker = _as("vodhub-api", tls_s3, certificates), _as("vodhub-worker", tls_s3, certificates)
    await api.put_bytes(f"uploads/{video}/part-0", b"part")
    await worker.put_bytes(f"processed/{video}/p1/master.m3u8", b"#EXTM3U")
    assert await api.get_range(f"processed/{video}/p1/master.m3u8", 0, 7) == b"#EXTM3U"
    with pytest.raises(StorageUnavailable, match="(?i)access ?denied|403"):
        await api.delete(f"processed/{video}/p1/master.m3u8")
    with pytest.raises(StorageUnavailable, match="(?i)access ?denied|403"):
        await api.put_bytes(f"processed/{video}/p1/master.m3u8", b"defaced")
    assert await api.head(f"processed/{video}/p1/master.m3u8") is not None


async def test_the_relay_deletes_a_videos_objects_but_cannot_read_them(
    tls_s3: TlsS3, certificates: Certificates, video: str,
) -> None:
    # SeaweedFS identities have no delete-only action (DeleteObjects wants Write on each key),
    # so the relay's Write is limited to the prefixes whose objects it deletes, without Read.
    api, relay = _as("vodhub-api", tls_s3, certificates), _as("vodhub-relay", tls_s3, certificates)
    await api.put_bytes(f"raw/{video}/original.mp4", b"source")
    with pytest.raises(StorageUnavailable, match="(?i)access ?denied|403"):
        await relay.put_bytes(f"uploads/{video}/part-0", b"x")
    with pytest.raises(StorageUnavailable, match="(?i)access ?denied|403"):
        await relay.get_range(f"raw/{video}/original.mp4", 0, 6)
    assert await relay.delete_prefix(f"raw/{video}") == 1
    assert await api.head(f"raw/{video}/original.mp4") is None
