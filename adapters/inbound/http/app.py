"""The Litestar application: routes, dependencies, error table, OpenAPI."""

from __future__ import annotations

from collections.abc import Sequence

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from adapters.inbound.http.auth import AuthController, jwks, provide_principal
from adapters.inbound.http.media import get_media, head_media
from adapters.inbound.http.health import HealthChecks, live, ready
from adapters.inbound.http.problems import EXCEPTION_HANDLERS
from adapters.inbound.http.users import UsersController
from adapters.inbound.http.videos import VideosController
from application.accounts import Accounts
from application.listing import VideoListing
from application.ports import ObjectStorage
from application.streaming import Streaming
from application.videos import Videos


def _constant(value: object) -> Provide:
    async def provide() -> object:
        return value

    return Provide(provide, use_cache=True)


def create_app(
    *, accounts: Accounts, videos: Videos, listing: VideoListing, streaming: Streaming, storage: ObjectStorage,
    health_checks: HealthChecks, lifespan: Sequence = (),
    debug: bool = False,
) -> Litestar:
    """Build the HTTP app around ready-made use cases; no I/O happens here."""
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
    return Litestar(
        route_handlers=[AuthController, UsersController, VideosController, jwks, live, ready, get_media, head_media],
        dependencies={
            "accounts": _constant(accounts),
            "videos": _constant(videos),
            "listing": _constant(listing),
            "streaming": _constant(streaming),
            "storage": _constant(storage),
            "health_checks": _constant(health_checks),
            "principal": Provide(provide_principal),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi,
        lifespan=list(lifespan),
        debug=debug,
    )
