"""One typed settings object, read once from VODHUB_* environment variables."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

import msgspec

from adapters.outbound.kafka_security import KafkaSecurity
from application.integration_events import (
    TRANSCODE_TASKS_TOPIC,
    VIDEO_PROCESSED_TOPIC,
    VIDEO_UPLOADED_TOPIC,
    VIDEO_VIEWED_TOPIC,
)
from application.relay import Topics
from domain.errors import ValidationError
from domain.ladder import Rung, parse_ladder
from domain.transcode_jobs import CHUNK_SEGMENTS, FIRST_CHUNK_SEGMENTS, SPREAD_CHUNKS

PREFIX = "VODHUB_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # api worker processes (`vodhub api`): one per core a container should use
    data_dir: Path = Path("var")
    database_url: str | None = None  # postgresql://… ; unset: SQLite files in data_dir
    database_sslmode: str | None = None  # TLS to PostgreSQL: libpq's sslmode, e.g. verify-full
    database_sslrootcert: str | None = None  # CA file that signed the server's certificate
    database_sslcert: str | None = None  # client certificate file (mTLS)
    database_sslkey: str | None = None  # its key file (mode 0600)
    db_migrate: bool = True  # off: the process creates no table in PostgreSQL (`vodhub migrate` has, as their owner)
    # Every event store, tracking table and read model of a process has its own pool of
    # PostgreSQL connections: this many stay open in each (0: only while used), up to
    # max_overflow more under load, and those beyond pool_size close after max_idle_s unused.
    postgres_pool_size: int = 2
    postgres_max_overflow: int = 8
    postgres_max_idle_s: float = 600.0
    redis_url: str | None = None  # unset: in-memory
    redis_prefix: str = "vodhub:"
    redis_ca_file: str | None = None  # TLS to Redis (a rediss:// URL): the CA that signed the server's certificate
    redis_cert_file: str | None = None  # client certificate file (mTLS)
    redis_key_file: str | None = None  # its key file
    kafka_bootstrap_servers: str | None = None  # unset: in-process bus
    kafka_security_protocol: str | None = None  # SSL or SASL_SSL; unset: PLAINTEXT
    kafka_ca_file: str | None = None  # the CA that signed the brokers' certificates
    kafka_cert_file: str | None = None  # client certificate file (mTLS)
    kafka_key_file: str | None = None  # its key file
    kafka_sasl_mechanism: str | None = None  # with SASL_SSL: SCRAM-SHA-512 or PLAIN
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    topic_video_uploaded: str = VIDEO_UPLOADED_TOPIC
    topic_video_processed: str = VIDEO_PROCESSED_TOPIC
    topic_partitions: int = 3
    topic_transcode_tasks: str = TRANSCODE_TASKS_TOPIC
    task_partitions: int = 12  # bounds how many workers share one video's tasks
    ladder: str = "240p,360p,480p,720p,1080p"  # add 1440p,2160p for 4K sources
    worker_threads: int = 0  # x264 threads per rung in a task; 0: as many as cores
    chunk_segments: str | None = None  # segments in a video's first chunk, in each later one (at most)[, the fewest chunks]
    processing_spread: int | None = None  # workers one video's tasks are cut for; unset: 1 in `vodhub dev`, 8 on Kafka
    topic_video_viewed: str = VIDEO_VIEWED_TOPIC
    view_window_s: int = 1800  # one viewer's repeated beacons within this many seconds count once
    view_buffer_size: int = 10_000  # views the api keeps while Kafka is away; more are dropped (and counted)
    analytics_batch_size: int = 2000  # views the analytics consumer counts per transaction
    s3_endpoint: str | None = None  # unset: local directory in data_dir
    s3_bucket: str = "vodhub"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""  # keys live under this prefix in the bucket
    s3_ca_file: str | None = None  # with an https endpoint: a CA to trust besides the system's
    jwt_private_key: str | None = None  # PEM text or path; unset: generated in data_dir
    jwt_issuer: str = "vodhub"
    jwt_audience: str = "vodhub-api"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 2_592_000
    password_time_cost: int = 3
    password_memory_cost: int = 65536
    max_upload_bytes: int = 10 * 1024**3
    max_request_bytes: int = 1024 * 1024  # any other request body
    max_header_bytes: int = 16 * 1024  # request line and headers together
    body_read_timeout_s: float = 60.0  # longest wait for the next piece of an upload
    inspect_timeout_s: float = 20.0  # an upload's inspection (FFmpeg in a confined child) ends here: 415
    inspect_cpu_s: int = 10  # CPU seconds the inspecting child may use
    inspect_memory_mb: int = 1024  # address space the inspecting child may add to its start size
    cdn_base_url: str | None = None  # unset: the api's own /media
    stream_redirects: bool = True  # off: the stream endpoint serves bytes instead of redirecting
    media_token_ttl: int = 3600  # seconds a signed media URL stays valid
    edge_max_age: int = 60  # s-maxage of public media: how soon shared caches drop a deleted or now-private video
    media_accel: bool = False  # behind deploy/nginx.conf: /media authorizes, nginx moves the bytes (X-Accel-Redirect)
    work_dir: Path | None = None  # transcoding scratch space; unset: the system temp dir
    worker_max_attempts: int = 5  # transient failures are retried this often, then dead-lettered
    worker_backoff_s: float = 1.0  # first pause between attempts; doubles each time
    kafka_session_timeout_ms: int = 10_000  # how soon a dead worker's partitions move to another
    worker_group: str = "video-processing"  # the workers' Kafka consumer group: one per deployment sharing a cluster
    retry_delays_s: str = "60,600,3600"  # automatic retries of a retryable failure, then given up; off: none
    processing_lease_s: float = 900.0  # no processing progress for this long: re-driven, then taken over
    sweep_interval_s: float = 30.0  # how often the relay's sweep looks for videos left behind
    shutdown_grace_s: float = 30.0  # on SIGTERM, how long in-flight requests and tasks may take to finish
    rate_limits: str = ""  # e.g. login=10/60,upload=30/1h,default=1200/60 or off; unset: API.md's defaults
    cors_origins: str = "*"  # comma-separated origins, or off
    trusted_proxies: str = ""  # comma-separated CIDRs whose X-Forwarded-For names the client; unset: none
    webhooks_allow_http: bool = False  # development and tests only: deliver to http:// URLs
    webhooks_allow_private: bool = False  # development and tests only: deliver to loopback/private addresses
    webhooks_secret_key: str | None = None  # base64 of 32 bytes, or a file's path; unset: made in data_dir
    webhooks_first_retry_s: float = 5.0  # pause after a failed delivery; doubles up to 6 h, with jitter
    hashing_capacity: int = 4  # password hashes at once (argon2: 64 MiB each by default)
    hashing_queue: int = 32  # more waiting than this: 503 + Retry-After at once
    inspection_capacity: int = 4  # uploads probed (PyAV) at once
    inspection_queue: int = 16
    event_store_capacity: int = 16  # event-store calls of requests at once
    event_store_queue: int = 128
    storage_capacity: int = 64  # short object-storage calls at once (uploads and streamed reads are not counted)
    storage_queue: int = 256
    sse_streams_per_user: int = 10  # open status streams (SSE) per user; more: 429
    sse_streams_per_process: int = 1000
    breaker_failures: int = 3  # consecutive outage errors that open a dependency's circuit breaker
    breaker_open_s: float = 10.0  # how long it stays open (503 at once) before a call is tried again
    metrics_port: int | None = None  # relay, worker, projector: serve /metrics here (the api has its own)
    otlp_endpoint: str | None = None  # OTLP/HTTP collector, e.g. http://127.0.0.1:4318; unset: tracing off
    trace_console: bool = False  # development: print finished spans on stdout
    trace_sample_ratio: float = 1.0  # share of new traces kept (an upload's whole trace follows its root)
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from VODHUB_* variables; empty or unset means the embedded default."""
        environ = os.environ if environ is None else environ
        fields = {name: environ[PREFIX + name.upper()] for name in cls.__struct_fields__
                  if environ.get(PREFIX + name.upper())}
        try:
            settings = msgspec.convert(fields, cls, strict=False, dec_hook=_decode_path)
        except msgspec.ValidationError as error:
            raise SystemExit(f"vodhub: bad setting: {error}") from None
        settings.ladder_rungs()  # a bad ladder stops the process at start, not at the first upload
        settings.chunking()
        settings.kafka_security()
        settings.trusted_proxy_networks()
        settings.retry_delays()
        if (settings.postgres_pool_size < 0 or settings.postgres_max_overflow < 0
                or settings.postgres_pool_size + settings.postgres_max_overflow < 1 or settings.postgres_max_idle_s <= 0):
            raise SystemExit("vodhub: bad setting: VODHUB_POSTGRES_POOL_SIZE ≥ 0, VODHUB_POSTGRES_MAX_OVERFLOW ≥ 0 "
                             "(together ≥ 1), VODHUB_POSTGRES_MAX_IDLE_S > 0")
        return msgspec.structs.replace(
            settings, database_url=settings.database_url and with_postgres_tls(settings.database_url, settings),
            redis_url=settings.redis_url and with_redis_tls(settings.redis_url, settings),
        )

    def kafka_security(self) -> KafkaSecurity:
        try:
            return KafkaSecurity(
                protocol=self.kafka_security_protocol or "PLAINTEXT", ca_file=self.kafka_ca_file,
                cert_file=self.kafka_cert_file, key_file=self.kafka_key_file,
                sasl_mechanism=self.kafka_sasl_mechanism, sasl_username=self.kafka_sasl_username,
                sasl_password=self.kafka_sasl_password,
            )
        except ValueError as error:
            raise SystemExit(f"vodhub: bad setting: {error}") from None

    def uses_data_dir(self) -> bool:
        """Whether an embedded default keeps something in data_dir (SQLite files, objects, keys)."""
        return not (self.database_url and self.s3_endpoint and self.jwt_private_key and self.webhooks_secret_key)

    def check_data_dir(self) -> None:
        """Stop with a clear message, not a traceback from deep inside, when data_dir is needed
        but cannot be written (a read-only root filesystem without a volume, another owner)."""
        if not self.uses_data_dir():
            return
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.data_dir):
                pass
        except OSError as error:
            raise SystemExit(
                f"vodhub: the data directory {self.data_dir.absolute()} is not writable ({error.strerror or error}).\n"
                "  Set VODHUB_DATA_DIR to a directory this user may write, or mount a writable volume there\n"
                "  (the image's is /var/lib/vodhub, for uid 10001: `docker run -v vodhub-data:/var/lib/vodhub …`).\n"
                "  It holds the embedded defaults; configure the database, S3, the JWT key and the webhooks key\n"
                "  (VODHUB_DATABASE_URL, VODHUB_S3_ENDPOINT, VODHUB_JWT_PRIVATE_KEY, VODHUB_WEBHOOKS_SECRET_KEY) to need none."
            ) from None

    def creates_tables(self) -> bool:
        """Whether this process creates its tables if missing: always in SQLite files; in
        PostgreSQL unless VODHUB_DB_MIGRATE is off, its role then holding no more than its grants."""
        return self.db_migrate or not self.database_url

    def topics(self) -> Topics:
        return Topics(video_uploaded=self.topic_video_uploaded, video_processed=self.topic_video_processed,
                      transcode_tasks=self.topic_transcode_tasks)

    def chunking(self) -> tuple[int, int, int]:
        """(first chunk, chunk size, spread). The spread is how many workers share one video:
        a third number of VODHUB_CHUNK_SEGMENTS, else VODHUB_PROCESSING_SPREAD, else what the
        deployment has. `vodhub dev` runs one worker: cutting a video finer for a group that
        is not there only decodes the source more often (its task slots still share the
        cores: x264 and the decoder are threaded). A group on Kafka is cut for 8 workers.
        With explicit chunk sizes and no spread, chunks are as long as asked (1)."""
        if self.processing_spread is not None and self.processing_spread < 1:
            raise SystemExit("vodhub: bad setting: VODHUB_PROCESSING_SPREAD: a whole number ≥ 1")
        if self.chunk_segments is None:
            spread = self.processing_spread or (SPREAD_CHUNKS if self.kafka_bootstrap_servers else 1)
            return FIRST_CHUNK_SEGMENTS, CHUNK_SEGMENTS, spread
        parts = self.chunk_segments.split(",")
        try:
            numbers = [int(part) for part in parts] + ([self.processing_spread or 1] if len(parts) == 2 else [])
        except ValueError:
            numbers = []
        if len(numbers) != 3 or min(numbers) < 1:
            raise SystemExit("vodhub: bad setting: VODHUB_CHUNK_SEGMENTS: two or three whole numbers ≥ 1, e.g. 2,8,8")
        first, size, spread = numbers
        return first, size, spread

    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        try:
            return [ip_network(part.strip(), strict=False) for part in self.trusted_proxies.split(",") if part.strip()]
        except ValueError as error:
            raise SystemExit(f"vodhub: bad setting: VODHUB_TRUSTED_PROXIES: {error}") from None

    def retry_delays(self) -> tuple[timedelta, ...]:
        if self.retry_delays_s.strip().lower() in ("off", "none", "0"):
            return ()
        try:
            delays = tuple(timedelta(seconds=float(part)) for part in self.retry_delays_s.split(","))
        except ValueError:
            delays = (timedelta(-1),)
        if any(delay.total_seconds() < 0 for delay in delays):
            raise SystemExit("vodhub: bad setting: VODHUB_RETRY_DELAYS_S: seconds ≥ 0, comma-separated, or off")
        return delays

    def ladder_rungs(self) -> tuple[Rung, ...]:
        try:
            return parse_ladder(self.ladder)
        except ValidationError as error:
            raise SystemExit(f"vodhub: bad setting: VODHUB_LADDER: {error.message}") from None

    def eventstore_env(self, application: str) -> dict[str, str]:
        """eventsourcing's persistence settings for one application's event store."""
        # Stored events carry the trace context of whoever stored them (adapters/outbound/tracing.py).
        mapper = {"MAPPER_TOPIC": "adapters.outbound.tracing:TracingMapper"}
        if self.database_url:
            return {**postgres_env(self.database_url, pool_size=self.postgres_pool_size,
                                   max_overflow=self.postgres_max_overflow, max_idle_s=self.postgres_max_idle_s),
                    **mapper, **({} if self.db_migrate else {"CREATE_TABLE": "no"})}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.data_dir / f"{application}.sqlite3"),
            "SQLITE_LOCK_TIMEOUT": "10",
            **mapper,
        }


