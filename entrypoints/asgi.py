"""The api as an ASGI app factory, so that a server can start it in each worker process."""

from __future__ import annotations

from litestar import Litestar

from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings


def api() -> Litestar:
    """`vodhub api` in one worker process: its own connections, caches and background tasks."""
    from entrypoints.cli import configure_logging, freeze_startup_objects

    settings = Settings.from_env()
    configure_logging(settings)  # a fresh process: the parent's set-up is not inherited
    app = build_api(bootstrap(settings))
    freeze_startup_objects()
    return app
