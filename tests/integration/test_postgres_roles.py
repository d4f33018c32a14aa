"""The per-process PostgreSQL roles of deploy/postgres/roles.sql (what compose's database
init runs), on a private cluster: each process starts under its own login role, none of which
is a superuser or reaches beyond the vodhub database."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
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
    passwords = [argument for name in PROCESSES for argument in ("-v", f"{name}_password=dev-{name}")]
    tls_postgres.psql("-v", f"DBNAME={DATABASE}", *passwords, "-f", str(sql), database=DATABASE)
    return DATABASE


def _settings(role: str, tls_postgres: TlsPostgres, certificates: Certificates, data_dir: Path) -> Settings:
    return Settings.from_env({
        "VODHUB_DATA_DIR": str(data_dir), "VODHUB_DATABASE_URL": tls_postgres.url(role, DATABASE),
        "VODHUB_DATABASE_SSLMODE": "verify-full", "VODHUB_DATABASE_SSLROOTCERT": str(certificates.ca_file),
        "VODHUB_PASSWORD_TIME_COST": "1", "VODHUB_PASSWORD_MEMORY_COST": "8192",
    })


@pytest.fixture(scope="module")
def started_in_compose_order(
    roles_database: str, tls_postgres: TlsPostgres, certificates: Certificates,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Settings]]:
    """The api first (compose starts the others once it is healthy), then the relay and the worker."""
    settings = {}
    for process in ("api", "relay", "worker"):
        settings[process] = _settings(f"vodhub_{process}", tls_postgres, certificates,
                                      tmp_path_factory.mktemp(process))
        bootstrap(settings[process], holds_signing_key=process == "api").close()
    yield settings


def test_each_process_starts_under_its_own_role(started_in_compose_order: dict[str, Settings]) -> None:
    for process, settings in started_in_compose_order.items():
        assert settings.database_url is not None
        with psycopg.connect(settings.database_url) as connection:
            session_user, superuser, create_db, create_role = connection.execute(
                "select rolname, rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = session_user"
            ).fetchone()
        assert (session_user, superuser, create_db, create_role) == (f"vodhub_{process}", False, False, False)


def test_the_tables_belong_to_the_nologin_owner_role(started_in_compose_order: dict[str, Settings]) -> None:
    url = started_in_compose_order["worker"].database_url
    assert url is not None
    with psycopg.connect(url) as connection:
        owners = {owner for owner, in connection.execute(
            "select distinct tableowner from pg_tables where schemaname = 'public'")}
    assert owners == {"vodhub_owner"}


def test_a_process_role_reaches_no_other_database(
    started_in_compose_order: dict[str, Settings], tls_postgres: TlsPostgres, certificates: Certificates,
) -> None:
    url = started_in_compose_order["worker"].database_url
    assert url is not None
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(url.replace(f"/{DATABASE}?", "/postgres?")).close()
    with psycopg.connect(url, autocommit=True) as connection, pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute("create database vodhub_other")
