"""The plan of a video's work and the job that records its tasks: pure rules."""

from __future__ import annotations

import uuid
from fractions import Fraction

import pytest

from domain.errors import Conflict, ValidationError
from domain.transcode_jobs import (
    TranscodeJob,
    chunk_segments,
    first_tasks,
    later_tasks,
    make_plan,
    pass_rungs,
    seek_points,
    segment_starts,
)

TB = Fraction(1, 1000)  # milliseconds, like Matroska


def cfr(seconds: float, fps: int = 25, start: int = 0) -> list[int]:
    return [start + round(n * 1000 / fps) for n in range(int(seconds * fps))]


# --- the segment grid -----------------------------------------------------------------------


def test_cfr_segments_start_every_four_seconds_at_a_frame():
    assert segment_starts(cfr(10), TB) == [0, 4000, 8000]


def test_segments_count_from_the_first_frame_not_from_zero():
    assert segment_starts(cfr(9, start=1500), TB) == [1500, 5500, 9500]


def test_vfr_segments_start_at_the_first_frame_at_or_after_each_boundary():
    frames = [0, 30, 90, 3990, 4050, 7000, 8010, 8100]  # no frame exactly at 4 s or 8 s
    assert segment_starts(frames, TB) == [0, 4050, 8010]


def test_decode_order_and_duplicates_do_not_matter():
    frames = cfr(9)
    shuffled = frames[::2] + frames[1::2] + frames[:5]
    assert segment_starts(shuffled, TB) == segment_starts(frames, TB)


def test_a_source_with_no_frames_cannot_be_planned():
    with pytest.raises(ValidationError):
        segment_starts([], TB)


def test_the_first_chunk_is_short_and_the_rest_are_full():
    assert chunk_segments(20, first=2, size=8, spread=1) == [(0, 2), (2, 8), (10, 8), (18, 2)]
    assert chunk_segments(1, first=2, size=8, spread=1) == [(0, 1)]
    assert chunk_segments(3, first=1, size=1, spread=1) == [(0, 1), (1, 1), (2, 1)]
    assert chunk_segments(100, first=100_000, size=100_000, spread=1) == [(0, 100)]  # the one-job reference


def test_for_one_worker_a_video_shorter_than_a_first_and_a_full_chunk_is_not_cut():
    assert chunk_segments(5, first=2, size=8, spread=1) == [(0, 5)]  # 20 s
    assert chunk_segments(9, first=2, size=8, spread=1) == [(0, 9)]
    assert chunk_segments(10, first=2, size=8, spread=1) == [(0, 2), (2, 8)]  # 40 s
    assert chunk_segments(5, first=2, size=8, spread=8) == [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]  # a group still shares it


def test_short_videos_are_cut_finer_so_a_group_of_workers_shares_them():
    assert [count for _, count in chunk_segments(5, first=2, size=8, spread=8)] == [1, 1, 1, 1, 1]  # 20 s
    assert [count for _, count in chunk_segments(15, first=2, size=8, spread=8)] == [1] * 15  # 60 s
    assert [count for _, count in chunk_segments(20, first=2, size=8, spread=8)] == [2] * 10  # 80 s
    assert all(len(chunk_segments(n, first=2, size=8, spread=8)) >= 8 for n in range(8, 200))
    assert chunk_segments(40, first=8, size=2, spread=8)[0] == (0, 8)  # as asked, when 8 chunks come anyway
    assert [count for _, count in chunk_segments(30, first=2, size=8, spread=8)] == [2] + [4] * 7  # 120 s
    long = chunk_segments(150, first=2, size=8, spread=8)  # 600 s: full chunks, seeks stay rare
    assert long[0] == (0, 2) and {count for _, count in long[1:-1]} == {8} and sum(c for _, c in long) == 150


def test_long_gop_sources_seek_to_the_keyframe_before_each_chunk():
    keyframes = [0, 10_000, 20_000]  # one every 10 s
    assert seek_points([0, 8000, 16_000, 24_000], keyframes) == [0, 0, 10_000, 20_000]


