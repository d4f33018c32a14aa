"""The projector process: follow the videos' and accounts' logs into the catalog read model."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from functools import partial
from threading import Thread
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, ListenNotifySubscription, Subscription
from eventsourcing.projection import BaseProjectionRunner
from eventsourcing.sqlite import SQLiteApplicationRecorder

from adapters.inbound.tracing import trace_projection
from adapters.outbound import tracing
from adapters.outbound.metrics import watch_unfinished_videos
from adapters.outbound.sql_catalog import SqlCatalog
from application.playback import forget_video
from application.projections import CatalogProjection
from entrypoints.schema_lock import schema_creation_lock
from entrypoints.settings import Settings

logger = logging.getLogger("vodhub.projector")

POLL_INTERVAL = 0.2  # seconds between looks at a SQLite log, which cannot notify


class VideosLog(Application):
    """The videos application's notification log, read by the projector."""

    name = "videos"


class AccountsLog(Application):
    """The accounts application's notification log, read by the projector."""

    name = "accounts"


class PollingSubscription(ListenNotifySubscription[ApplicationRecorder]):
    """Looks for new notifications every POLL_INTERVAL instead of waiting to be notified."""

    def __init__(self, recorder: ApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._ticker = Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._has_been_stopped:
            time.sleep(POLL_INTERVAL)
            self._has_been_notified.set()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._ticker.join()


class PollingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite recorder refuses subscriptions; the projection runner needs one."""

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(self, gt=gt, topics=topics)


def subscribable(env: Mapping[str, str]) -> dict[str, str]:
    """The event store settings, with a recorder that can be subscribed to on SQLite too."""
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite":
        return dict(env)
    topic = f"{PollingSQLiteApplicationRecorder.__module__}:{PollingSQLiteApplicationRecorder.__qualname__}"
    return {**env, InfrastructureFactory.APPLICATION_RECORDER_TOPIC: topic}


def catalog_runner(
    catalog: SqlCatalog, log: type[Application], eventstore_env: Mapping[str, str],
    on_video_changed: Callable[[UUID], None] | None = None,
) -> BaseProjectionRunner[Application]:
    """Project one upstream log into the catalog, from where the catalog last got to. It starts
    at once, in threads; use it as a context manager to stop it."""
    projection = CatalogProjection(catalog, on_video_changed)
    if tracing.enabled():
        trace_projection(projection, "project")
    return BaseProjectionRunner(
        projection=projection, application_class=log, tracking_recorder=catalog,
        topics=(), env=subscribable(eventstore_env),
    )


def build_catalog(settings: Settings) -> SqlCatalog:
    """The catalog read model: in the PostgreSQL database when one is set, else a SQLite file."""
    if settings.database_url:
        catalog = SqlCatalog(settings.database_url, pool_size=settings.postgres_pool_size,
                             max_overflow=settings.postgres_max_overflow)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        catalog = SqlCatalog(f"sqlite:///{settings.data_dir / 'catalog.sqlite3'}")
    catalog.create_tables()
    return catalog


def run_projector(settings: Settings, rebuild: bool = False) -> None:
    """Keep the catalog up to date until interrupted; `rebuild` first empties it (tracking
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
            runners = [
                stack.enter_context(catalog_runner(catalog, log, settings.eventstore_env(log.name), forget))
                for log in (VideosLog, AccountsLog)
            ]
        logger.info("projector: following %s", ", ".join(runner.app_name for runner in runners))
        _block_until_one_stops(runners)


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


def _block_until_one_stops(runners: Sequence[BaseProjectionRunner[Application]]) -> None:
    """Re-raises a runner's error, so the process exits and its supervisor restarts it. Returns
    on SIGTERM; the runners then stop after the event in hand (each is one transaction)."""
    terminated = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    try:
        while not terminated.is_set():
            for runner in runners:
                runner.run_forever(timeout=0.5 / len(runners))
                if runner.is_interrupted.is_set():
                    return
        logger.info("projector: SIGTERM: stopping after the events in hand")
    finally:
        signal.signal(signal.SIGTERM, previous)
