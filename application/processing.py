"""Processing: plan a video's work as segment tasks, run any task on any worker, publish
renditions as they complete, and assemble the rest once every task is done.

Flow (PROCESSING.md): VideoUploaded → plan (ProcessingPlanned on the video, Planned on its
TranscodeJob) → the relay publishes the tasks from the recorded plan → workers run them
and record TaskDone exactly once → the last task of a rung writes the manifests that list
it and records RenditionPublished (playable after the first) → the last task of all
assembles the progressive MP4 and the storyboard and records Processed.

Every step is idempotent and re-checked on redelivery: a task already done is skipped, but
what its completion unlocked (publishing, assembly) is done again if a crash cut it short.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import anyio
import msgspec
from anyio import to_thread
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application import manifests
from application.errors import NotFound, OutcomeNotRecorded, Unavailable, UnsupportedMedia
from application.media_layout import media_type, plan_folder, plan_object
from application.ports import ObjectStorage, PipelineMetrics, Transcoder
from application.videos import Videos
from domain.errors import Conflict, ValidationError
from domain.ladder import LADDER, Rung
from domain.media import Manifests, Rendition, Thumbnails
from domain.transcode_jobs import (
    AUDIO,
    CHUNK_SEGMENTS,
    FIRST_CHUNK_SEGMENTS,
    LOW,
    SPREAD_CHUNKS,
    TranscodeJob,
    job_id,
    make_plan,
    parse_task_key,
    task_key,
)
from domain.videos import PROCESSING, READY, Video

logger = logging.getLogger("vodhub.processing")
SAVE_ATTEMPTS = 8
NO_ATTEMPT = 0  # attempts count from 1: a planner that failed before starting one owns none
KEPT_SOURCES = 3  # originals a worker keeps on disk for the next tasks of the same videos
T = TypeVar("T")


class SourceCache:
    """Originals downloaded once per worker and reused by the next tasks of the same video."""

    def __init__(self, storage: ObjectStorage, work_dir: Path | None) -> None:
        self.storage = storage
        self.folder = Path(work_dir or tempfile.gettempdir()) / f"vodhub-sources-{os.getpid()}"

    async def path(self, video: Video) -> Path:
        target = self.folder / f"{video.id}{Path(video.source_key).suffix}"
        if target.exists():
            target.touch()  # evicted by last use
            return target
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f"{target.name}.{uuid.uuid4().hex}.part"  # concurrent tasks each download their own
        try:
            await self.storage.download(video.source_key, partial)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        self._evict(keep=target)
        return target

    def _evict(self, keep: Path) -> None:
        others = sorted((p for p in self.folder.iterdir() if p != keep and not p.name.endswith(".part")),
                        key=lambda p: p.stat().st_mtime)
        for stale in others[: max(0, len(others) - (KEPT_SOURCES - 1))]:
            stale.unlink(missing_ok=True)

    def forget(self, video_id: UUID) -> None:
        for path in self.folder.glob(f"{video_id}*") if self.folder.exists() else ():
            path.unlink(missing_ok=True)


class VideoProcessor:
    def __init__(
        self, videos: Videos, transcoder: Transcoder, storage: ObjectStorage, metrics: PipelineMetrics,
        work_dir: Path | None = None, ladder: Sequence[Rung] = LADDER,
        chunking: tuple[int, int, int] = (FIRST_CHUNK_SEGMENTS, CHUNK_SEGMENTS, SPREAD_CHUNKS),
    ) -> None:
        self.videos = videos
        self.transcoder = transcoder
        self.storage = storage
        self.work_dir = work_dir
        self.metrics = metrics
        self.ladder = tuple(ladder)
        self.chunking = chunking
        self.sources = SourceCache(storage, work_dir)

    # --- planning -------------------------------------------------------------------------

    async def plan(self, video_id: UUID, *, final_attempt: bool = True) -> str:
        """Plan a newly uploaded video: probe and index the source, record the plan. Nothing is
        encoded here; the tasks go out through the outbox."""
        started: list[int] = []  # the attempt this call begins: a failure is recorded against it alone
        return await self._outcome(video_id, final_attempt, lambda: self._plan(video_id, started),
                                   attempt=lambda: started[0] if started else NO_ATTEMPT)

    async def _plan(self, video_id: UUID, started: list[int]) -> str:
        video = await to_thread.run_sync(self._start, video_id)
        if video is None:
            return "skipped: planned already, processed, deleted or unknown"
        started.append(video.attempts)
        source = await self.sources.path(video)
        index = await to_thread.run_sync(self.transcoder.index, source, video.source_container)
        info = index.info
        rungs = self.transcoder.rung_sizes(info.width, info.height, video.rungs_for(info.width, info.height, self.ladder))
        first, size, spread = self.chunking
        plan = make_plan(
            time_base=index.time_base, frame_pts=index.frame_pts, keyframe_pts=index.keyframe_pts, end_pts=index.end_pts,
            frame_rate=_frame_rate(info.frame_rate), width=info.width, height=info.height, rotation=info.rotation,
            has_audio=info.has_audio, rungs=rungs, first_chunk=first, chunk_size=size, spread=spread,
        )
        plan["container"] = video.source_container  # every task opens the source with the vetted demuxer
        if index.times_in_decode_order:
            plan["times_in_decode_order"] = True
        plan_id = uuid.uuid4()

        def record(latest: Video) -> list[Video | TranscodeJob]:
            latest.plan_processing(plan_id, duration_s=plan["duration_s"], width=info.width, height=info.height)
            return [latest, TranscodeJob.create(latest.id, plan_id, latest.attempts, plan)]

        if not await to_thread.run_sync(self._save_video, video, record):
            return "skipped: deleted or taken over while it was planned"
        return f"planned: {len(plan['chunks'])} chunks, {len(rungs)} rungs"

    def _start(self, video_id: UUID) -> Video | None:
        """Record the start of an attempt; None when there is nothing (left) to plan."""
        for _ in range(SAVE_ATTEMPTS):
            try:
                video: object = self.videos.repository.get(video_id)
            except AggregateNotFoundError:
                return None
            if not isinstance(video, Video) or not video.needs_processing or video.has_plan:
                return None
            video.start_processing()  # a video left `processing` unplanned by a dead worker is taken over
            try:
                self.videos.save(video)
                return video
            except IntegrityError:
                continue
        raise Unavailable(f"video {video_id} keeps changing; planning will be retried")

    async def process(self, video_id: UUID, *, final_attempt: bool = True) -> str:
        """Plan, then run every task here, in the order the relay would publish them: the whole
        flow in one caller (tests and the one-worker reference of the benchmark)."""
        outcome = await self.plan(video_id, final_attempt=final_attempt)
        video = await to_thread.run_sync(self.videos.get_aggregate, video_id)
        if video.plan_id is None or not outcome.startswith("planned"):
            return outcome
        job = await to_thread.run_sync(self._job, job_id(video_id, video.plan_id))
        for key in job.first_tasks() + job.later_tasks():
            pass_name, chunk = parse_task_key(key)
            outcome = await self.run_task(video_id, video.plan_id, pass_name, chunk, final_attempt=final_attempt)
            if outcome.startswith(("failed", "skipped: deleted")):
                return outcome
        latest = await to_thread.run_sync(self.videos.get_aggregate, video_id)
        return "ready" if latest.status == READY else outcome

    # --- tasks ------------------------------------------------------------------------------

    async def run_task(self, video_id: UUID, plan_id: UUID, pass_name: str, chunk: int, *, final_attempt: bool = True) -> str:
        """Run one task unless it is done; then do whatever its completion unlocked."""
        return await self._outcome(video_id, final_attempt, lambda: self._run_task(video_id, plan_id, pass_name, chunk),
                                   plan_id=plan_id)

    async def _run_task(self, video_id: UUID, plan_id: UUID, pass_name: str, chunk: int) -> str:
        video, job = await to_thread.run_sync(self._current, video_id, plan_id)
        if video is None or job is None:
            return "skipped: deleted, finished, or superseded by another plan"
        if task_key(pass_name, chunk) not in job.tasks(pass_name):
            raise ValidationError("task", f"{pass_name}:{chunk} is not a task of plan {plan_id}")
        outcome = "skipped: done already"
        if not job.is_done(pass_name, chunk):
            result = await self._encode(video, job, pass_name, chunk)
            if result is not None:
                job = await to_thread.run_sync(self._record_task, job.id, pass_name, chunk, result)
                outcome = f"done {pass_name}:{chunk}"
            else:
                outcome = "skipped: done elsewhere meanwhile, or no longer wanted"
                job = await to_thread.run_sync(self._job, job.id)
        await self._advance(video_id, job)
        return outcome

    def _current(self, video_id: UUID, plan_id: UUID) -> tuple[Video | None, TranscodeJob | None]:
        try:
            video = self.videos.get_aggregate(video_id)
        except NotFound:
            return None, None  # an outage is no reason to drop the task: that propagates
        if video.deleted or video.status not in (PROCESSING, READY) or video.plan_id != plan_id:
            return None, None
        return video, self._job(job_id(video_id, plan_id))

    def _job(self, id: UUID) -> TranscodeJob:
        job: TranscodeJob = self.videos.repository.get(id)
        return job

    async def _encode(self, video: Video, job: TranscodeJob, pass_name: str, chunk: int) -> dict[str, Any] | None:
        source = await self.sources.path(video)
        output_dir = Path(tempfile.mkdtemp(prefix=f"vodhub-{video.id}-", dir=self.work_dir))
        try:
            started = time.monotonic()
            output = await to_thread.run_sync(self.transcoder.encode, source, job.plan, pass_name, chunk, output_dir)
            for rung in output.result.get("tracks", {}):
                self.metrics.transcode_finished(rung, time.monotonic() - started)
            # Another worker may have run it meanwhile (a rebalance): never rewrite segments
            # that may already be served as immutable.
            latest = await to_thread.run_sync(self._job, job.id)
            if latest.is_done(pass_name, chunk):
                return None
            await self._upload(video.id, job.plan_id, output_dir, output.files)
            if await self._remove_if_unwanted(video.id, job.plan_id):
                return None
            return output.result
        finally:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(shutil.rmtree, output_dir, True)

    async def _upload(self, video_id: UUID, plan_id: UUID, folder: Path, files: Sequence[str]) -> None:
        for relative in files:
            await self.storage.put_file(plan_object(video_id, plan_id, relative), folder / relative, media_type(relative))

    def _record_task(self, id: UUID, pass_name: str, chunk: int, result: dict[str, Any]) -> TranscodeJob:
        """TaskDone exactly once: concurrent completions by other workers conflict on the job's
        version, and are reloaded and retried."""
        for _ in range(SAVE_ATTEMPTS):
            job = self._job(id)
            job.task_done(pass_name, chunk, result)  # Conflict: a codec configuration mismatch
            try:
                self.videos.save(job)
                return job
            except IntegrityError:
                continue
        raise Unavailable(f"job {id} keeps changing; the task will be retried")

    # --- what completions unlock -------------------------------------------------------------

    async def _advance(self, video_id: UUID, job: TranscodeJob) -> None:
        video = await to_thread.run_sync(self.videos.get_aggregate, video_id)
        if video.deleted:
            await self._remove_if_unwanted(video_id, job.plan_id)
            return
        if video.status != PROCESSING or video.plan_id != job.plan_id:
            return
        published = [r.name for r in video.renditions]
        while (complete := job.complete_rungs()) and complete != published:
            await self._publish(video, job, complete)
            published = complete
            # Another worker may have completed more meanwhile, and our manifests may have
            # landed after its: read the job again, and write again if it grew.
            job = await to_thread.run_sync(self._job, job.id)
        if job.finished:
            await self._assemble(video, job)

    async def _publish(self, video: Video, job: TranscodeJob, complete: list[str]) -> None:
        """Write the manifests that list the complete rungs (after all their segments exist),
        then record that they are streamable."""
        folder = plan_folder(video.id, job.plan_id)
        written = manifests.write_all(job, complete, finished=job.finished)
        for relative, text in written.items():
            await self.storage.put_bytes(f"{folder}/{relative}", text.encode(), media_type(relative))
        by_name = {rung["name"]: rung for rung in job.plan["rungs"]}
        renditions = [
            Rendition(name=name, width=by_name[name]["width"], height=by_name[name]["height"],
                      bitrate=by_name[name]["bitrate"], hls=f"{folder}/{manifests.CMAF}/{manifests.rung_master_name(name)}")
            for name in complete
        ]
        cmaf = f"{folder}/{manifests.CMAF}"
        links = Manifests(hls=f"{cmaf}/{manifests.HLS_MASTER}", dash=f"{cmaf}/{manifests.DASH_MPD}")
        thumbnails = Thumbnails(poster=f"{folder}/thumbnails/poster.jpg")

        first = False

        def publish(latest: Video) -> list[Video]:
            nonlocal first
            first = not latest.renditions  # the attempt's first rendition: the video becomes playable
            latest.publish_renditions(job.plan_id, renditions, links, thumbnails)
            return [latest]

        if not await to_thread.run_sync(self._save_video, video, publish):
            await self._remove_if_unwanted(video.id, job.plan_id)
        elif first:
            self._reached("playable", video)

    async def _assemble(self, video: Video, job: TranscodeJob) -> None:
        folder = plan_folder(video.id, job.plan_id)
        work = Path(tempfile.mkdtemp(prefix=f"vodhub-{video.id}-assembly-", dir=self.work_dir))
        try:
            names = [*job.rung_names, *([AUDIO] if job.has_audio else [])]
            tracks = {name: {"segments": job.track_segments(name)} for name in names}
            needed = _assembly_inputs(job)
            for name in needed:
                for relative in [f"{manifests.CMAF}/{name}/init.mp4"] + [
                    f"{manifests.CMAF}/{name}/{segment['index']:05d}.m4s" for segment in tracks[name]["segments"]
                ]:
                    (work / relative).parent.mkdir(parents=True, exist_ok=True)
                    await self.storage.download(f"{folder}/{relative}", work / relative)
            output_dir = work / "out"
            output_dir.mkdir()
            output = await to_thread.run_sync(self.transcoder.assemble, work / manifests.CMAF, job.plan, tracks, output_dir)
            await self._upload(video.id, job.plan_id, output_dir, output.files)
        finally:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(shutil.rmtree, work, True)
        by_name = {rung["name"]: rung for rung in job.plan["rungs"]}
        first = by_name[job.rung_names[0]]
        mp4 = {"name": _progressive_rung(job), "key": f"{folder}/{output.progressive}"}

        def processed(latest: Video) -> list[Video]:
            renditions = latest.renditions or [Rendition(
                name=first["name"], width=first["width"], height=first["height"], bitrate=first["bitrate"])]
            latest.record_processed(
                duration_s=job.plan["duration_s"], width=job.plan["width"], height=job.plan["height"],
                renditions=[msgspec.structs.replace(r, mp4=mp4["key"]) if r.name == mp4["name"] else r
                            for r in renditions],
                manifests=latest.manifests,
                thumbnails=Thumbnails(poster=f"{folder}/thumbnails/poster.jpg", sprite=f"{folder}/thumbnails/sprite.jpg",
                                      storyboard=f"{folder}/thumbnails/storyboard.vtt"),
                plan_id=job.plan_id,
            )
            return [latest]

        if await to_thread.run_sync(self._save_video, video, processed):
            self.metrics.processing_outcome("ready")
            self._reached("ready", video)
            self.sources.forget(video.id)
        else:
            await self._remove_if_unwanted(video.id, job.plan_id)

    def _reached(self, milestone: str, video: Video) -> None:
        """Recorded by the worker whose save made it so: once per video and attempt."""
        self.metrics.video_reached(milestone, (self.videos.clock.now() - video.created_on).total_seconds())

    async def _remove_if_unwanted(self, video_id: UUID, plan_id: UUID) -> bool:
        """After writing a plan's objects: if the video was deleted, or the plan failed, was
        abandoned or superseded meanwhile, the janitor may have swept before they landed and
        nothing will ever serve them, so remove them here (all of a deleted video's). True if so."""
        latest = await to_thread.run_sync(self.videos.get_aggregate, video_id)
        if latest.deleted:
            prefixes = [f"processed/{video_id}", f"thumbnails/{video_id}"]
        elif latest.plan_id != plan_id or latest.status not in (PROCESSING, READY):
            prefixes = [plan_folder(video_id, plan_id)]
        else:
            return False
        for prefix in prefixes:
            await self.storage.delete_prefix(prefix)
        return True

    # --- recording outcomes ------------------------------------------------------------------

    def _save_video(self, attempt: Video, change: Callable[[Video], Sequence[Video | TranscodeJob]]) -> bool:
        """Apply a change to the latest version of the video. Edits saved meanwhile (title,
        tags…) are no reason to lose work, so a conflict reloads and retries; only deletion,
        another attempt, or a state the change no longer fits (already published, already
        processed) wins. False when the change was dropped."""
        for _ in range(SAVE_ATTEMPTS):
            latest = self.videos.get_aggregate(attempt.id)
            if latest.deleted or latest.status != PROCESSING or latest.attempts != attempt.attempts:
                return False
            try:
                aggregates = change(latest)
            except Conflict:
                return False
            try:
                self.videos.save(*aggregates)
                return True
            except IntegrityError:
                continue
        raise Unavailable(f"video {attempt.id} keeps changing; the outcome will be recorded on a retry")

    async def _outcome(
        self, video_id: UUID, final_attempt: bool, step: Callable[[], Awaitable[str]], plan_id: UUID | None = None,
        attempt: Callable[[], int] | None = None,
    ) -> str:
        """Run a step; a permanent fault fails the video with a readable reason, a transient one
        propagates for a retry and, on the final attempt, is recorded as a retryable failure.
        The failure is the step's attempt's: the plan's (plan_id), or the one `attempt` names."""
        try:
            outcome = await step()
        except ValidationError:
            raise  # a message that can never be handled: the caller dead-letters it
        except (UnsupportedMedia, Conflict) as error:
            await self._record_or_hold(video_id, str(error), False, plan_id, final_attempt, attempt)
            self.metrics.processing_outcome("failed")
            return f"failed: {error}"
        except Exception as error:
            self.metrics.processing_outcome("retried" if not final_attempt else "failed")
            if final_attempt:
                await self._record_or_hold(video_id, f"processing kept failing: {error}", True, plan_id, final_attempt, attempt)
            raise
        self.metrics.processing_outcome(outcome.split()[0].rstrip(":"))
        return outcome

    async def _record_or_hold(
        self, video_id: UUID, reason: str, retryable: bool, plan_id: UUID | None, final_attempt: bool,
        attempt: Callable[[], int] | None = None,
    ) -> None:
        """Record a failure; if even that fails on the final attempt, say so, so the message is
        neither dead-lettered nor committed (it would leave the video stuck)."""
        try:
            await self._record_failure(video_id, reason, retryable=retryable, plan_id=plan_id,
                                       attempt=attempt() if attempt else None)
        except Exception as unrecorded:
            if final_attempt:
                raise OutcomeNotRecorded(f"{reason}; recording it failed too: {unrecorded}") from unrecorded
            raise

    async def _record_failure(
        self, video_id: UUID, reason: str, retryable: bool, plan_id: UUID | None = None, attempt: int | None = None,
    ) -> None:
        try:
            video = await to_thread.run_sync(self.videos.get_aggregate, video_id)
        except NotFound:
            return

        def fail(latest: Video) -> list[Video]:
            latest.record_failure(reason, retryable=retryable, plan_id=plan_id, attempt=attempt)
            return [latest]

        if not await to_thread.run_sync(self._save_video, video, fail):
            logger.info("video %s was deleted or taken over meanwhile; its failure is not recorded", video_id)


def _assembly_inputs(job: TranscodeJob) -> list[str]:
    """The rungs (and audio) the assembly reads: the progressive one and the lowest."""
    return sorted({_progressive_rung(job), job.plan["rungs"][0]["name"], *([AUDIO] if job.has_audio else [])})


def _progressive_rung(job: TranscodeJob) -> str:
    """The rung the progressive MP4 is remuxed from (the assembly picks it the same way)."""
    from domain.ladder import progressive_rung

    rungs = job.plan["rungs"]
    return progressive_rung(tuple(Rung(r["name"], r.get("target", r["height"]), r["bitrate"]) for r in rungs)).name


def _frame_rate(rate: float) -> Fraction:
    return Fraction(rate).limit_denominator(1001)


__all__ = ["LOW", "VideoProcessor", "plan_folder"]
