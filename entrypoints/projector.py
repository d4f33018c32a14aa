"""The projector process: follow the videos' and accounts' logs into the catalog read model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from uuid import UUID

import anyio
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder

from adapters.inbound.tracing import trace_projection
from adapters.outbound import tracing
from adapters.outbound.metrics import watch_unfinished_videos
from adapters.outbound.sql_catalog import SqlCatalog
from application.catalog import CatalogRecorder
from application.playback import forget_video
from application.projections import CatalogFollower, CatalogProjection
from application.videos import register_media_transcodings
from entrypoints.schema_lock import schema_creation_lock
from entrypoints.settings import Settings
from entrypoints.shutdown import run_until_terminated

logger = logging.getLogger("vodhub.projector")


class VideosLog(Application):
    """The videos application's notification log, read by the projector."""

    name = "videos"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_media_transcodings(transcoder)


class AccountsLog(Application):
    """The accounts application's notification log, read by the projector."""

    name = "accounts"


def catalog_follower(
    catalog: CatalogRecorder, source: Application, on_video_changed: Callable[[UUID], None] | None = None,
) -> CatalogFollower:
    """Project one log into the catalog, from where the catalog last got to in it."""
    projection = CatalogProjection(catalog, on_video_changed)
    if tracing.enabled():
        trace_projection(projection, "project")
    return CatalogFollower(source, projection)


def build_catalog(settings: Settings) -> SqlCatalog:
    """The catalog read model: in the PostgreSQL database when one is set, else a SQLite file."""
    if settings.database_url:
        catalog = SqlCatalog(settings.database_url, pool_size=settings.postgres_pool_size,
                             max_overflow=settings.postgres_max_overflow)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        catalog = SqlCatalog(f"sqlite:///{settings.data_dir / 'catalog.sqlite3'}")
    if settings.creates_tables():
        catalog.create_tables()
    return catalog


def run_projector(settings: Settings, rebuild: bool = False) -> None:
    """Keep the catalog up to date until SIGTERM; `rebuild` first empties it (tracking
    included) so every event is projected again from the start of each log."""
    with schema_creation_lock(settings.database_url):
        catalog = build_catalog(settings)
    if rebuild:
        logger.info("projector: rebuilding the catalog from the start of the logs")
        catalog.drop_tables()
        catalog.create_tables()
    with ExitStack() as stack:
        stack.callback(catalog.close)
        # The read model knows which videos wait too long: the alerts on stuck processing read it here.
        stack.callback(watch_unfinished_videos(catalog.unfinished))
        forget = _cache_invalidation(settings, stack)
        with schema_creation_lock(settings.database_url):
            logs = [stack.enter_context(log(env=settings.eventstore_env(log.name))) for log in (VideosLog, AccountsLog)]
        followers = [catalog_follower(catalog, log, forget) for log in logs]
        logger.info("projector: following %s", ", ".join(log.name for log in logs))
        # Each stops after the event in hand (one transaction with its tracking).
        anyio.run(partial(run_until_terminated, [partial(_follow, follower) for follower in followers],
                          grace_s=settings.shutdown_grace_s, name="projector"))


async def _follow(follower: CatalogFollower, stop: anyio.Event) -> None:
    await follower.run(stop=stop)


def _cache_invalidation(settings: Settings, stack: ExitStack) -> Callable[[UUID], None] | None:
    """The api replicas cache playback info in Redis; a change the worker made reaches the
    projector first, which drops the stale entry. Without Redis there is nothing shared."""
    if not settings.redis_url:
        return None
    from adapters.outbound.cache import RedisCache
    from adapters.outbound.redis_client import connect

    client = connect(settings.redis_url)
    stack.callback(client.close)
    return partial(forget_video, RedisCache(client, settings.redis_prefix))
