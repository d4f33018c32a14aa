"""One typed settings object, read once from VODHUB_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import msgspec

from application.relay import Topics
from domain.errors import ValidationError
from domain.ladder import Rung, parse_ladder

PREFIX = "VODHUB_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")
    database_url: str | None = None  # postgresql://… ; unset: SQLite files in data_dir
    redis_url: str | None = None  # unset: in-memory
    redis_prefix: str = "vodhub:"
    kafka_bootstrap_servers: str | None = None  # unset: in-process bus
    topic_video_uploaded: str = "video-uploaded-events"
    topic_video_processed: str = "video-processed-events"
    topic_partitions: int = 3
    topic_transcode_tasks: str = "video-transcode-tasks"
    task_partitions: int = 12  # bounds how many workers share one video's tasks
    ladder: str = "240p,360p,480p,720p,1080p"  # add 1440p,2160p for 4K sources
    worker_threads: int = 0  # x264 threads per rung in a task; 0: as many as cores
    chunk_segments: str = "2,8"  # segments in a video's first chunk, and in each later one
    topic_video_viewed: str = "video-viewed-events"
    view_window_s: int = 1800  # one viewer's repeated beacons within this many seconds count once
    view_buffer_size: int = 10_000  # views the api keeps while Kafka is away; more are dropped (and counted)
    analytics_batch_size: int = 2000  # views the analytics consumer counts per transaction
    s3_endpoint: str | None = None  # unset: local directory in data_dir
    s3_bucket: str = "vodhub"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""  # keys live under this prefix in the bucket
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
    cdn_base_url: str | None = None  # unset: the api's own /media
    stream_redirects: bool = True  # off: the stream endpoint serves bytes instead of redirecting
    media_token_ttl: int = 3600  # seconds a signed media URL stays valid
    work_dir: Path | None = None  # transcoding scratch space; unset: the system temp dir
    worker_max_attempts: int = 5  # transient failures are retried this often, then dead-lettered
    worker_backoff_s: float = 1.0  # first pause between attempts; doubles each time
    kafka_session_timeout_ms: int = 10_000  # how soon a dead worker's partitions move to another
    retry_delays_s: str = "60,600,3600"  # automatic retries of a retryable failure, then given up; off: none
    processing_lease_s: float = 900.0  # no processing progress for this long: re-driven, then taken over
    sweep_interval_s: float = 30.0  # how often the relay's sweep looks for videos left behind
    shutdown_grace_s: float = 30.0  # on SIGTERM, how long in-flight requests and tasks may take to finish
    rate_limits: str = ""  # e.g. login=10/60,upload=30/1h,default=1200/60 or off; unset: API.md's defaults
    cors_origins: str = "*"  # comma-separated origins, or off
    webhooks_allow_http: bool = False  # development and tests only: deliver to http:// URLs
    webhooks_allow_private: bool = False  # development and tests only: deliver to loopback/private addresses
    webhooks_secret_key: str | None = None  # base64 of 32 bytes, or a file's path; unset: made in data_dir
    webhooks_first_retry_s: float = 5.0  # pause after a failed delivery; doubles up to 6 h, with jitter
    metrics_port: int | None = None  # relay, worker, projector: serve /metrics here (the api has its own)
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
        settings.retry_delays()
        return settings

    def topics(self) -> Topics:
        return Topics(video_uploaded=self.topic_video_uploaded, video_processed=self.topic_video_processed,
                      transcode_tasks=self.topic_transcode_tasks)

    def chunking(self) -> tuple[int, int]:
        try:
            first, size = (int(part) for part in self.chunk_segments.split(","))
        except ValueError:
            first = size = 0
        if first < 1 or size < 1:
            raise SystemExit("vodhub: bad setting: VODHUB_CHUNK_SEGMENTS: two whole numbers ≥ 1, e.g. 2,8")
        return first, size

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
        if self.database_url:
            return postgres_env(self.database_url)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.data_dir / f"{application}.sqlite3"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }


def _decode_path(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read {type_} from settings")


def postgres_env(url: str, schema: str | None = None) -> dict[str, str]:
    """Split a postgresql:// URL into eventsourcing's POSTGRES_* settings."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
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
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "8",
    }
    if schema or query.get("schema"):
        env["POSTGRES_SCHEMA"] = schema or query["schema"][0]
    return env
