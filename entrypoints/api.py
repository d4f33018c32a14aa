"""The api process: the Litestar app on top of the bootstrapped use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import ExitStack, asynccontextmanager

import anyio
from litestar import Litestar

from adapters.inbound.http.app import create_app
from adapters.inbound.http.middleware import parse_cors_origins
from adapters.inbound.http.web import origin_of
from entrypoints.bootstrap import Vodhub
from entrypoints.projector import AccountsLog, VideosLog, catalog_runner

BackgroundTask = Callable[[], Awaitable[None]]


def embedded_background(vodhub: Vodhub) -> list[BackgroundTask]:
    """What `vodhub dev` runs beside the api instead of separate processes."""
    from entrypoints.notifier import notifier_tasks
    from entrypoints.worker import build_consumers

    async def project_catalog() -> None:
        with ExitStack() as runners:
            for log in (VideosLog, AccountsLog):
                runners.enter_context(catalog_runner(
                    vodhub.catalog, log, vodhub.settings.eventstore_env(log.name), vodhub.playback.invalidate,
                ))
            await anyio.sleep_forever()

    from entrypoints.analytics import build_views_consumer

    async def sweep() -> None:
        await vodhub.sweep.run(vodhub.settings.sweep_interval_s)

    return [vodhub.relay.run, vodhub.janitor.run, sweep, *(runner.run for runner in build_consumers(vodhub)), project_catalog,
            *notifier_tasks(vodhub), build_views_consumer(vodhub.settings, vodhub.catalog, vodhub.publisher).run]


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
        max_request_bytes=vodhub.settings.max_request_bytes,
        upload_read_timeout_s=vodhub.settings.body_read_timeout_s, webhooks=vodhub.webhooks,
        engagement=vodhub.engagement, beacon=vodhub.beacon, media_origins=origin_of(vodhub.settings.cdn_base_url),
        lifespan=[run_background] if tasks else [],
    )
    app.on_shutdown.append(vodhub.close)
    return app
