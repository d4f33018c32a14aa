"""The sweep: nothing stays stuck. Every so often it looks at the videos still waiting for
their processing and re-drives whatever was left behind:

- a retryable failure, once its delay has passed (then, when the delays are used up, it is
  given up with a final reason);
- a planned attempt with no task recorded for longer than the lease: its missing tasks are
  published again, once; if that brings no progress either, the attempt is abandoned and
  the video planned again;
- an attempt not yet planned, or an upload nobody started, after the lease: taken over.

The rules are the aggregates' (Video.retry_automatically, Video.take_over,
TranscodeJob.redrive); the relay publishes what they record. The read model only narrows
down which videos to load: the event store decides."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import anyio
from anyio import to_thread
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.ports import Clock
from application.videos import Videos
from domain.transcode_jobs import TranscodeJob, job_id
from domain.videos import FAILED, PROCESSING, UPLOADED, Video

logger = logging.getLogger("vodhub.sweep")
SAVE_ATTEMPTS = 5
# Failed videos are looked at for this long after their failure (beyond the last delay), so a
# sweep that was down for a while still retries them, and old final failures are not reloaded.
FAILURE_HORIZON = timedelta(days=7)

RETRIED, GIVEN_UP, TASKS_REDRIVEN, ABANDONED, ANNOUNCED = (
    "retried", "given_up", "tasks_redriven", "abandoned", "announced_again")


class UnsettledVideos(Protocol):
    def unsettled_videos(self, *, waiting_before: datetime, failed_since: datetime) -> list[UUID]:
        """Videos uploaded or processing whose row last changed before `waiting_before`, and
        failed ones whose row changed since `failed_since`."""


class SweepMetrics(Protocol):
    def swept(self, action: str) -> None:
        """The sweep re-drove one video (action: retried, given_up, tasks_redriven, abandoned,
        announced_again)."""


class Sweep:
    def __init__(
        self, videos: Videos, unsettled: UnsettledVideos, clock: Clock, *, lease: timedelta,
        retry_delays: Sequence[timedelta], metrics: SweepMetrics | None = None,
    ) -> None:
        self.videos = videos
        self.unsettled = unsettled
        self.clock = clock
        self.lease = lease
        self.retry_delays = tuple(retry_delays)
        self.metrics = metrics

    def sweep_once(self) -> dict[UUID, str]:
        """Re-drive what is due now; returns what was done to which video."""
        now = self.clock.now()
        candidates = self.unsettled.unsettled_videos(
            waiting_before=now - self.lease,
            failed_since=now - max(self.retry_delays, default=timedelta(0)) - FAILURE_HORIZON,
        )
        done: dict[UUID, str] = {}
        for video_id in candidates:
            try:
                action = self.sweep_video(video_id)
            except Exception:  # one video's trouble must not stop the others' re-drive
                logger.exception("sweep: cannot re-drive video %s", video_id)
                continue
            if action is not None:
                done[video_id] = action
                logger.info("sweep: video %s %s", video_id, action.replace("_", " "))
                if self.metrics is not None:
                    self.metrics.swept(action)
        return done

    def sweep_video(self, video_id: UUID) -> str | None:
        for _ in range(SAVE_ATTEMPTS):
            try:
                video: object = self.videos.repository.get(video_id)
            except AggregateNotFoundError:
                return None
            if not isinstance(video, Video):
                return None
            decided = self._decide(video)
            if decided is None:
                return None
            action, changed = decided
            try:
                self.videos.save(*changed)
                return action
            except IntegrityError:
                continue  # it changed meanwhile (a worker moved on, an edit): look again
        return None

    def _decide(self, video: Video) -> tuple[str, list[Video] | list[TranscodeJob]] | None:
        now = self.clock.now()
        if video.status == FAILED:
            outcome = video.retry_automatically(now, self.retry_delays)
            return None if outcome is None else (RETRIED if outcome == "retried" else GIVEN_UP, [video])
        if video.status not in (UPLOADED, PROCESSING):
            return None
        job = self._job(video)
        job_progress = job.progressed_at if job is not None else None
        if not video.stalled(now, self.lease, job_progress):
            return None
        if job is not None and job.may_redrive:
            job.redrive(f"no task recorded for {int(self.lease.total_seconds())} s", at=now)
            return TASKS_REDRIVEN, [job]
        was_processing = video.status == PROCESSING
        video.take_over(now, self.lease, job_progress)
        return (ABANDONED if was_processing else ANNOUNCED), [video]

    def _job(self, video: Video) -> TranscodeJob | None:
        if not video.has_plan:
            return None
        assert video.plan_id is not None
        try:
            return self.videos.repository.get(job_id(video.id, video.plan_id))
        except AggregateNotFoundError:
            return None

    async def run(self, interval_s: float, stop: anyio.Event | None = None) -> None:
        """Sweep until cancelled, or until `stop` is set (after the sweep in hand); an outage
        only delays the next sweep."""
        stop = stop or anyio.Event()
        while not stop.is_set():
            try:
                await to_thread.run_sync(self.sweep_once)
            except Exception as error:
                logger.warning("sweep: %s; trying again in %.0f s", error, interval_s)
            with anyio.move_on_after(interval_s):
                await stop.wait()
