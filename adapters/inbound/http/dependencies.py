"""Named dependencies the controllers declare (provided in app.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from litestar.di import NamedDependency

from application.accounts import Accounts, Principal
from application.videos import Videos

AccountsDep = NamedDependency[Accounts]
PrincipalDep = NamedDependency[Principal]
VideosDep = NamedDependency[Videos]
HealthChecksDep = NamedDependency[Mapping[str, Callable[[], Awaitable[None]]]]
