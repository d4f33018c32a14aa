"""The per-process PostgreSQL roles of deploy/postgres/roles.sql (what compose's database init
runs) and the grants of `vodhub migrate`, on a private cluster (roles belong to the whole
cluster, so not on the shared one): the migration creates every table as vodhub_owner, each
process then starts under its own role creating nothing, does its real work with its grants, and
is refused what it has no business doing."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import Tracking

from adapters.outbound.sql_analytics import SqlAnalytics
from adapters.outbound.sql_catalog import SqlCatalog
from application.analytics import Position
from application.integration_events import VideoViewed
from domain.media import Manifests, Thumbnails
from domain.webhooks import Delivery, WebhookEndpoint
from entrypoints.bootstrap import _tracking_recorder, bootstrap
from entrypoints.migrate import GRANTS, migrate, tables
from entrypoints.projector import AccountsLog, VideosLog, build_catalog, catalog_follower
from entrypoints.settings import Settings
from tests.integration.test_catalog_projection import RENDITION, upload
from tests.servers.certificates import Certificates
from tests.servers.tls import TlsPostgres

ROLES_SQL = Path(__file__).parents[2] / "deploy" / "postgres" / "roles.sql"
DATABASE = "vodhub_roles"
PROCESSES = ("api", "worker", "relay", "projector", "notifier", "analytics")


@pytest.fixture(scope="module")
def roles_database(tls_postgres: TlsPostgres) -> str:
    tls_postgres.psql("-c", f"create database {DATABASE}")
    sql = Path(tempfile.mkdtemp()) / "roles.sql"  # somewhere the cluster's owner can read
    shutil.copy(ROLES_SQL, sql)
    sql.parent.chmod(0o755)
    sql.chmod(0o644)
    passwords = [argument for name in ("owner", *PROCESSES) for argument in ("-v", f"{name}_password=dev-{name}")]
    tls_postgres.psql("-v", f"DBNAME={DATABASE}", *passwords, "-f", str(sql), database=DATABASE)
    return DATABASE


@pytest.fixture(scope="module")
def connect(
    roles_database: str, tls_postgres: TlsPostgres, certificates: Certificates, tmp_path_factory: pytest.TempPathFactory,
):
    def settings(role: str, database: str = roles_database, migrate: bool = False) -> Settings:
        return Settings.from_env({
            "VODHUB_DATA_DIR": str(tmp_path_factory.mktemp(role)), "VODHUB_DATABASE_URL": tls_postgres.url(role, database),
            "VODHUB_DATABASE_SSLMODE": "verify-full", "VODHUB_DATABASE_SSLROOTCERT": str(certificates.ca_file),
            "VODHUB_PASSWORD_TIME_COST": "1", "VODHUB_PASSWORD_MEMORY_COST": "8192",
            "VODHUB_DB_MIGRATE": "true" if migrate else "false",
        })

    return settings


@pytest.fixture(scope="module")
def migrated(connect) -> None:
    """Compose's migrate job: as the owner, before any process starts."""
    migrate(connect("vodhub_owner"))


def _settings_of(connect, process: str) -> Settings:
    return connect(f"vodhub_{process}")


def _sql(settings: Settings, statement: str) -> None:
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as connection:
        connection.execute(statement)


def test_the_migration_creates_every_table_a_process_would_create_itself(
    connect, migrated: None, tls_postgres: TlsPostgres,
) -> None:
    tls_postgres.psql("-c", "create database vodhub_selfmade")
    selfmade = connect("postgres", database="vodhub_selfmade", migrate=True)
    bootstrap(selfmade).close()
    build_catalog(selfmade).close()
    for log in (VideosLog, AccountsLog):
        catalog = build_catalog(selfmade)
        with log(env=selfmade.eventstore_env(log.name)) as source:
            catalog_follower(catalog, source).catch_up()
        catalog.close()
    with psycopg.connect(selfmade.database_url or "") as connection:
        made_by_processes = {name for name, in connection.execute("select tablename from pg_tables where schemaname = 'public'")}
    with psycopg.connect(connect("vodhub_owner").database_url or "") as connection:
        owners = dict(connection.execute("select tablename, tableowner from pg_tables where schemaname = 'public'").fetchall())
    assert made_by_processes == tables()  # the relay keeps its position in every mode
    assert owners == dict.fromkeys(tables(), "vodhub_owner")
    assert set(GRANTS) == set(PROCESSES)


def test_each_process_starts_under_its_own_role_that_owns_nothing(connect, migrated: None) -> None:
    for process in PROCESSES:
        settings = _settings_of(connect, process)
        if process in ("projector", "analytics"):
            build_catalog(settings).close()
        else:
            bootstrap(settings, holds_signing_key=process == "api").close()
        assert settings.database_url is not None
        with psycopg.connect(settings.database_url) as connection:
            row = connection.execute(
                "select session_user, current_user, rolsuper, rolcreatedb, rolcreaterole, "
                "pg_has_role(session_user, 'vodhub_owner', 'MEMBER') from pg_roles where rolname = session_user"
            ).fetchone()
        assert row == (f"vodhub_{process}", f"vodhub_{process}", False, False, False, False)


