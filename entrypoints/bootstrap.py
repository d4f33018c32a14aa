"""Composition root: build every adapter from settings and wire them into the use cases."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, TrackingRecorder
from eventsourcing.utils import Environment

from adapters.outbound import tracing
from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.breakers import Breakers, guard_eventsourcing, guard_sqlalchemy
from adapters.outbound.cache import InMemoryCache
from adapters.outbound.clock import RandomIdGenerator, SystemClock
from adapters.outbound.guarded import GuardedEventPublisher, GuardedObjectStorage
from adapters.outbound.in_memory_tokens import InMemoryRefreshTokenStore, InMemoryRevocationList
from adapters.outbound.jwt_tokens import (
    JwtPlaybackTokens,
    JwtTokenIssuer,
    NoSigningKey,
    load_or_create_key,
    load_private_key,
)
from adapters.outbound.media_sandbox import SandboxLimits
from adapters.outbound.metrics import PrometheusMetrics, PrometheusViewMetrics, bulkhead_rejected
from adapters.outbound.persistence_errors import translate_event_store_errors
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from adapters.outbound.rate_limiter import InMemoryRateLimiter, RedisRateLimiter
from application.accounts import Accounts
from application.analytics import ViewBeacon, ViewBuffer, ViewDedup
from application.bulkheads import Bulkhead, Bulkheads
from application.engagement import AudienceFigures, Engagement
from application.following import SignalledLog
from application.janitor import Janitor
from application.listing import VideoListing
from application.media_links import MediaLinks
from application.playback import PlaybackCache
from application.ports import (
    Cache,
    Clock,
    EventPublisher,
    IdGenerator,
    MediaInspector,
    ObjectStorage,
    PasswordHasher,
    PlaybackTokens,
    RefreshTokenStore,
    RevocationList,
    TokenIssuer,
)
from application.rate_limits import LoginBudget, RateLimiter, RateLimits, parse_rate_limits
from application.read_model import ReadModel
from application.relay import OutboxRelay
from application.resumable import ResumableUploads
from application.status_feed import StatusFeed
from application.streaming import Streaming
from application.sweep import Sweep
from application.videos import Videos
from application.webhook_ports import SecretBox, WebhookStore
from application.webhooks import Webhooks
from entrypoints.projector import build_catalog
from entrypoints.schema_lock import schema_creation_lock
from entrypoints.settings import Settings

logger = logging.getLogger("vodhub")

HealthCheck = Callable[[], Awaitable[None]]


@dataclass
class Vodhub:
    """Everything a process needs, built once."""

    settings: Settings
    accounts: Accounts
    videos: Videos
    streaming: Streaming
    playback: PlaybackCache
    storage: ObjectStorage
    publisher: EventPublisher
    relay: OutboxRelay
    janitor: Janitor
    catalog: ReadModel
    sweep: Sweep
    listing: VideoListing
    uploads: ResumableUploads | None = None
    webhooks: Webhooks | None = None
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    rate_limiter: RateLimiter = field(default_factory=InMemoryRateLimiter)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    engagement: Engagement | None = None
    beacon: ViewBeacon | None = None
    view_buffer: ViewBuffer | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    breakers: Breakers = field(default_factory=Breakers)
    bulkheads: Bulkheads = field(default_factory=Bulkheads)
    status_feed: StatusFeed | None = None

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def bootstrap(
    settings: Settings, *, clock: Clock | None = None, ids: IdGenerator | None = None,
    hasher: PasswordHasher | None = None, revocations: RevocationList | None = None,
    refresh_tokens: RefreshTokenStore | None = None, storage: ObjectStorage | None = None,
    publisher: EventPublisher | None = None, webhook_store: WebhookStore | None = None,
    catalog: ReadModel | None = None, cache: Cache | None = None, inspector: MediaInspector | None = None,
    tokens: TokenIssuer | None = None, playback_tokens: PlaybackTokens | None = None,
    holds_signing_key: bool = True,
) -> Vodhub:
    """Build the application from settings; every adapter given as a keyword (tests pass
    in-memory ones) is used instead of the one the settings would build.
    Only the api holds the JWT signing key: the other processes pass holds_signing_key=False,
    never read VODHUB_JWT_PRIVATE_KEY and never create a key."""
    clock = clock or SystemClock()
    ids = ids or RandomIdGenerator()
    hasher = hasher or Argon2PasswordHasher(
        time_cost=settings.password_time_cost, memory_cost=settings.password_memory_cost
    )
    health_checks: dict[str, HealthCheck] = {}
    closers: list[Callable[[], None]] = []
    breakers = Breakers(failures=settings.breaker_failures, open_s=settings.breaker_open_s)
    bulkheads = _bulkheads(settings)
    redis_client = _redis_client(settings, health_checks, closers, bulkheads, breakers)
    channel = _invalidation_channel(settings, redis_client, closers)
    if revocations is None or refresh_tokens is None:
        revocations, refresh_tokens = _token_stores(settings, redis_client, clock, breakers, channel)
    with schema_creation_lock(settings.database_url):
        if tokens is None or playback_tokens is None:
            built_issuer, built_playback = _tokens(settings, clock, holds_signing_key)
            tokens, playback_tokens = tokens or built_issuer, playback_tokens or built_playback
        accounts = Accounts(
            hasher=hasher, tokens=tokens, refresh_tokens=refresh_tokens,
            revocations=revocations, clock=clock, ids=ids, access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl, login_budget=_login_budget(settings, redis_client),
            env=settings.eventstore_env("accounts"),
        )
        closers.append(accounts.close)
        guard_eventsourcing(accounts.recorder, breakers["postgresql"])
        translate_event_store_errors(accounts.recorder)
        health_checks["event_store"] = _eventstore_check(accounts, bulkheads)
        storage = storage or _object_storage(settings, breakers, bulkheads)
        health_checks["object_storage"] = storage.ping
        publisher = publisher or _publisher(settings, breakers)
        if settings.kafka_bootstrap_servers:
            health_checks["kafka"] = publisher.ping
        links = MediaLinks(
            playback_tokens, clock,
            base_url=settings.cdn_base_url or "/media", token_ttl=settings.media_token_ttl,
        )
        videos = Videos(
            storage=storage, inspector=inspector or PyAVMediaInspector(sandbox=_inspection_limits(settings)), clock=clock,
            ids=ids, links=links,
            max_upload_bytes=settings.max_upload_bytes, env=settings.eventstore_env("videos"),
        )
        closers.append(videos.close)
        videos.bulkheads = bulkheads
        uploads = ResumableUploads(
            videos=videos, storage=storage, clock=clock, ids=ids, env=settings.eventstore_env("uploads"),
        )
        closers.append(uploads.close)
        # Durable in every mode (a SQLite file in `vodhub dev`): a restart resumes, never republishes
        # the whole log. What the in-process bus lost with the process, the sweep re-drives.
        relay_tracking = _tracking_recorder("relay", settings.eventstore_env("relay"))
        relay = OutboxRelay(videos, relay_tracking, publisher, topics=settings.topics(), metrics=PrometheusMetrics(),
                            trace_context_of=tracing.trace_context_of)
        janitor_tracking = _tracking_recorder("janitor", settings.eventstore_env("janitor"))
        janitor = Janitor(videos, janitor_tracking, storage)
        if catalog is None:
            built = build_catalog(settings)
            guard_sqlalchemy(built.engine, breakers["postgresql"])
            closers.append(built.close)
            catalog = built
        for recorder in (videos.recorder, uploads.recorder, relay_tracking, janitor_tracking):
            guard_eventsourcing(recorder, breakers["postgresql"])
        for recorder in (videos.recorder, uploads.recorder):
            translate_event_store_errors(recorder)
        _hear_other_processes(videos, accounts)
        listing = VideoListing(catalog, links)
        sweep = Sweep(videos, catalog, clock, lease=timedelta(seconds=settings.processing_lease_s),
                      retry_delays=settings.retry_delays(), metrics=PrometheusMetrics())
        listing.liked_among = catalog.liked_among
        listing.processing_progress = videos.progress_of
        videos.figures = AudienceFigures(catalog)
        engagement = Engagement(videos, catalog, catalog, listing, clock, ids)
        health_checks["read_model"] = _read_model_check(catalog, bulkheads)
        playback = PlaybackCache(videos, cache or _cache(settings, redis_client, breakers, channel))
        videos.on_change.append(playback.invalidate)
        streaming = Streaming(playback, links, redirects=settings.stream_redirects)
        if webhook_store is None:
            own_store = build_webhook_store(settings)
            closers.append(own_store.close)
            webhook_store = own_store
        webhooks = Webhooks(
            webhook_store, webhook_secret_box(settings), clock, ids,
            allow_http=settings.webhooks_allow_http, allow_private=settings.webhooks_allow_private,
        )
        view_buffer = ViewBuffer(publisher, topic=settings.topic_video_viewed, capacity=settings.view_buffer_size,
                                 metrics=PrometheusViewMetrics())
        beacon = ViewBeacon(playback, _view_dedup(settings, redis_client, breakers), view_buffer, clock, ids,
                            window_s=settings.view_window_s)
    return Vodhub(
        settings=settings, accounts=accounts, videos=videos, streaming=streaming, storage=storage,
        playback=playback, publisher=publisher, relay=relay, janitor=janitor, catalog=catalog, listing=listing,
        sweep=sweep,
        uploads=uploads, webhooks=webhooks, health_checks=health_checks, engagement=engagement, beacon=beacon,
        view_buffer=view_buffer, closers=closers, rate_limiter=_rate_limiter(settings, breakers),
        rate_limits=_rate_limits(settings), breakers=breakers, bulkheads=bulkheads,
        status_feed=StatusFeed(videos, bulkheads.event_store, per_user=settings.sse_streams_per_user,
                               per_process=settings.sse_streams_per_process),
    )


def _bulkheads(settings: Settings) -> Bulkheads:
    def bulkhead(name: str, capacity: int, queue: int) -> Bulkhead:
        return Bulkhead(name, capacity, queue, on_reject=bulkhead_rejected)

    return Bulkheads(
        hashing=bulkhead("password hashing", settings.hashing_capacity, settings.hashing_queue),
        inspection=bulkhead("media inspection", settings.inspection_capacity, settings.inspection_queue),
        event_store=bulkhead("event store", settings.event_store_capacity, settings.event_store_queue),
        storage=bulkhead("object storage", settings.storage_capacity, settings.storage_queue),
    )


def _object_storage(settings: Settings, breakers: Breakers, bulkheads: Bulkheads) -> ObjectStorage:
    if settings.s3_endpoint:
        from adapters.outbound.object_storage import S3ObjectStorage

        s3 = S3ObjectStorage(
            settings.s3_endpoint, settings.s3_bucket, settings.s3_region,
            settings.s3_access_key_id, settings.s3_secret_access_key, prefix=settings.s3_prefix,
            ca_file=settings.s3_ca_file,
        )
        return GuardedObjectStorage(s3, breakers["s3"], bulkheads.storage)
    from adapters.outbound.object_storage import LocalObjectStorage

    return LocalObjectStorage(settings.data_dir / "objects")


def _publisher(settings: Settings, breakers: Breakers) -> EventPublisher:
    if settings.kafka_bootstrap_servers:
        from adapters.outbound.kafka import KafkaEventPublisher

        return GuardedEventPublisher(
            KafkaEventPublisher(settings.kafka_bootstrap_servers, security=settings.kafka_security()), breakers["kafka"])
    from adapters.outbound.in_process_bus import InProcessEventBus

    return InProcessEventBus()


def build_webhook_store(settings: Settings) -> Any:
    """Endpoints and the delivery queue: in the PostgreSQL database when one is set, else a SQLite file."""
    from adapters.outbound.sql_webhooks import SqlWebhookStore

    if settings.database_url:
        store = SqlWebhookStore(settings.database_url, pool_size=settings.postgres_pool_size,
                                max_overflow=settings.postgres_max_overflow)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = SqlWebhookStore(f"sqlite:///{settings.data_dir / 'webhooks.sqlite3'}")
    if settings.creates_tables():
        store.create_tables()
    store.engine.dispose()  # most processes never use it again: hold no idle connection
    return store


def webhook_secret_box(settings: Settings) -> SecretBox:
    """Seals endpoints' signing secrets; the api and the notifier need the same key."""
    from adapters.outbound.secret_box import AesGcmSecretBox, load_or_create_key, parse_key

    configured = settings.webhooks_secret_key
    try:
        if configured and configured.startswith(("/", ".")):  # a path to a file holding it
            return AesGcmSecretBox(parse_key(Path(configured).read_text()))
        if configured:
            return AesGcmSecretBox(parse_key(configured))
        return AesGcmSecretBox(load_or_create_key(settings.data_dir / "webhooks-secret.key"))
    except OSError as error:
        raise SystemExit(f"vodhub: bad setting: VODHUB_WEBHOOKS_SECRET_KEY: {error}") from None
    except ValueError as error:
        raise SystemExit(f"vodhub: bad setting: {error}") from None


