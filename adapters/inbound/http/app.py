"""The Litestar application: routes, dependencies, error table, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from adapters.inbound.http.audience import AudienceController, CommentsController, HistoryController
from adapters.inbound.http.auth import AuthController, jwks
from adapters.inbound.http.dependencies import MediaSources
from adapters.inbound.http.health import HealthChecks, live, ready
from adapters.inbound.http.media_delivery import MEDIA_DELIVERY, MediaDelivery
from adapters.inbound.http.metrics import flush_request_metrics, metrics
from adapters.inbound.http.middleware import (
    RateLimiting,
    RateLimitMiddleware,
    configure_access_log,
    cors_config,
    observe_requests,
    principal_provider,
)
from adapters.inbound.http.middleware.state import TRUSTED_PROXIES, TrustedProxies
from adapters.inbound.http.openapi_problems import document_problems
from adapters.inbound.http.playback import StreamController, get_media, head_media
from adapters.inbound.http.problems import EXCEPTION_HANDLERS
from adapters.inbound.http.tus import TusController
from adapters.inbound.http.users import UsersController
from adapters.inbound.http.videos import MyVideosController, VideosController
from adapters.inbound.http.web import web_client_handlers
from adapters.inbound.http.webhooks import WebhooksController
from application.accounts import Accounts
from application.analytics import ViewBeacon
from application.bulkheads import Bulkheads
from application.engagement import Engagement
from application.listing import VideoListing
from application.ports import ObjectStorage
from application.rate_limits import RateLimiter, RateLimits
from application.resumable import ResumableUploads
from application.status_feed import StatusFeed
from application.streaming import Streaming
from application.videos import Videos
from application.webhooks import Webhooks


def _constant(value: object) -> Provide:
    async def provide() -> object:
        return value

    return Provide(provide, use_cache=True)


def _following(status_feed: StatusFeed) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The status feed's one follower of the log runs as long as the app."""

    @asynccontextmanager
    async def follow(_: Litestar) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(status_feed.run)
            yield
            group.cancel_scope.cancel()

    return follow


def _handlers_of(route_handlers: Sequence[object]) -> list[HTTPRouteHandler]:
    handlers: list[HTTPRouteHandler] = []
    for item in route_handlers:
        members = vars(item).values() if isinstance(item, type) else [item]
        handlers += [member for member in members if isinstance(member, HTTPRouteHandler)]
    return handlers


def create_app(
    *, accounts: Accounts, videos: Videos, listing: VideoListing, streaming: Streaming, storage: ObjectStorage,
    health_checks: HealthChecks, uploads: ResumableUploads | None = None, lifespan: Sequence = (),
    debug: bool = False, rate_limiter: RateLimiter | None = None, rate_limits: RateLimits | None = None,
    cors_origins: Sequence[str] = ("*",), max_request_bytes: int = 1024 * 1024,
    upload_read_timeout_s: float = 60.0, webhooks: Webhooks | None = None, engagement: Engagement | None = None,
    beacon: ViewBeacon | None = None, media_origins: Sequence[str] = (), bulkheads: Bulkheads | None = None,
    status_feed: StatusFeed | None = None, breaker_states: Callable[[], Mapping[str, str]] = dict,
    trusted_proxies: TrustedProxies | None = None, media_delivery: MediaDelivery | None = None, max_header_bytes: int = 16 * 1024,
) -> Litestar:
    """Build the HTTP app around ready-made use cases; no I/O happens here. Without a
    `rate_limiter` nothing is rate limited; an empty `cors_origins` turns CORS off. The web
    client's pages may load media and images from `media_origins` (a CDN) too. Only peers in
    `trusted_proxies` may name the client in X-Forwarded-For. `media_delivery`: the edge lifetime
    of public media and, behind the gateway, X-Accel-Redirect answers."""
    rate_limiting = RateLimiting(rate_limiter, rate_limits or RateLimits())
    media_delivery = media_delivery or MediaDelivery()
    bulkheads = bulkheads or Bulkheads()
    status_feed = status_feed or StatusFeed(videos, bulkheads.event_store)
    configure_access_log()
    openapi = OpenAPIConfig(
        title="vodhub",
        version="0.1.0",
        description="Video-on-demand backend: accounts, uploads, transcoding, streaming.",
        components=Components(
            security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
        ),
        security=[{"BearerToken": []}],
        path="/schema",
    )
    route_handlers: list[ControllerRouterHandler] = [
        AuthController, UsersController, VideosController, TusController, AudienceController, CommentsController,
        HistoryController, MyVideosController, jwks, live, ready, metrics, StreamController, get_media, head_media,
    ]
    if webhooks is not None:
        route_handlers.append(WebhooksController)
    document_problems(_handlers_of(route_handlers))
    app = Litestar(
        route_handlers=[*route_handlers, *web_client_handlers(media_origins)],
        dependencies={
            "accounts": _constant(accounts),
            "videos": _constant(videos),
            "listing": _constant(listing),
            "streaming": _constant(streaming),
            "storage": _constant(storage),
            "media": _constant(MediaSources(streaming, storage, media_delivery)),
            "uploads": _constant(uploads),
            "webhooks": _constant(webhooks),
            "engagement": _constant(engagement),
            "beacon": _constant(beacon),
            "health_checks": _constant(health_checks),
            "bulkheads": _constant(bulkheads),
            "status_feed": _constant(status_feed),
            "breaker_states": _constant(breaker_states),
            "principal": Provide(principal_provider(rate_limiting, accounts)),
        },
        middleware=[DefineMiddleware(RateLimitMiddleware, rate_limiting=rate_limiting)],
        on_shutdown=[rate_limiting.aclose, flush_request_metrics],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi,
        lifespan=[*lifespan, _following(status_feed)],
        debug=debug,
        # vodhub sets up logging itself (the cli: one stderr handler, secrets redacted). Litestar's
        # default would put a queue listener on the root logger at start-up: no redaction there,
        # and the lines still queued are lost when uvicorn ends the process by its signal.
        logging_config=None,
        request_max_body_size=max_request_bytes,  # uploads stream and have their own limit
        state=State({"upload_read_timeout_s": upload_read_timeout_s,
                     TRUSTED_PROXIES: trusted_proxies or TrustedProxies(),
                     MEDIA_DELIVERY: media_delivery}),
    )
    return observe_requests(app, cors=cors_config(cors_origins), max_header_bytes=max_header_bytes)
