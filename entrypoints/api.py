"""The api process: the Litestar app on top of the bootstrapped use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
from litestar import Litestar

from adapters.inbound.http.app import create_app
from adapters.inbound.http.media_delivery import MediaDelivery, accel_prefix
from adapters.inbound.http.middleware import parse_cors_origins
from adapters.inbound.http.middleware.state import TrustedProxies
from adapters.inbound.http.web import origin_of
from adapters.inbound.tracing import traced_asgi
from adapters.outbound import tracing
from adapters.outbound.sql_catalog import SqlCatalog
from entrypoints.bootstrap import Vodhub
from entrypoints.projector import catalog_follower
from entrypoints.settings import Settings

BackgroundTask = Callable[[], Coroutine[Any, Any, None]]


def embedded_background(vodhub: Vodhub) -> list[BackgroundTask]:
    """What `vodhub dev` runs beside the api instead of separate processes."""
    catalog = vodhub.catalog
    if not isinstance(catalog, SqlCatalog):  # what `vodhub dev` bootstraps: the projector and views write to it
        raise TypeError("the embedded background needs the SQL catalog")
    from entrypoints.notifier import notifier_tasks
    from entrypoints.worker import build_consumers

    async def project_catalog() -> None:
        async with anyio.create_task_group() as followers:
            for log in (vodhub.videos, vodhub.accounts):
                followers.start_soon(catalog_follower(catalog, log, vodhub.playback.invalidate).run)

    from entrypoints.analytics import build_views_consumer

    async def sweep() -> None:
        await vodhub.sweep.run(vodhub.settings.sweep_interval_s)

    return [vodhub.relay.run, vodhub.janitor.run, sweep, *(runner.run for runner in build_consumers(vodhub)), project_catalog,
            *notifier_tasks(vodhub), build_views_consumer(vodhub.settings, catalog, vodhub.publisher).run]


def build_api(vodhub: Vodhub, background: Sequence[BackgroundTask] = ()) -> Litestar:
    """The HTTP app; `background` tasks (the embedded relay and worker) live as long as it does."""

    # Views are published where someone counts them: to Kafka, or to the in-process bus of `vodhub
    # dev`. Otherwise they stay in the bounded buffer (and overflow into the dropped-views metric).
    view_buffer = vodhub.view_buffer if vodhub.settings.kafka_bootstrap_servers or background else None
    tasks = [*background, *([view_buffer.run] if view_buffer else [])]

    @asynccontextmanager
    async def run_background(_: Litestar) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            for task in tasks:
                group.start_soon(task)
            yield
            if view_buffer is not None:
                await view_buffer.flush(timeout_s=2.0)  # views counted but not yet published
            group.cancel_scope.cancel()

    app = create_app(
        accounts=vodhub.accounts, videos=vodhub.videos, streaming=vodhub.streaming, storage=vodhub.storage,
        listing=vodhub.listing, uploads=vodhub.uploads,
        health_checks=vodhub.health_checks, rate_limiter=vodhub.rate_limiter, rate_limits=vodhub.rate_limits,
        cors_origins=parse_cors_origins(vodhub.settings.cors_origins),
        trusted_proxies=TrustedProxies(vodhub.settings.trusted_proxy_networks()),
        media_delivery=_media_delivery(vodhub.settings),
        max_request_bytes=vodhub.settings.max_request_bytes, max_header_bytes=vodhub.settings.max_header_bytes,
        upload_read_timeout_s=vodhub.settings.body_read_timeout_s, webhooks=vodhub.webhooks,
        engagement=vodhub.engagement, beacon=vodhub.beacon, media_origins=origin_of(vodhub.settings.cdn_base_url),
        bulkheads=vodhub.bulkheads, status_feed=vodhub.status_feed, breaker_states=vodhub.breakers.states,
        lifespan=[run_background] if tasks else [],
    )
    app.on_shutdown.append(vodhub.close)
    if tracing.enabled():
        app.asgi_handler = traced_asgi(app.asgi_handler)
    return app


def _media_delivery(settings: Settings) -> MediaDelivery:
    if not settings.media_accel:
        return MediaDelivery(edge_max_age=settings.edge_max_age)
    prefix = accel_prefix(local=not settings.s3_endpoint, bucket=settings.s3_bucket, prefix=settings.s3_prefix)
    if not settings.s3_endpoint:
        return MediaDelivery(edge_max_age=settings.edge_max_age, accel_prefix=prefix)
    presign = None
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        from adapters.outbound.s3_url_signer import S3UrlSigner

        # Public answers are reused for the edge lifetime: their URLs must outlive it.
        signer = S3UrlSigner(settings.s3_endpoint, settings.s3_bucket, settings.s3_region, settings.s3_access_key_id,
                             settings.s3_secret_access_key, settings.s3_prefix, ttl_s=max(3600, 2 * settings.edge_max_age))
        presign = signer.signed_path
    return MediaDelivery(edge_max_age=settings.edge_max_age, accel_prefix=prefix,
                         s3_host=urlsplit(settings.s3_endpoint).netloc, presign=presign)
