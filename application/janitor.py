"""The janitor: once a video is deleted, remove its objects (original, ladder, thumbnails)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import TrackingRecorder

from application.following import LogFollower
from application.ports import ObjectStorage
from domain.videos import Video

logger = logging.getLogger("vodhub.janitor")


class Janitor(LogFollower):
    def __init__(self, source: Application, tracking: TrackingRecorder, storage: ObjectStorage) -> None:
        super().__init__(source, tracking)
        self.storage = storage

    async def handle(self, events: Sequence[DomainEventProtocol]) -> None:
        for event in events:
            if isinstance(event, Video.Deleted):
                removed = 0
                for prefix in (f"raw/{event.originator_id}", f"processed/{event.originator_id}",
                               f"thumbnails/{event.originator_id}"):
                    removed += await self.storage.delete_prefix(prefix)
                logger.info("removed %d objects of deleted video %s", removed, event.originator_id)
