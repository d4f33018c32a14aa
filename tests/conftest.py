"""Shared fixtures. Real servers come from tests/servers/: PostgreSQL and Redis are
already running on the machine; the Kafka-protocol broker (Tansu) and the S3 server
(SeaweedFS) are started once per session from their PyPI wheels."""

pytest_plugins = [
    "tests.fixtures.accounts",
    "tests.fixtures.api",
    "tests.fixtures.uploads",
    "tests.fixtures.media",
    "tests.fixtures.videos",
    "tests.fixtures.webhook_receiver",
    "tests.fixtures.audience",
    "tests.fixtures.otlp_collector",
    "tests.servers.postgres",
    "tests.servers.redis",
    "tests.servers.kafka",
    "tests.servers.s3",
    "tests.servers.certificates",
    "tests.servers.tls",
]