def test_a_chunk_before_any_keyframe_is_decoded_from_its_own_start():
    assert seek_points([0], [500]) == [0]


def plan(seconds: float = 30, rungs: int = 3, audio: bool = True, **chunking) -> dict:
    frames = cfr(seconds)
    return make_plan(
        time_base=TB, frame_pts=frames, keyframe_pts=frames[::75], end_pts=frames[-1] + 40,
        frame_rate=Fraction(25), width=1280, height=720, rotation=0, has_audio=audio,
        rungs=[{"name": name, "width": 1, "height": 1, "bitrate": 1} for name in ("240p", "480p", "720p")[:rungs]],
        **({"spread": 1, "chunk_size": 6} | chunking),  # 30 s: chunks of 2 and 6 segments
    )


def test_a_plan_records_the_grid_the_chunks_and_their_seek_points():
    recorded = plan(30)
    assert recorded["segments"] == [0, 4000, 8000, 12000, 16000, 20000, 24000, 28000]
    assert recorded["chunks"] == [[0, 2, 0], [2, 6, 6000]]
    assert recorded["duration_s"] == 30.0 and recorded["end"] == 30_000


def test_the_first_tasks_make_the_video_playable_and_the_ladder_comes_later():
    recorded = plan(30, chunk_size=3)
    assert first_tasks(recorded) == ["audio:0", "low:0", "low:1", "low:2"]
    assert later_tasks(recorded) == ["high:0", "high:1", "high:2"]
    assert later_tasks(plan(30, rungs=1)) == [] and first_tasks(plan(30, audio=False)) == ["low:0", "low:1"]


def test_a_short_video_makes_its_top_rung_a_pass_of_its_own():
    short = plan(20, spread=8)  # 5 segments: 5 chunks, fewer than 8
    assert short["top"] and len(short["chunks"]) == 5
    assert [r["name"] for r in pass_rungs(short, "high")] == ["480p"]
    assert [r["name"] for r in pass_rungs(short, "top")] == ["720p"]
    assert later_tasks(short) == [f"high:{n}" for n in range(5)] + [f"top:{n}" for n in range(5)]
    assert not plan(20, rungs=2, spread=8)["top"]  # one rung above the lowest: nothing to split
    assert not plan(30)["top"] and plan(30)["chunks"] == [[0, 2, 0], [2, 6, 6000]]


def test_with_a_top_pass_each_group_of_rungs_is_published_when_its_chunks_are_done():
    job = new_job(plan(8, spread=8))  # 2 segments, 2 chunks
    for pass_name, chunk, rung, index in [("low", 0, "240p", 0), ("low", 1, "240p", 1), ("audio", 0, "audio", 0),
                                          ("top", 0, "720p", 0)]:
        job.task_done(pass_name, chunk, result(rung, [index]))
    completion = job.task_done("top", 1, result("720p", [1]))
    assert completion.rungs == ("720p",) and job.complete_rungs() == ["240p", "720p"] and not completion.finished
    job.task_done("high", 0, result("480p", [0]))
    completion = job.task_done("high", 1, result("480p", [1]))
    assert completion.rungs == ("480p",) and completion.finished and job.complete_rungs() == ["240p", "480p", "720p"]
    assert job.rungs_of("high") == ["480p"] and job.rungs_of("top") == ["720p"]


# --- the job ---------------------------------------------------------------------------------


def new_job(recorded: dict) -> TranscodeJob:
    return TranscodeJob.create(uuid.uuid4(), uuid.uuid4(), 1, recorded)


def result(rung: str, indexes: list[int], config: str = "c") -> dict:
    return {"tracks": {rung: {"config": config, "codecs": "avc1.64001f", "timescale": 1000,
                              "segments": [{"index": i, "duration": 4000, "size": 100} for i in indexes]}}}


def test_playable_once_every_low_task_and_the_audio_are_done():
    job = new_job(plan(30))  # chunks: segments 0-1, 2-7
    assert not job.task_done("low", 0, result("240p", [0, 1])).playable
    assert not job.task_done("low", 1, result("240p", list(range(2, 8)))).playable
    completion = job.task_done("audio", 0, result("audio", list(range(8))))
    assert completion.playable and completion.rungs == ("240p",) and not completion.finished
    assert job.complete_rungs() == ["240p"]


