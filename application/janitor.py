"""The janitor: once a video is deleted, remove its objects (original, ladder, thumbnails);
once an attempt fails or is abandoned, remove its plan's objects (a retry works under a new
plan); once a plan is published as the video's ready presentation, remove any other plan's
objects (abandoned by an earlier attempt, or written before plans had their own prefix)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from anyio import to_thread
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import TrackingRecorder

from application.following import LogFollower
from application.media_layout import plan_folder
from application.ports import ObjectStorage
from domain.videos import Video

logger = logging.getLogger("vodhub.janitor")


class Janitor(LogFollower):
    def __init__(self, source: Application[UUID], tracking: TrackingRecorder, storage: ObjectStorage) -> None:
        super().__init__(source, tracking)
        self.storage = storage

    async def handle(self, events: Sequence[DomainEventProtocol[UUID]]) -> None:
        for event in events:
            if isinstance(event, Video.Deleted):
                removed = 0
                for prefix in (f"raw/{event.originator_id}", f"processed/{event.originator_id}",
                               f"thumbnails/{event.originator_id}"):
                    removed += await self.storage.delete_prefix(prefix)
                logger.info("removed %d objects of deleted video %s", removed, event.originator_id)
            elif isinstance(event, Video.Processed):
                await self._remove_other_plans(event)
            elif isinstance(event, (Video.ProcessingFailed, Video.ProcessingAbandoned)):
                await self._remove_ended_plan(event)

    async def _remove_ended_plan(self, event: DomainEventProtocol[UUID]) -> None:
        """Only the plan the video had just before the event: a later plan has its own prefix,
        so this never touches the work of a retry that started meanwhile."""
        before: Video = await to_thread.run_sync(
            lambda: self.source.repository.get(event.originator_id, version=event.originator_version - 1))
        if before.plan_id is not None:
            removed = await self.storage.delete_prefix(plan_folder(event.originator_id, before.plan_id))
            logger.info("removed %d objects of ended plan %s of video %s", removed, before.plan_id, event.originator_id)

    async def _remove_other_plans(self, event: Video.Processed) -> None:
        kept = event.manifests.hls or ""  # processed/{video}/{plan}/cmaf/master.m3u8
        folder = f"processed/{event.originator_id}/"
        if kept.count("/") < 3 or not kept.startswith(folder):
            return
        current = folder + kept.split("/")[2] + "/"
        stale = [key for key in await self.storage.list_keys(folder) if not key.startswith(current)]
        for key in stale:
            await self.storage.delete(key)
        if stale:
            logger.info("removed %d objects of abandoned plans of video %s", len(stale), event.originator_id)
