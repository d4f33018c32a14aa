"""Processing as segment tasks: the plan of one video's work, and the job that tracks it.

A plan cuts the source timeline into segments (4 s of source time, each starting at a
frame) and groups consecutive segments into chunks. Every (pass, chunk) is a task any
worker can run on its own: pass `low` encodes the lowest rung, `audio` the whole audio
track once, `high` every other rung from one decode of the chunk. A short video has too few
chunks to keep a group of workers busy, so its top rung becomes a pass of its own, `top`,
and `high` keeps the rungs between. The job records each task's measurements exactly once
and says what a completion unlocks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, ValidationError

SEGMENT_SECONDS = 4
FIRST_CHUNK_SEGMENTS = 2  # short, so the first task of a video finishes fast
CHUNK_SEGMENTS = 8  # 32 s: seek and encoder warm-up stay a few % of a task
SPREAD_CHUNKS = 8  # a video is cut into at least this many chunks, when it has the segments

LOW, AUDIO, HIGH, TOP = "low", "audio", "high", "top"
PASSES = (LOW, AUDIO, HIGH, TOP)
# Relative cost of a task's segment, so that progress moves with the work done.
_AUDIO_WEIGHT = Fraction(1, 10)


def segment_starts(frame_pts: Sequence[int], time_base: Fraction, seconds: int = SEGMENT_SECONDS) -> list[int]:
    """Segment k starts at the first frame at or after k·seconds from the first frame.
    frame_pts are the source's presentation times (any order, duplicates allowed)."""
    ordered = sorted(set(frame_pts))
    if not ordered:
        raise ValidationError("source", "no video frames")
    origin = ordered[0]
    starts: list[int] = []
    for pts in ordered:
        if (pts - origin) * time_base >= len(starts) * seconds:
            starts.append(pts)
    return starts


