"""TLS to every backend, from settings alone, against real servers that speak only TLS and
(where the server can) demand a client certificate. Certificates come from a CA generated
per session (tests/servers/certificates.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
import redis
from aiokafka import AIOKafkaConsumer

from adapters.outbound.kafka import BrokerUnavailable, KafkaEventPublisher, ensure_topics
from adapters.outbound.object_storage import S3ObjectStorage, StorageUnavailable
from adapters.outbound.rate_limiter import RedisRateLimiter
from adapters.outbound.redis_client import connect
from application.ports import OutgoingMessage
from application.rate_limits import Rate
from entrypoints.bootstrap import bootstrap
from entrypoints.schema_lock import schema_creation_lock
from entrypoints.settings import Settings
from tests.servers.certificates import Certificates
from tests.servers.tls import TlsKafka, TlsPostgres, TlsS3

pytestmark = pytest.mark.anyio


def _postgres_settings(tls_postgres: TlsPostgres, certificates: Certificates, tmp_path: Path, **extra: str) -> Settings:
    return Settings.from_env({
        "VODHUB_DATA_DIR": str(tmp_path), "VODHUB_DATABASE_URL": tls_postgres.url(),
        "VODHUB_DATABASE_SSLMODE": "verify-full", "VODHUB_DATABASE_SSLROOTCERT": str(certificates.ca_file),
        "VODHUB_DATABASE_SSLCERT": str(certificates.client_cert), "VODHUB_DATABASE_SSLKEY": str(certificates.client_key),
        "VODHUB_PASSWORD_TIME_COST": "1", "VODHUB_PASSWORD_MEMORY_COST": "8192", **extra,
    })


def test_every_postgres_connection_uses_tls_and_the_client_certificate(
    tls_postgres: TlsPostgres, certificates: Certificates, tmp_path: Path,
) -> None:
    # The server rejects plain connections and lets the role in only by its certificate, so the
    # schema lock, the event stores (eventsourcing) and the read model (SQLAlchemy) all working
    # shows each of them connected with TLS and presented the certificate.
    settings = _postgres_settings(tls_postgres, certificates, tmp_path)
    vodhub = bootstrap(settings)
    try:
        username = f"tls{uuid4().hex[:8]}"
        vodhub.accounts.register(username, f"{username}@example.com", "correct horse battery")
        assert vodhub.accounts.login(username, "correct horse battery").access_token
        vodhub.catalog.list_public()
    finally:
        vodhub.close()
    with psycopg.connect(settings.database_url) as connection:
        ssl_in_use, = connection.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
    assert ssl_in_use is True


def test_postgres_without_the_client_certificate_is_refused(
    tls_postgres: TlsPostgres, certificates: Certificates,
) -> None:
    url = Settings.from_env({
        "VODHUB_DATABASE_URL": tls_postgres.url(), "VODHUB_DATABASE_SSLMODE": "verify-full",
        "VODHUB_DATABASE_SSLROOTCERT": str(certificates.ca_file),
    }).database_url
    assert url is not None
    with pytest.raises(psycopg.OperationalError, match="certificate"), schema_creation_lock(url):
        pass


def test_postgres_sslmode_written_in_the_url_is_kept_by_the_schema_lock(
    tls_postgres: TlsPostgres, certificates: Certificates,
) -> None:
    # verify-full against a CA that did not sign the server's certificate must fail: proof the
    # parameters reach libpq rather than being dropped with the query.
    url = (f"{tls_postgres.url('postgres')}?schema=public&sslmode=verify-full"
           f"&sslrootcert={certificates.client_cert}")
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"), schema_creation_lock(url):
        pass


def _redis_url(port: int, certificates: Certificates, *, client_certificate: bool = True) -> str:
    environ = {"VODHUB_REDIS_URL": f"rediss://127.0.0.1:{port}/0", "VODHUB_REDIS_CA_FILE": str(certificates.ca_file)}
    if client_certificate:
        environ |= {"VODHUB_REDIS_CERT_FILE": str(certificates.client_cert),
                    "VODHUB_REDIS_KEY_FILE": str(certificates.client_key)}
    url = Settings.from_env(environ).redis_url
    assert url is not None
    return url


def test_redis_over_tls_with_a_client_certificate(tls_redis_port: int, certificates: Certificates) -> None:
    url = _redis_url(tls_redis_port, certificates)
    client = connect(url)
    try:
        client.set("vodhub-tls:probe", b"1", ex=60)
        assert client.get("vodhub-tls:probe") == b"1"
        # The rate limiter makes its own (asyncio) client from the same URL; it would fall back
        # to counting in memory if that could not connect, so look for its bucket in Redis.
        limiter = RedisRateLimiter(url, "vodhub-tls:")

        async def hit() -> bool:
            try:
                return (await limiter.hit("limited", Rate(limit=5, period_s=60))).allowed
            finally:
                await limiter.aclose()

        assert asyncio.run(hit())
        assert not limiter.degraded
        assert client.exists("vodhub-tls:ratelimit:limited")
    finally:
        client.close()


def test_redis_without_the_client_certificate_is_refused(tls_redis_port: int, certificates: Certificates) -> None:
    client = connect(_redis_url(tls_redis_port, certificates, client_certificate=False))
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_redis_tls_files_without_rediss_stop_the_process(certificates: Certificates) -> None:
    with pytest.raises(SystemExit, match="rediss://"):
        Settings.from_env({"VODHUB_REDIS_URL": "redis://127.0.0.1:6379/0",
                           "VODHUB_REDIS_CA_FILE": str(certificates.ca_file)})


def _admin_storage(tls_s3: TlsS3, ca_file: Path | None) -> S3ObjectStorage:
    key, secret = tls_s3.credentials["vodhub-admin"]
    return S3ObjectStorage(tls_s3.endpoint, tls_s3.bucket, access_key_id=key, secret_access_key=secret,
                           prefix=f"raw/tls-{uuid4().hex}", ca_file=str(ca_file) if ca_file else None)


async def test_s3_over_https_trusts_the_configured_ca(tls_s3: TlsS3, certificates: Certificates) -> None:
    storage = _admin_storage(tls_s3, certificates.ca_file)
    await storage.put_bytes("hello.txt", b"over TLS")
    info = await storage.head("hello.txt")
    assert info is not None and info.size == len(b"over TLS")


async def test_s3_over_https_refuses_a_server_no_trusted_ca_signed(tls_s3: TlsS3) -> None:
    storage = _admin_storage(tls_s3, None)
    with pytest.raises(StorageUnavailable):
        await storage.put_bytes("hello.txt", b"over TLS")


async def test_kafka_over_tls_with_a_client_certificate(tls_kafka: TlsKafka, certificates: Certificates) -> None:
    settings = Settings.from_env({
        "VODHUB_KAFKA_BOOTSTRAP_SERVERS": tls_kafka.bootstrap_servers, "VODHUB_KAFKA_SECURITY_PROTOCOL": "SSL",
        "VODHUB_KAFKA_CA_FILE": str(certificates.ca_file), "VODHUB_KAFKA_CERT_FILE": str(certificates.client_cert),
        "VODHUB_KAFKA_KEY_FILE": str(certificates.client_key),
    })
    security = settings.kafka_security()
    topic = f"tls-{uuid4().hex}"
    await ensure_topics(tls_kafka.bootstrap_servers, {topic: 1}, security=security)
    publisher = KafkaEventPublisher(tls_kafka.bootstrap_servers, security=security)
    try:
        await publisher.publish([OutgoingMessage(topic=topic, key=b"k", value=b"over TLS")])
    finally:
        await publisher.close()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=tls_kafka.bootstrap_servers, auto_offset_reset="earliest",
                                **security.client_options())
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert record.value == b"over TLS"


async def test_kafka_without_the_client_certificate_is_refused(tls_kafka: TlsKafka, certificates: Certificates) -> None:
    security = Settings.from_env({
        "VODHUB_KAFKA_BOOTSTRAP_SERVERS": tls_kafka.bootstrap_servers, "VODHUB_KAFKA_SECURITY_PROTOCOL": "SSL",
        "VODHUB_KAFKA_CA_FILE": str(certificates.ca_file),
    }).kafka_security()
    with pytest.raises(BrokerUnavailable):
        await ensure_topics(tls_kafka.bootstrap_servers, {f"tls-{uuid4().hex}": 1}, security=security, timeout_s=5)