def test_each_process_does_its_work_with_its_grants(connect, migrated: None) -> None:
    now = datetime.now(UTC)
    api = bootstrap(_settings_of(connect, "api"))
    try:
        user = api.accounts.register("roles-user", "roles@example.com", "a long enough password")
        video = upload(api.videos, "under least privilege", ready=False)
        endpoint = WebhookEndpoint(id=uuid.uuid4(), owner_id=video.owner_id, url="https://a.example/in",
                                   events=["video.ready"], description="", scope="own", created_at=now,
                                   sealed_secret="s")
        assert api.webhooks is not None
        api.webhooks.store.add_endpoint(endpoint)
        api.webhooks.store.add_deliveries([Delivery(
            id=uuid.uuid4(), endpoint_id=endpoint.id, event_type="test", video_id=None, payload="{}",
            created_at=now, next_attempt_at=now)])
        assert len(api.webhooks.store.list_deliveries(endpoint.id, before=None, limit=10)) == 1
        api.catalog.list_public()
        api.catalog.clear_watched(video.owner_id)
    finally:
        api.close()

    worker = bootstrap(_settings_of(connect, "worker"), holds_signing_key=False)
    try:
        processing = worker.videos.repository.get(video.id)
        processing.start_processing()
        processing.record_processed(duration_s=3.5, width=640, height=360, renditions=[RENDITION],
                                    manifests=Manifests(hls="processed/x/master.m3u8", dash="processed/x/manifest.mpd"),
                                    thumbnails=Thumbnails())
        worker.videos.save(processing)
    finally:
        worker.close()

    relay = bootstrap(_settings_of(connect, "relay"), holds_signing_key=False)
    try:
        last = relay.videos.recorder.max_notification_id() or 0
        assert relay.videos.recorder.select_notifications(start=1, limit=100)
        for follower in ("relay", "janitor"):  # the relay's own with Kafka, as in compose
            tracking = _tracking_recorder(follower, relay.settings.eventstore_env(follower))
            tracking.insert_tracking(Tracking("videos", last))
            assert tracking.max_tracking_id("videos") == last
        relay.catalog.unsettled_videos(waiting_before=now, failed_since=now)
    finally:
        relay.close()

    with _projected(connect) as catalog:
        assert catalog.get(video.id).status == "ready"
        assert catalog.get_profile(user.id) is not None

    notifier = bootstrap(_settings_of(connect, "notifier"), holds_signing_key=False)
    try:
        assert notifier.webhooks is not None
        store = notifier.webhooks.store
        assert [found.id for found in store.endpoints_receiving("video.ready", video.owner_id)] == [endpoint.id]
        (claimed,) = store.claim_due(now + timedelta(seconds=1), now + timedelta(minutes=1), 10)
        claimed.failed(now, 500, "HTTP 500", timedelta(seconds=5))
        endpoint.attempt_failed(now, "HTTP 500")
        store.record_attempt(claimed, endpoint)
        store.prune(now - timedelta(days=1))
    finally:
        notifier.close()

    analytics = build_catalog(_settings_of(connect, "analytics"))
    try:
        view = VideoViewed(event_id=str(uuid.uuid4()), video_id=str(video.id), user_id=str(uuid.uuid4()),
                           viewed_at=now)
        assert SqlAnalytics(analytics).record_views("analytics", [(Position("views", 0, 0), view)]) == 1
        SqlAnalytics(analytics).prune_co_views()
        assert analytics.counts(video.id)[0] == 1
    finally:
        analytics.close()

    api = bootstrap(_settings_of(connect, "api"))
    try:
        deleted = api.videos.repository.get(video.id)
        deleted.delete(deleted.owner_id, ("user",))
        api.videos.save(deleted)
    finally:
        api.close()
    with _projected(connect) as catalog:  # a deleted video takes its figures with it
        assert catalog.get(video.id) is None and catalog.counts(video.id) == (0, 0, 0)


@contextmanager
def _projected(connect) -> Iterator[SqlCatalog]:
    """The projector, run as its role until it has caught up with both logs."""
    settings = _settings_of(connect, "projector")
    catalog = build_catalog(settings)
    try:
        for log in (VideosLog, AccountsLog):
            with log(env=settings.eventstore_env(log.name)) as source:
                catalog_follower(catalog, source).catch_up()
        yield catalog
    finally:
        catalog.close()


FORBIDDEN = [
    ("worker", "insert into accounts_events (originator_id, originator_version, topic, state) "
               "values (gen_random_uuid(), 1, 'forged', '')"),
    ("worker", "insert into catalog_videos (id) values (gen_random_uuid())"),
    ("worker", "select * from webhook_endpoints"),
    ("relay", "select * from accounts_events"),
    ("api", "delete from catalog_videos"),
    ("api", "update videos_events set topic = 'rewritten'"),
    ("api", "delete from accounts_events"),
    ("api", "truncate uploads_events"),
    ("projector", "insert into videos_events (originator_id, originator_version, topic, state) "
                  "values (gen_random_uuid(), 1, 'forged', '')"),
    ("projector", "select * from webhook_endpoints"),
    ("notifier", "select * from accounts_events"),
    ("notifier", "delete from webhook_endpoints"),
    ("analytics", "update catalog_videos set title = 'defaced'"),
    ("analytics", "select * from videos_events"),
    *((process, "create table intruder (id int)") for process in PROCESSES),
    *((process, "drop table catalog_tracking") for process in PROCESSES),
]


@pytest.mark.parametrize(("process", "statement"), FORBIDDEN, ids=[f"{p}: {s[:40]}" for p, s in FORBIDDEN])
def test_a_process_is_refused_what_it_has_no_business_doing(connect, migrated: None, process: str,
                                                            statement: str) -> None:
    with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)):
        _sql(_settings_of(connect, process), statement)


def test_the_owner_cannot_rewrite_history_either(connect, migrated: None) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        _sql(connect("vodhub_owner"), "update videos_events set topic = 'rewritten'")


def test_a_process_role_reaches_no_other_database(connect, roles_database: str) -> None:
    url = _settings_of(connect, "worker").database_url
    assert url is not None
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(url.replace(f"/{roles_database}?", "/postgres?")).close()
    with psycopg.connect(url, autocommit=True) as connection, pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute("create database vodhub_other")
