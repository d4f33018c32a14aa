"""The read model as the composition root wires it: one store queried by the listing, the
audience, the sweep and the alerts, and written by the projector and the analytics consumer."""

from __future__ import annotations

from typing import Protocol

from application.audience import AudienceReadModel
from application.catalog import VideoCatalog
from application.sweep import UnsettledVideos


class ReadModel(VideoCatalog, AudienceReadModel, UnsettledVideos, Protocol):
    """SqlCatalog, or InMemoryVideoCatalog when a test passes one to bootstrap()."""
