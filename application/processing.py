"""Processing: turn an uploaded original into the streaming ladder, exactly once per video."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import anyio
from anyio import to_thread
from eventsourcing.persistence import IntegrityError

from application.errors import Unavailable, UnsupportedMedia
from application.media_layout import MANIFEST_SUFFIXES, media_type, object_key
from application.ports import ObjectStorage, PipelineMetrics, TranscodeOutput, Transcoder
from application.videos import Videos
from domain.videos import PROCESSING, Video

logger = logging.getLogger("vodhub.processing")
SAVE_ATTEMPTS = 5



class _NoMetrics:
    def transcode_finished(self, rung: str, seconds: float) -> None:
        pass

    def processing_outcome(self, outcome: str) -> None:
        pass

    def relay_position(self, published: int, latest: int, log: str = "videos") -> None:
        pass


class VideoProcessor:
    def __init__(
        self, videos: Videos, transcoder: Transcoder, storage: ObjectStorage, work_dir: Path | None = None,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.videos = videos
        self.transcoder = transcoder
        self.storage = storage
        self.work_dir = work_dir
        self.metrics = metrics or _NoMetrics()

    async def process(self, video_id: UUID, *, final_attempt: bool = True) -> str:
        """Transcode the video unless it is already done; record Processed or ProcessingFailed.
        Transient faults propagate for a retry; on the final attempt they are recorded as a
        retryable failure first. Returns what happened, for logs."""
        try:
            outcome = await self._process(video_id, final_attempt)
        except Exception:
            self.metrics.processing_outcome("retried" if not final_attempt else "failed")
            raise
        self.metrics.processing_outcome(outcome.split(":")[0])
        return outcome

    async def _process(self, video_id: UUID, final_attempt: bool) -> str:
        video = await to_thread.run_sync(self._start, video_id)
        if video is None:
            return "skipped: already processed, deleted, unknown or taken by another worker"
        try:
            output = await self._transcode(video)
        except UnsupportedMedia as error:
            await self._record_failure(video, str(error), retryable=False)
            return f"failed: {error}"
        except Exception as error:
            if final_attempt:
                await self._record_failure(video, f"processing kept failing: {error}", retryable=True)
            raise
        if not await to_thread.run_sync(self._record, video, lambda latest: self._apply_success(latest, output)):
            await self._remove_outputs_if_deleted(video.id)
            return "skipped: deleted, or taken over by another worker, while it was processed"
        return "ready"

    async def _remove_outputs_if_deleted(self, video_id: UUID) -> None:
        """The janitor may have run before these files existed: remove them here."""
        latest = await to_thread.run_sync(self.videos.get_aggregate, video_id)
        if latest.deleted:
            for prefix in (f"processed/{video_id}", f"thumbnails/{video_id}"):
                await self.storage.delete_prefix(prefix)

    def _start(self, video_id: UUID) -> Video | None:
        """Record the start of an attempt; None when there is nothing (left) to do. A concurrent
        edit is retried; a concurrent start means another worker has it."""
        for _ in range(SAVE_ATTEMPTS):
            video = self.videos.repository.get(video_id)
            if not isinstance(video, Video) or not video.needs_processing:
                return None
            seen = video.attempts
            video.start_processing()
            try:
                self.videos.save(video)
                return video
            except IntegrityError:
                if self.videos.get_aggregate(video_id).attempts > seen:
                    return None
        raise Unavailable(f"video {video_id} keeps changing; processing will be retried")

    def _record(self, attempt: Video, apply: Callable[[Video], None]) -> bool:
        """Apply an outcome to the latest version of the video. Edits saved meanwhile (title,
        tags…) are no reason to lose minutes of transcoding, so a conflict reloads and retries;
        only deletion or another worker's newer attempt wins. False when the outcome was dropped."""
        for _ in range(SAVE_ATTEMPTS):
            latest = self.videos.get_aggregate(attempt.id)
            if latest.deleted or latest.status != PROCESSING or latest.attempts != attempt.attempts:
                return False
            apply(latest)
            try:
                self.videos.save(latest)
                return True
            except IntegrityError:
                continue
        raise Unavailable(f"video {attempt.id} keeps changing; its outcome will be recorded on a retry")

    async def _transcode(self, video: Video) -> TranscodeOutput:
        job_dir = Path(tempfile.mkdtemp(prefix=f"vodhub-{video.id}-", dir=self.work_dir))
        try:
            source = job_dir / ("source" + Path(video.source_key).suffix)
            await self.storage.download(video.source_key, source)
            output_dir = job_dir / "out"
            output = await to_thread.run_sync(self._transcode_file, video, source, output_dir)
            await self._upload_outputs(video.id, output_dir, output)
            return output
        finally:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(shutil.rmtree, job_dir, True)

    def _transcode_file(self, video: Video, source: Path, output_dir: Path) -> TranscodeOutput:
        info = self.transcoder.probe(source)
        rungs = video.rungs_for(info.width, info.height)
        started = time.monotonic()
        output = self.transcoder.transcode(source, output_dir, rungs)
        # The rungs are encoded side by side from one decode, so each took the whole pass.
        for rendition in output.renditions:
            self.metrics.transcode_finished(rendition.name, time.monotonic() - started)
        return output

    async def _upload_outputs(self, video_id: UUID, output_dir: Path, output: TranscodeOutput) -> None:
        # Segments first and manifests last, so a manifest never names a missing segment.
        ordered = sorted(output.files, key=lambda name: name.endswith(MANIFEST_SUFFIXES))
        for relative in ordered:
            await self.storage.put_file(object_key(video_id, relative), output_dir / relative, media_type(relative))

    @staticmethod
    def _apply_success(video: Video, output: TranscodeOutput) -> None:
        thumbnails = {"poster": output.poster, "sprite": output.sprite, "storyboard": output.storyboard}
        video.record_processed(
            duration_s=round(output.source.duration_s, 3), width=output.source.width,
            height=output.source.height,
            renditions=[
                {"name": r.name, "width": r.width, "height": r.height, "bitrate": r.bitrate}
                | ({"hls": object_key(video.id, r.hls)} if r.hls else {})
                for r in output.renditions
            ],
            manifests={
                "hls": object_key(video.id, output.hls_master), "dash": object_key(video.id, output.dash_manifest),
                "mp4": object_key(video.id, output.progressive),
            },
            thumbnails={name: object_key(video.id, path) for name, path in thumbnails.items() if path},
        )

    async def _record_failure(self, video: Video, reason: str, retryable: bool) -> None:
        def fail(latest: Video) -> None:
            latest.record_failure(reason, retryable=retryable)

        if not await to_thread.run_sync(self._record, video, fail):
            logger.info("video %s was deleted or taken over meanwhile; its failure is not recorded", video.id)
