"""Composition root: build every adapter from settings and wire them into the use cases."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from anyio import to_thread
from eventsourcing.persistence import InfrastructureFactory, TrackingRecorder
from eventsourcing.popo import POPOTrackingRecorder
from eventsourcing.utils import Environment

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.cache import InMemoryCache
from adapters.outbound.clock import RandomIdGenerator, SystemClock
from adapters.outbound.in_memory_tokens import InMemoryRefreshTokenStore, InMemoryRevocationList
from adapters.outbound.jwt_tokens import JwtPlaybackTokens, JwtTokenIssuer, load_or_create_key, load_private_key
from adapters.outbound.metrics import PrometheusMetrics, PrometheusViewMetrics
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from adapters.outbound.rate_limiter import InMemoryRateLimiter, RedisRateLimiter
from adapters.outbound.sql_catalog import SqlCatalog
from application.accounts import Accounts
from application.analytics import ViewBeacon, ViewBuffer, ViewDedup
from application.engagement import AudienceFigures, Engagement
from application.janitor import Janitor
from application.listing import VideoListing
from application.media_links import MediaLinks
from application.playback import PlaybackCache
from application.ports import (
    Cache,
    Clock,
    EventPublisher,
    IdGenerator,
    ObjectStorage,
    PasswordHasher,
    RefreshTokenStore,
    RevocationList,
)
from application.rate_limits import RateLimiter, RateLimits, parse_rate_limits
from application.relay import OutboxRelay
from application.resumable import ResumableUploads
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
    catalog: SqlCatalog
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

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def bootstrap(
    settings: Settings, *, clock: Clock | None = None, ids: IdGenerator | None = None,
    hasher: PasswordHasher | None = None, revocations: RevocationList | None = None,
    refresh_tokens: RefreshTokenStore | None = None, storage: ObjectStorage | None = None,
    publisher: EventPublisher | None = None, webhook_store: WebhookStore | None = None,
) -> Vodhub:
    """Build the application from settings; tests pass their own adapters as keywords."""
    clock = clock or SystemClock()
    ids = ids or RandomIdGenerator()
    hasher = hasher or Argon2PasswordHasher(
        time_cost=settings.password_time_cost, memory_cost=settings.password_memory_cost
    )
    health_checks: dict[str, HealthCheck] = {}
    closers: list[Callable[[], None]] = []
    redis_client = _redis_client(settings, health_checks, closers)
    if revocations is None or refresh_tokens is None:
        revocations, refresh_tokens = _token_stores(settings, redis_client, clock)
    with schema_creation_lock(settings.database_url):
        signing_key = _signing_key(settings)
        tokens = JwtTokenIssuer(signing_key, issuer=settings.jwt_issuer, audience=settings.jwt_audience, clock=clock)
        accounts = Accounts(
            hasher=hasher, tokens=tokens, refresh_tokens=refresh_tokens,
            revocations=revocations, clock=clock, ids=ids, access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
            env=settings.eventstore_env("accounts"),
        )
        closers.append(accounts.close)
        health_checks["event_store"] = _eventstore_check(accounts)
        storage = storage or _object_storage(settings)
        health_checks["object_storage"] = storage.ping
        publisher = publisher or _publisher(settings)
        if settings.kafka_bootstrap_servers:
            health_checks["kafka"] = publisher.ping
        links = MediaLinks(
            JwtPlaybackTokens(signing_key, issuer=settings.jwt_issuer, clock=clock), clock,
            base_url=settings.cdn_base_url or "/media", token_ttl=settings.media_token_ttl,
        )
        videos = Videos(
            storage=storage, inspector=PyAVMediaInspector(), clock=clock, ids=ids, links=links,
            max_upload_bytes=settings.max_upload_bytes, env=settings.eventstore_env("videos"),
        )
        closers.append(videos.close)
        uploads = ResumableUploads(
            videos=videos, storage=storage, clock=clock, ids=ids, env=settings.eventstore_env("uploads"),
        )
        closers.append(uploads.close)
        relay = OutboxRelay(videos, _relay_tracking(settings), publisher, topics=settings.topics(),
                            metrics=PrometheusMetrics())
        janitor = Janitor(videos, _tracking_recorder("janitor", settings.eventstore_env("janitor")), storage)
        catalog = build_catalog(settings)
        closers.append(catalog.close)
        listing = VideoListing(catalog, links)
        sweep = Sweep(videos, catalog, clock, lease=timedelta(seconds=settings.processing_lease_s),
                      retry_delays=settings.retry_delays(), metrics=PrometheusMetrics())
        listing.liked_among = catalog.liked_among
        videos.figures = AudienceFigures(catalog)
        engagement = Engagement(videos, catalog, catalog, listing, clock, ids)
        health_checks["read_model"] = _read_model_check(catalog)
        playback = PlaybackCache(videos, _cache(settings, redis_client))
        videos.on_change.append(playback.invalidate)
        streaming = Streaming(playback, links, redirects=settings.stream_redirects)
        if webhook_store is None:
            webhook_store = build_webhook_store(settings)
            closers.append(webhook_store.close)
        webhooks = Webhooks(
            webhook_store, webhook_secret_box(settings), clock, ids,
            allow_http=settings.webhooks_allow_http, allow_private=settings.webhooks_allow_private,
        )
        view_buffer = ViewBuffer(publisher, topic=settings.topic_video_viewed, capacity=settings.view_buffer_size,
                                 metrics=PrometheusViewMetrics())
        beacon = ViewBeacon(playback, _view_dedup(settings, redis_client), view_buffer, clock, ids,
                            window_s=settings.view_window_s)
    return Vodhub(
        settings=settings, accounts=accounts, videos=videos, streaming=streaming, storage=storage,
        playback=playback, publisher=publisher, relay=relay, janitor=janitor, catalog=catalog, listing=listing,
        sweep=sweep,
        uploads=uploads, webhooks=webhooks, health_checks=health_checks, engagement=engagement, beacon=beacon,
        view_buffer=view_buffer,
        closers=closers, rate_limiter=_rate_limiter(settings), rate_limits=_rate_limits(settings),
    )


def _object_storage(settings: Settings) -> ObjectStorage:
    if settings.s3_endpoint:
        from adapters.outbound.object_storage import S3ObjectStorage

        return S3ObjectStorage(
            settings.s3_endpoint, settings.s3_bucket, settings.s3_region,
            settings.s3_access_key_id, settings.s3_secret_access_key, prefix=settings.s3_prefix,
        )
    from adapters.outbound.object_storage import LocalObjectStorage

    return LocalObjectStorage(settings.data_dir / "objects")


def _publisher(settings: Settings) -> EventPublisher:
    if settings.kafka_bootstrap_servers:
        from adapters.outbound.kafka import KafkaEventPublisher

        return KafkaEventPublisher(settings.kafka_bootstrap_servers)
    from adapters.outbound.in_process_bus import InProcessEventBus

    return InProcessEventBus()


def build_webhook_store(settings: Settings) -> Any:
    """Endpoints and the delivery queue: in the PostgreSQL database when one is set, else a SQLite file."""
    from adapters.outbound.sql_webhooks import SqlWebhookStore

    if settings.database_url:
        store = SqlWebhookStore(settings.database_url)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = SqlWebhookStore(f"sqlite:///{settings.data_dir / 'webhooks.sqlite3'}")
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


def _relay_tracking(settings: Settings) -> TrackingRecorder:
    """With Kafka the relay's position is durable. The in-process bus forgets its messages on
    restart, so the relay starts from the beginning each time and the idempotent worker
    skips what it has done already: nothing uploaded is ever left unprocessed."""
    if settings.kafka_bootstrap_servers:
        return _tracking_recorder("relay", settings.eventstore_env("relay"))
    return POPOTrackingRecorder()


def _read_model_check(catalog: SqlCatalog) -> HealthCheck:
    async def check() -> None:
        await to_thread.run_sync(catalog.list_public, abandon_on_cancel=True)

    return check


def _tracking_recorder(follower: str, env: dict[str, str]) -> TrackingRecorder:
    """Where a log follower remembers how far it got (its own table or file)."""
    return InfrastructureFactory.construct(Environment(name=follower, env=env)).tracking_recorder()


def _signing_key(settings: Settings) -> Any:
    if settings.jwt_private_key:
        return load_private_key(settings.jwt_private_key)
    return load_or_create_key(settings.data_dir / "jwt-ed25519.pem")


def _redis_client(
    settings: Settings, health_checks: dict[str, HealthCheck], closers: list[Callable[[], None]]
) -> Any:
    if not settings.redis_url:
        return None
    from adapters.outbound.redis_client import connect

    client = connect(settings.redis_url)
    closers.append(client.close)

    async def ping_redis() -> None:
        await to_thread.run_sync(client.ping)

    health_checks["redis"] = ping_redis
    return client


def _token_stores(settings: Settings, client: Any, clock: Clock) -> tuple[RevocationList, RefreshTokenStore]:
    if client is None:
        return InMemoryRevocationList(clock), InMemoryRefreshTokenStore(clock)
    from adapters.outbound.redis_tokens import RedisRefreshTokenStore, RedisRevocationList

    prefix = settings.redis_prefix
    return RedisRevocationList(client, clock, prefix), RedisRefreshTokenStore(client, clock, prefix)


def _cache(settings: Settings, client: Any) -> Cache:
    if client is None:
        return InMemoryCache()
    from adapters.outbound.cache import RedisCache

    return RedisCache(client, settings.redis_prefix)


def _view_dedup(settings: Settings, client: Any) -> ViewDedup:
    from adapters.outbound.view_dedup import InMemoryViewDedup, RedisViewDedup

    if client is None:
        return InMemoryViewDedup()
    return RedisViewDedup(client, settings.redis_prefix)


def _eventstore_check(application: Accounts) -> HealthCheck:
    async def check() -> None:
        await to_thread.run_sync(lambda: application.recorder.max_notification_id(), abandon_on_cancel=True)

    return check


def _rate_limiter(settings: Settings) -> RateLimiter:
    """Shared by all replicas in Redis; per process without Redis, or while it does not answer."""
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.redis_prefix)
    return InMemoryRateLimiter()


def _rate_limits(settings: Settings) -> RateLimits:
    try:
        return parse_rate_limits(settings.rate_limits)
    except ValueError as error:
        raise SystemExit(f"vodhub: bad setting: VODHUB_RATE_LIMITS: {error}") from None