def _read_model_check(catalog: ReadModel, bulkheads: Bulkheads) -> HealthCheck:
    async def check() -> None:
        await bulkheads.operations.run(catalog.list_public, abandon_on_cancel=True)

    return check


def _hear_other_processes(*logs: SignalledLog) -> None:
    """On PostgreSQL, a log's followers here also wake for the appends of other processes."""
    from eventsourcing.postgres import PostgresApplicationRecorder

    for log in logs:
        if isinstance(log.recorder, PostgresApplicationRecorder):
            from adapters.outbound.postgres_appends import appends_listener

            log.log_signal.listen_with(appends_listener(log.recorder))


def _tracking_recorder(follower: str, env: dict[str, str]) -> TrackingRecorder:
    """Where a log follower remembers how far it got (its own table or file)."""
    return InfrastructureFactory.construct(Environment(name=follower, env=env)).tracking_recorder()


def _tokens(settings: Settings, clock: Clock, holds_signing_key: bool) -> tuple[TokenIssuer, PlaybackTokens]:
    if not holds_signing_key:
        return NoSigningKey(), NoSigningKey()
    signing_key = _signing_key(settings)
    return (JwtTokenIssuer(signing_key, issuer=settings.jwt_issuer, audience=settings.jwt_audience, clock=clock),
            JwtPlaybackTokens(signing_key, issuer=settings.jwt_issuer, clock=clock))


