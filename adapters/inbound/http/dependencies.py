"""Named dependencies the controllers declare (provided in app.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from litestar.di import NamedDependency

from application.accounts import Accounts, Principal

AccountsDep = NamedDependency[Accounts]
PrincipalDep = NamedDependency[Principal]
HealthChecksDep = NamedDependency[Mapping[str, Callable[[], Awaitable[None]]]]
