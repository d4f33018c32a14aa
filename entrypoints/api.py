"""The api process: the Litestar app on top of the bootstrapped use cases."""

from __future__ import annotations

from litestar import Litestar

from adapters.inbound.http.app import create_app
from entrypoints.bootstrap import Vodhub


def build_api(vodhub: Vodhub) -> Litestar:
    app = create_app(accounts=vodhub.accounts, health_checks=vodhub.health_checks)
    app.on_shutdown.append(vodhub.close)
    return app