def _signing_key(settings: Settings) -> Any:
    if settings.jwt_private_key:
        return load_private_key(settings.jwt_private_key)
    return load_or_create_key(settings.data_dir / "jwt-ed25519.pem")


def _redis_client(
    settings: Settings, health_checks: dict[str, HealthCheck], closers: list[Callable[[], None]],
    bulkheads: Bulkheads, breakers: Breakers,
) -> Any:
    if not settings.redis_url:
        return None
    from adapters.outbound.redis_client import connect

    client = connect(settings.redis_url)
    closers.append(client.close)

    async def ping_redis() -> None:
        await bulkheads.operations.run(breakers["redis"].guard(client.ping), abandon_on_cancel=True)

    health_checks["redis"] = ping_redis
    return client


def _invalidation_channel(settings: Settings, client: Any, closers: list[Callable[[], None]]) -> Any:
    """Lets each process keep near copies of the cache and the revocation list (see
    adapters/outbound/redis_invalidations.py); its own connection, which pub/sub holds."""
    if client is None:
        return None
    from adapters.outbound.redis_client import connect
    from adapters.outbound.redis_invalidations import InvalidationChannel

    assert settings.redis_url is not None  # a client exists only with a URL
    subscriber = connect(settings.redis_url)
    channel = InvalidationChannel(subscriber, settings.redis_prefix)
    closers.extend([subscriber.close, channel.close])  # run in reverse: the thread stops first
    return channel


