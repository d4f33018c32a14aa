"""How the TLS settings reach each client library (the real handshakes are in
tests/integration/test_backend_tls.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from adapters.outbound.object_storage import s3_client_options
from entrypoints.settings import Settings, postgres_env
from tests.servers.certificates import make_certificates


def test_postgres_tls_settings_reach_every_connection_through_the_url() -> None:
    settings = Settings.from_env({
        "VODHUB_DATABASE_URL": "postgresql://vodhub_api:pw@db:5432/vodhub?schema=tenant",
        "VODHUB_DATABASE_SSLMODE": "verify-full", "VODHUB_DATABASE_SSLROOTCERT": "/etc/ca.pem",
        "VODHUB_DATABASE_SSLCERT": "/etc/api.pem", "VODHUB_DATABASE_SSLKEY": "/etc/api.key",
    })
    assert settings.database_url == ("postgresql://vodhub_api:pw@db:5432/vodhub?schema=tenant&sslmode=verify-full"
                                     "&sslrootcert=%2Fetc%2Fca.pem&sslcert=%2Fetc%2Fapi.pem&sslkey=%2Fetc%2Fapi.key")
    env = settings.eventstore_env("videos")
    assert (env["POSTGRES_SSLMODE"], env["POSTGRES_SSLROOTCERT"], env["POSTGRES_SSLCERT"], env["POSTGRES_SSLKEY"]) == (
        "verify-full", "/etc/ca.pem", "/etc/api.pem", "/etc/api.key")
    assert env["POSTGRES_SCHEMA"] == "tenant"


def test_sslmode_written_in_the_url_reaches_the_event_store() -> None:
    env = postgres_env("postgresql://u@db/vodhub?sslmode=require")
    assert env["POSTGRES_SSLMODE"] == "require"
    assert env["PERSISTENCE_MODULE"].endswith(":TlsPostgresFactory")


def test_without_tls_settings_the_urls_stay_as_they_were() -> None:
    settings = Settings.from_env({"VODHUB_DATABASE_URL": "postgresql://u@db/vodhub",
                                  "VODHUB_REDIS_URL": "redis://cache:6379/0"})
    assert (settings.database_url, settings.redis_url) == ("postgresql://u@db/vodhub", "redis://cache:6379/0")
    assert settings.kafka_security().client_options() == {}


def test_redis_tls_files_become_redis_py_options() -> None:
    settings = Settings.from_env({"VODHUB_REDIS_URL": "rediss://cache:6380/0", "VODHUB_REDIS_CA_FILE": "/etc/ca.pem",
                                  "VODHUB_REDIS_CERT_FILE": "/etc/c.pem", "VODHUB_REDIS_KEY_FILE": "/etc/c.key"})
    assert settings.redis_url == ("rediss://cache:6380/0?ssl_ca_certs=%2Fetc%2Fca.pem&ssl_certfile=%2Fetc%2Fc.pem"
                                  "&ssl_keyfile=%2Fetc%2Fc.key")


@pytest.mark.anyio
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_kafka_sasl_ssl_gives_aiokafka_a_verifying_context_and_the_login(mechanism: str, tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path)
    security = Settings.from_env({
        "VODHUB_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VODHUB_KAFKA_CA_FILE": str(certificates.ca_file),
        "VODHUB_KAFKA_SASL_MECHANISM": mechanism, "VODHUB_KAFKA_SASL_USERNAME": "vodhub-worker",
        "VODHUB_KAFKA_SASL_PASSWORD": "secret",
    }).kafka_security()
    options = security.client_options()
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    # aiokafka checks the combination when a client is made (it refuses, e.g., SCRAM without a password).
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **options)
    assert (producer.client._security_protocol, producer.client._sasl_mechanism,
            producer.client._sasl_plain_username) == ("SASL_SSL", mechanism, "vodhub-worker")


@pytest.mark.parametrize("environ", [
    {"VODHUB_KAFKA_SECURITY_PROTOCOL": "TLS"},
    {"VODHUB_KAFKA_CA_FILE": "/etc/ca.pem"},  # TLS files with PLAINTEXT
    {"VODHUB_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VODHUB_KAFKA_SASL_MECHANISM": "GSSAPI",
     "VODHUB_KAFKA_SASL_USERNAME": "u", "VODHUB_KAFKA_SASL_PASSWORD": "p"},
    {"VODHUB_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VODHUB_KAFKA_SASL_MECHANISM": "PLAIN"},  # no login
    {"VODHUB_KAFKA_SECURITY_PROTOCOL": "SSL", "VODHUB_KAFKA_CERT_FILE": "/etc/c.pem"},  # no key
])
def test_incoherent_kafka_security_stops_the_process(environ: dict[str, str]) -> None:
    with pytest.raises(SystemExit, match="bad setting"):
        Settings.from_env(environ)


def test_s3_allows_plain_http_only_for_an_http_endpoint(tmp_path: Path) -> None:
    assert s3_client_options("http://s3:8333")["allow_http"] is True
    assert s3_client_options("https://s3.example")["allow_http"] is False
    ca = make_certificates(tmp_path).ca_file
    assert s3_client_options("https://s3.example", str(ca))["root_certificate"] == ca.read_bytes()