def _decode_path(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read {type_} from settings")


# libpq's TLS parameters, carried in the database URL's query to every connection.
POSTGRES_TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


def with_postgres_tls(url: str, settings: Settings) -> str:
    """The database URL with the VODHUB_DATABASE_SSL* settings added to its query."""
    return _with_query(url, {name: getattr(settings, f"database_{name}") for name in POSTGRES_TLS_PARAMETERS})


def with_redis_tls(url: str, settings: Settings) -> str:
    """The Redis URL with the VODHUB_REDIS_*_FILE settings added as redis-py's ssl_* options."""
    if not any((settings.redis_ca_file, settings.redis_cert_file, settings.redis_key_file)):
        return url
    if not url.startswith("rediss://"):
        raise SystemExit("vodhub: bad setting: VODHUB_REDIS_CA_FILE and the like need a rediss:// VODHUB_REDIS_URL")
    return _with_query(url, {"ssl_ca_certs": settings.redis_ca_file, "ssl_certfile": settings.redis_cert_file,
                             "ssl_keyfile": settings.redis_key_file})


def _with_query(url: str, extra: dict[str, str | None]) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | {name: value for name, value in extra.items() if value}
    return parts._replace(query=urlencode(query)).geturl()


def postgres_env(
    url: str, schema: str | None = None, *, pool_size: int = 2, max_overflow: int = 8, max_idle_s: float = 600.0,
) -> dict[str, str]:
    """Split a postgresql:// URL into eventsourcing's POSTGRES_* settings, TLS parameters included."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    env = {
        # eventsourcing's own factory, plus the libpq TLS parameters it has no settings for.
        "PERSISTENCE_MODULE": "adapters.outbound.postgres_tls:TlsPostgresFactory",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        # eventsourcing retries a failed statement 10 times: keep each wait short so a request
        # during a database outage answers 503 within seconds, not a minute.
        "POSTGRES_CONNECT_TIMEOUT": "1",
        "POSTGRES_PRE_PING": "y",
        # Each event store, tracking table and process keeps its own pool: keep the idle part small.
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(max_overflow),
        "POSTGRES_MAX_IDLE": str(max_idle_s),  # ours (adapters/outbound/postgres_tls.py): eventsourcing has none
    }
    if schema or query.get("schema"):
        env["POSTGRES_SCHEMA"] = schema or query["schema"][0]
    for name in POSTGRES_TLS_PARAMETERS:
        if query.get(name):
            env[f"POSTGRES_{name.upper()}"] = query[name][0]
    return env
