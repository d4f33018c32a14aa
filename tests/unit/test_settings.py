"""Settings: read once from VODHUB_* variables, and every one of them documented."""

from pathlib import Path

import pytest

from entrypoints.settings import Settings, postgres_env

README = Path(__file__).resolve().parents[2] / "README.md"


def test_unset_means_the_embedded_defaults():
    settings = Settings.from_env({})
    assert (settings.database_url, settings.redis_url, settings.kafka_bootstrap_servers, settings.s3_endpoint) == (
        None, None, None, None)
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8000, Path("var"))


def test_values_are_typed():
    settings = Settings.from_env({"VODHUB_PORT": "9000", "VODHUB_DATA_DIR": "/srv/v", "VODHUB_STREAM_REDIRECTS": "false"})
    assert (settings.port, settings.data_dir, settings.stream_redirects) == (9000, Path("/srv/v"), False)


def test_a_bad_value_stops_the_process_with_its_name():
    with pytest.raises(SystemExit, match="port"):
        Settings.from_env({"VODHUB_PORT": "eighty"})


def test_every_setting_is_in_the_readme():
    readme = README.read_text()
    missing = [f"VODHUB_{name.upper()}" for name in Settings.__struct_fields__
               if f"VODHUB_{name.upper()}" not in readme]
    assert missing == []


def test_postgres_urls_become_eventsourcing_settings():
    env = postgres_env("postgresql://me:s%40cret@db.example:6543/videos?schema=tenant1")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_HOST"], env["POSTGRES_PORT"],
            env["POSTGRES_DBNAME"], env["POSTGRES_SCHEMA"]) == ("me", "s@cret", "db.example", "6543", "videos", "tenant1")


def test_one_video_is_cut_for_the_workers_that_share_it():
    """`vodhub dev` has one worker: cutting finer only decodes the source more often."""
    assert Settings.from_env({}).chunking() == (2, 8, 1)
    assert Settings.from_env({"VODHUB_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}).chunking() == (2, 8, 8)
    assert Settings.from_env({"VODHUB_PROCESSING_SPREAD": "3"}).chunking() == (2, 8, 3)
    assert Settings.from_env({"VODHUB_CHUNK_SEGMENTS": "1,2", "VODHUB_PROCESSING_SPREAD": "4"}).chunking() == (1, 2, 4)
    assert Settings.from_env({"VODHUB_CHUNK_SEGMENTS": "100000,100000,1"}).chunking() == (100000, 100000, 1)
    with pytest.raises(SystemExit, match="VODHUB_PROCESSING_SPREAD"):
        Settings.from_env({"VODHUB_PROCESSING_SPREAD": "0"})
def test_the_postgres_pool_settings_reach_every_event_store_pool():
    from adapters.outbound.postgres_tls import TlsPostgresFactory

    settings = Settings.from_env({"VODHUB_DATABASE_URL": "postgresql://me@db/videos", "VODHUB_POSTGRES_POOL_SIZE": "0",
                                  "VODHUB_POSTGRES_MAX_OVERFLOW": "2", "VODHUB_POSTGRES_MAX_IDLE_S": "10"})
    env = settings.eventstore_env("videos")
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == ("0", "2")
    pool = TlsPostgresFactory(env).datastore.pool  # not opened: nothing connects
    assert (pool.min_size, pool.max_size, pool.max_idle) == (0, 2, 10.0)


def test_a_pool_must_be_able_to_open_a_connection():
    with pytest.raises(SystemExit, match="POOL_SIZE"):
        Settings.from_env({"VODHUB_POSTGRES_POOL_SIZE": "0", "VODHUB_POSTGRES_MAX_OVERFLOW": "0"})