def chunk_segments(
    segment_count: int, first: int = FIRST_CHUNK_SEGMENTS, size: int = CHUNK_SEGMENTS, spread: int = SPREAD_CHUNKS,
) -> list[tuple[int, int]]:
    """(first segment, segment count) of each chunk: a short first chunk, then chunks of at
    most `size` segments, smaller when that leaves fewer than `spread` chunks, so that a short
    video's work still spreads over a group of workers. For one worker (spread 1), a video with
    less than a full chunk after the first is one chunk: its lowest rung is no sooner complete
    when cut (a video is playable once all of it is), and its ladder is done later (measured
    with tests/bench/bench_transcode.py: 20 s at 1080p, ready in 11.7 s cut in two, 11.1 s whole)."""
    if spread == 1 and segment_count - first < size:
        return [(0, segment_count)] if segment_count else []
    if spread > 1:
        fit = max(1, (segment_count - min(first, size)) // (spread - 1))
        if fit < size:
            size, first = fit, min(first, fit)
    chunks: list[tuple[int, int]] = []
    start = 0
    while start < segment_count:
        count = min(first if not chunks else size, segment_count - start)
        chunks.append((start, count))
        start += count
    return chunks


def seek_points(chunk_starts: Sequence[int], keyframe_pts: Sequence[int]) -> list[int]:
    """For each chunk, the last source keyframe at or before its first frame, where decoding
    may begin. With no keyframe before it (a damaged start), decoding begins at the start."""
    keys = sorted(set(keyframe_pts))
    points = []
    for start in chunk_starts:
        before = [key for key in keys if key <= start]
        points.append(before[-1] if before else (keys[0] if keys and keys[0] <= start else start))
    return points


def make_plan(
    *, time_base: Fraction, frame_pts: Sequence[int], keyframe_pts: Sequence[int], end_pts: int,
    frame_rate: Fraction, width: int, height: int, rotation: int, has_audio: bool, rungs: list[dict[str, Any]],
    first_chunk: int = FIRST_CHUNK_SEGMENTS, chunk_size: int = CHUNK_SEGMENTS, spread: int = SPREAD_CHUNKS,
    segment_seconds: int = SEGMENT_SECONDS,
) -> dict[str, Any]:
    """The plan of one video's work, as recorded (JSON-able): the segment grid on the source's
    timeline, the chunks with their seek points, the rungs (lowest first), and whether the top
    rung is a pass of its own."""
    starts = segment_starts(frame_pts, time_base, segment_seconds)
    chunks = chunk_segments(len(starts), first_chunk, chunk_size, spread)
    seeks = seek_points([starts[first] for first, _ in chunks], keyframe_pts)
    origin = starts[0]
    return {
        "time_base": [time_base.numerator, time_base.denominator], "origin": origin, "end": max(end_pts, starts[-1] + 1),
        "segments": starts, "segment_seconds": segment_seconds,
        "chunks": [[first, count, seek] for (first, count), seek in zip(chunks, seeks, strict=True)],
        "rungs": rungs, "top": splits_top_rung(len(chunks), len(rungs), spread),
        # Shared by a group: the ladder goes out while the last pass-1 task still runs, so the
        # other workers do not idle behind it (it is already queued ahead of the ladder).
        "lead": 1 if spread > 1 else 0,
        "audio": has_audio, "rotation": rotation, "width": width, "height": height,
        "frame_rate": [frame_rate.numerator, frame_rate.denominator],
        "duration_s": round(float((max(end_pts, starts[-1] + 1) - origin) * time_base), 3),
    }


def splits_top_rung(chunk_count: int, rung_count: int, spread: int = SPREAD_CHUNKS) -> bool:
    """Fewer chunks than `spread` (a short video): the top rung, the costliest to encode,
    becomes a task of its own per chunk, at the price of decoding those chunks once more."""
    return rung_count >= 3 and chunk_count < spread


def pass_rungs(plan: dict[str, Any], pass_name: str) -> list[dict[str, Any]]:
    """The rungs a pass encodes (lowest first); `audio` encodes none."""
    rungs: list[dict[str, Any]] = plan["rungs"]
    top = 1 if plan.get("top") else 0
    if pass_name == LOW:
        return rungs[:1]
    if pass_name == HIGH:
        return rungs[1 : len(rungs) - top]
    if pass_name == TOP:
        return rungs[-1:] if top else []
    return []


def plan_tasks(plan: dict[str, Any], pass_name: str) -> list[str]:
    """Every task of a pass, in timeline order."""
    if pass_name == AUDIO:
        return [task_key(AUDIO, 0)] if plan.get("audio") else []
    if pass_name not in PASSES or not pass_rungs(plan, pass_name):
        return []
    return [task_key(pass_name, index) for index in range(len(plan["chunks"]))]


def first_tasks(plan: dict[str, Any]) -> list[str]:
    """What makes the video playable; published as soon as the plan is recorded. The audio
    first: it is one task for the whole video, so it should not be the last to start."""
    return plan_tasks(plan, AUDIO) + plan_tasks(plan, LOW)


def later_tasks(plan: dict[str, Any]) -> list[str]:
    """The rest of the ladder; published once the video is playable, so every video in the
    group becomes playable before workers spend their time on ladders (a plan cut for a group
    has a `lead` of 1: its ladder goes out when its last first task is the only one left)."""
    return plan_tasks(plan, HIGH) + plan_tasks(plan, TOP)


def parse_task_key(key: str) -> tuple[str, int]:
    pass_name, chunk = key.split(":")
    return pass_name, int(chunk)


@dataclass(frozen=True)
class Completion:
    """What recording one task unlocked."""

    recorded: bool  # False: it had been recorded already (a redelivery)
    rungs: tuple[str, ...] = ()  # renditions all of whose segments now exist
    playable: bool = False  # the lowest rung (with the audio) is complete
    finished: bool = False  # every task is done: assemble


def job_id(video_id: UUID, plan_id: UUID) -> UUID:
    return uuid.uuid5(video_id, f"transcode-job:{plan_id}")


def task_key(pass_name: str, chunk: int) -> str:
    return f"{pass_name}:{chunk}"


class TranscodeJob(Aggregate):
    """One plan of one video. plan: a JSON-able dict with at least `rungs` (lowest first,
    each with a `name`), `segments` (start pts) and `chunks` ([first, count, seek])."""

    # Class defaults: older snapshots lack them.
    idle_redrives = 0  # re-drives since the last task was recorded
    redriven_at: datetime | None = None

    # Declared (not `@event("Name")`) because the relay names them: a type checker sees them
    # and their fields; the names, hence the stored topics, and the fields are unchanged.
    class Planned(Aggregate.Created):
        video_id: UUID
        plan_id: UUID
        attempt: int
        plan: dict[str, Any]

    class TasksRedriven(Aggregate.Event):
        tasks: list[str]
        reason: str
        video_id: UUID
        plan_id: UUID
        at: datetime

    class StageCompleted(Aggregate.Event):
        stage: str
        tasks: list[str]
        video_id: UUID
        plan_id: UUID

    @event(Planned)
    def __init__(self, id: UUID, video_id: UUID, plan_id: UUID, attempt: int, plan: dict[str, Any]) -> None:
        self.video_id = video_id
        self.plan_id = plan_id
        self.attempt = attempt
        self.plan = plan
        self.results: dict[str, dict[str, Any]] = {}  # task key -> the task's measurements
        self.configs: dict[str, str] = {}  # rung -> digest of its codec configuration
        self.stages: list[str] = []

    @classmethod
    def create(cls, video_id: UUID, plan_id: UUID, attempt: int, plan: dict[str, Any]) -> TranscodeJob:
        if not plan.get("rungs") or not plan.get("chunks"):
            raise ValidationError("plan", "a plan needs rungs and chunks")
        return cls(id=job_id(video_id, plan_id), video_id=video_id, plan_id=plan_id, attempt=attempt, plan=plan)

    # --- the plan's shape ---------------------------------------------------------------

    @property
    def rung_names(self) -> list[str]:
        return [rung["name"] for rung in self.plan["rungs"]]

    @property
    def has_audio(self) -> bool:
        return bool(self.plan.get("audio"))

    def tasks(self, pass_name: str) -> list[str]:
        return plan_tasks(self.plan, pass_name)

    def first_tasks(self) -> list[str]:
        return first_tasks(self.plan)

    def later_tasks(self) -> list[str]:
        return later_tasks(self.plan)

    def rungs_of(self, pass_name: str) -> list[str]:
        if pass_name == AUDIO:
            return [AUDIO]
        return [rung["name"] for rung in pass_rungs(self.plan, pass_name)]

    # --- progress -----------------------------------------------------------------------

    def is_done(self, pass_name: str, chunk: int) -> bool:
        return task_key(pass_name, chunk) in self.results

    def _weight(self, key: str) -> Fraction:
        pass_name, chunk = parse_task_key(key)
        if pass_name == AUDIO:
            return _AUDIO_WEIGHT * len(self.plan["segments"])
        segments = self.plan["chunks"][chunk][1]
        return Fraction(segments * len(self.rungs_of(pass_name)))

    @property
    def progress(self) -> float:
        """Share of the work done, 0.0–1.0, weighting each task by its segments and rungs."""
        every = [key for pass_name in PASSES for key in self.tasks(pass_name)]
        total = sum((self._weight(key) for key in every), Fraction(0))
        done = sum((self._weight(key) for key in every if key in self.results), Fraction(0))
        return round(float(done / total), 3) if total else 1.0

    def _all_done(self, keys: list[str]) -> bool:
        return all(key in self.results for key in keys)

    @property
    def playable(self) -> bool:
        return self._all_done(self.first_tasks())

    @property
    def ladder_due(self) -> bool:
        """At most the plan's `lead` first tasks are left (none: playable)."""
        left = [key for key in self.first_tasks() if key not in self.results]
        return len(left) <= int(self.plan.get("lead", 0))

    @property
    def ladder_released(self) -> bool:
        return self.playable or any(stage in self.stages for stage in ("ladder", "playable"))

    @property
    def finished(self) -> bool:
        return self.playable and self._all_done(self.later_tasks())

    def complete_rungs(self) -> list[str]:
        """Renditions every segment of which exists (with the audio they play with), lowest first."""
        if not self.playable:
            return []
        done = {rung for pass_name in (LOW, HIGH, TOP) if self._all_done(self.tasks(pass_name))
                for rung in self.rungs_of(pass_name)}
        return [rung for rung in self.rung_names if rung in done]

    # --- recording tasks ----------------------------------------------------------------

    def task_done(self, pass_name: str, chunk: int, result: dict[str, Any]) -> Completion:
        """Record a task's measurements once. result: {"tracks": {rung: {"config": digest, …}}}.
        Every task of a rung must produce the same codec configuration, since one init segment
        serves all its segments: a mismatch is refused, loudly."""
        key = task_key(pass_name, chunk)
        if pass_name not in PASSES or key not in self.tasks(pass_name):
            raise ValidationError("task", f"{key} is not a task of this plan")
        if key in self.results:
            return Completion(recorded=False)
        for rung, track in result.get("tracks", {}).items():
            known = self.configs.get(rung)
            if known is not None and track.get("config") != known:
                raise Conflict(f"the {rung} rung's codec configuration differs between tasks; its segments cannot share one init")
        released, had = self.ladder_released, set(self.complete_rungs())
        self._task_done(key=key, result=result)
        if self.ladder_due and not released:
            stage = "playable" if self.playable else "ladder"
            self._stage_completed(stage=stage, tasks=self.later_tasks(), video_id=self.video_id, plan_id=self.plan_id)
        if self.finished and "finished" not in self.stages:
            self._stage_completed(stage="finished", tasks=[], video_id=self.video_id, plan_id=self.plan_id)
        return Completion(
            recorded=True, rungs=tuple(rung for rung in self.complete_rungs() if rung not in had),
            playable=self.playable, finished=self.finished,
        )

    # --- re-driving a stalled plan ---------------------------------------------------------

    def missing_tasks(self) -> list[str]:
        """Tasks published and not done: the first ones, and the ladder's once playable. With
        none missing (finished, but not yet assembled), the last task, whose redelivery
        assembles again."""
        published = self.first_tasks() + (self.later_tasks() if self.ladder_released else [])
        missing = [key for key in published if key not in self.results]
        return missing or published[-1:]

    @property
    def may_redrive(self) -> bool:
        """Once per stall: when a re-drive brought no task done, the plan is given up."""
        return self.idle_redrives == 0

    def redrive(self, reason: str, at: datetime) -> list[str]:
        """Publish the missing tasks again (their messages were lost, or dead-lettered)."""
        if not self.may_redrive:
            raise Conflict("re-driven already without progress since; take the video over instead")
        tasks = self.missing_tasks()
        self._tasks_redriven(tasks=tasks, reason=reason, video_id=self.video_id, plan_id=self.plan_id, at=at)
        return tasks

    @event(TasksRedriven)
    def _tasks_redriven(self, tasks: list[str], reason: str, video_id: UUID, plan_id: UUID, at: datetime) -> None:
        self.idle_redrives += 1
        self.redriven_at = at

    @property
    def progressed_at(self) -> datetime:
        """When a task was last recorded or the plan re-driven: a re-drive gives it a new lease."""
        return max(self.modified_on, self.redriven_at or self.modified_on)

    @event("TaskDone")
    def _task_done(self, key: str, result: dict[str, Any]) -> None:
        self.idle_redrives = 0
        self.results[key] = result
        for rung, track in result.get("tracks", {}).items():
            self.configs.setdefault(rung, track.get("config", ""))

    @event(StageCompleted)
    def _stage_completed(self, stage: str, tasks: list[str], video_id: UUID, plan_id: UUID) -> None:
        """tasks: what the relay publishes now (the ladder: `playable`, or `ladder` just before)."""
        self.stages.append(stage)

    def track_segments(self, rung: str) -> list[dict[str, Any]]:
        """The measured segments of one rung (or `audio`) in timeline order, from every task
        that produced them: [{index, duration, size}]."""
        segments = [
            segment for result in self.results.values()
            for segment in result.get("tracks", {}).get(rung, {}).get("segments", [])
        ]
        return sorted(segments, key=lambda segment: segment["index"])

    def track_info(self, rung: str) -> dict[str, Any]:
        """What every task of the rung measured alike: codecs, timescale, config."""
        for result in self.results.values():
            track = result.get("tracks", {}).get(rung)
            if track is not None:
                return {name: value for name, value in track.items() if name != "segments"}
        raise Conflict(f"no task of the {rung} rung is done")