def test_the_rest_of_the_ladder_is_published_together_and_then_everything_is_finished():
    job = new_job(plan(30))
    for pass_name, chunk, rung, indexes in [("low", 0, "240p", [0, 1]), ("low", 1, "240p", list(range(2, 8))),
                                            ("audio", 0, "audio", list(range(8))), ("high", 0, "480p", [0, 1])]:
        job.task_done(pass_name, chunk, result(rung, indexes))
    completion = job.task_done("high", 1, result("480p", list(range(2, 8))))
    assert completion.finished and completion.rungs == ("480p", "720p")
    assert [e.stage for e in job.collect_events() if isinstance(e, TranscodeJob.StageCompleted)] == ["playable", "finished"]


def test_the_ladder_tasks_are_announced_when_the_video_becomes_playable():
    job = new_job(plan(30, audio=False))
    job.task_done("low", 0, result("240p", [0, 1]))
    job.task_done("low", 1, result("240p", list(range(2, 8))))
    stage = [e for e in job.collect_events() if isinstance(e, TranscodeJob.StageCompleted)][0]
    assert stage.tasks == ["high:0", "high:1"] and stage.video_id == job.video_id


def test_a_redelivered_task_is_recorded_once():
    job = new_job(plan(30))
    assert job.task_done("low", 0, result("240p", [0, 1])).recorded
    assert not job.task_done("low", 0, result("240p", [0, 1])).recorded
    assert len([e for e in job.collect_events() if isinstance(e, TranscodeJob.TaskDone)]) == 1


def test_tasks_of_one_rung_must_share_one_codec_configuration():
    job = new_job(plan(30))
    job.task_done("low", 0, result("240p", [0, 1], config="a"))
    with pytest.raises(Conflict, match="codec configuration"):
        job.task_done("low", 1, result("240p", list(range(2, 8)), config="b"))


def test_a_task_outside_the_plan_is_refused():
    job = new_job(plan(30, rungs=1))
    for pass_name, chunk in [("high", 0), ("low", 9), ("sideways", 0)]:
        with pytest.raises(ValidationError):
            job.task_done(pass_name, chunk, result("240p", [0]))


def test_progress_grows_with_the_work_done_and_reaches_one():
    job = new_job(plan(30))
    seen = [job.progress]
    for pass_name, chunk in [("low", 0), ("low", 1), ("audio", 0), ("high", 0), ("high", 1)]:
        job.task_done(pass_name, chunk, result("x", []))
        seen.append(job.progress)
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0 and len(set(seen)) == len(seen)


def test_segments_of_a_rung_come_back_in_timeline_order_from_every_task():
    job = new_job(plan(30))
    job.task_done("low", 1, result("240p", list(range(2, 8))))
    job.task_done("low", 0, result("240p", [0, 1]))
    assert [s["index"] for s in job.track_segments("240p")] == list(range(8))
    assert job.track_info("240p")["codecs"] == "avc1.64001f"


def test_a_plan_cut_for_a_group_sends_its_ladder_while_the_last_first_task_runs():
    """The other workers would idle behind that task; it is queued ahead of the ladder."""
    job = new_job(plan(30, chunk_size=3, audio=False, spread=2))  # low:0, low:1, low:2
    job.task_done("low", 0, result("240p", [0, 1]))
    assert not [e for e in job.collect_events() if isinstance(e, TranscodeJob.StageCompleted)]
    job.task_done("low", 2, result("240p", [5, 6, 7]))
    stages = [e for e in job.collect_events() if isinstance(e, TranscodeJob.StageCompleted)]
    assert [(e.stage, e.tasks) for e in stages] == [("ladder", job.later_tasks())] and not job.playable
    assert job.missing_tasks() == ["low:1", *job.later_tasks()]
    completion = job.task_done("low", 1, result("240p", [2, 3, 4]))
    assert completion.playable and not [e for e in job.collect_events() if isinstance(e, TranscodeJob.StageCompleted)]