def _token_stores(
    settings: Settings, client: Any, clock: Clock, breakers: Breakers, channel: Any = None,
) -> tuple[RevocationList, RefreshTokenStore]:
    if client is None:
        return InMemoryRevocationList(clock), InMemoryRefreshTokenStore(clock)
    from adapters.outbound.redis_tokens import RedisRefreshTokenStore, RedisRevocationList

    prefix, breaker = settings.redis_prefix, breakers["redis"]
    return (RedisRevocationList(client, clock, prefix, breaker=breaker, channel=channel),
            RedisRefreshTokenStore(client, clock, prefix, breaker=breaker))


def _cache(settings: Settings, client: Any, breakers: Breakers, channel: Any = None) -> Cache:
    if client is None:
        return InMemoryCache()
    from adapters.outbound.cache import NearCache, RedisCache

    remote = RedisCache(client, settings.redis_prefix, breaker=breakers["redis"])
    return NearCache(remote, channel) if channel is not None else remote


def _view_dedup(settings: Settings, client: Any, breakers: Breakers) -> ViewDedup:
    from adapters.outbound.view_dedup import InMemoryViewDedup, RedisViewDedup

    if client is None:
        return InMemoryViewDedup()
    return RedisViewDedup(client, settings.redis_prefix, breaker=breakers["redis"])


def _eventstore_check(application: Accounts, bulkheads: Bulkheads) -> HealthCheck:
    async def check() -> None:
        await bulkheads.operations.run(application.recorder.max_notification_id, abandon_on_cancel=True)

    return check


def _rate_limiter(settings: Settings, breakers: Breakers) -> RateLimiter:
    """Shared by all replicas in Redis; per process without Redis, or while it does not answer."""
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.redis_prefix, breaker=breakers["redis"])
    return InMemoryRateLimiter()


def _inspection_limits(settings: Settings) -> SandboxLimits:
    return SandboxLimits(timeout_s=settings.inspect_timeout_s, cpu_s=settings.inspect_cpu_s,
                         memory_bytes=settings.inspect_memory_mb * 1024 * 1024)


def _login_budget(settings: Settings, client: Any) -> LoginBudget | None:
    """Failed logins per account from any address; shared in Redis when there is one."""
    from adapters.outbound.login_budget import InMemoryLoginBudget, RedisLoginBudget

    rate = _rate_limits(settings).login_failures
    if rate is None:
        return None
    if client is None:
        return InMemoryLoginBudget(rate)
    return RedisLoginBudget(client, rate, settings.redis_prefix)


def _rate_limits(settings: Settings) -> RateLimits:
    try:
        return parse_rate_limits(settings.rate_limits)
    except ValueError as error:
        raise SystemExit(f"vodhub: bad setting: VODHUB_RATE_LIMITS: {error}") from None
