"""The api as an ASGI app factory, so that a server can start it in each worker process."""

from __future__ import annotations

from litestar import Litestar

from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings


def api() -> Litestar:
    """`vodhub api` in one worker process: its own connections, caches and background tasks."""
    from entrypoints.cli import freeze_startup_objects

    app = build_api(bootstrap(Settings.from_env()))
    freeze_startup_objects()
    return app
