"""The media sandbox's cost per upload: inspecting a real clip in the confined child against
inspecting it in the process, the same clip, the same inspector settings, one after another.

Run: make bench (or .venv/bin/pytest tests/bench/bench_inspection_sandbox.py -o python_files='bench_*.py' -s).
BENCH_INSPECTIONS changes the count."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from tests.media_factory import write_clip

INSPECTIONS = int(os.environ.get("BENCH_INSPECTIONS", "40"))


def _median_seconds(inspector: PyAVMediaInspector, clip: Path) -> float:
    timings = []
    for _ in range(INSPECTIONS):
        with clip.open("rb") as source:
            started = time.perf_counter()
            inspector.inspect(source)
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def test_sandboxed_inspection_costs_a_fork_not_an_interpreter(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", width=640, height=360, seconds=2.0)
    sandboxed, in_process = PyAVMediaInspector(), PyAVMediaInspector(sandbox=None)
    with clip.open("rb") as source:
        started = time.perf_counter()
        sandboxed.inspect(source)  # starts the zygote (once per process)
        first = time.perf_counter() - started
    confined = _median_seconds(sandboxed, clip)
    plain = _median_seconds(in_process, clip)
    print(
        f"\ninspection of a 2 s 640x360 clip, median of {INSPECTIONS}: in process {plain * 1000:.1f} ms, "
        f"sandboxed {confined * 1000:.1f} ms (x{confined / plain:.1f}, +{(confined - plain) * 1000:.1f} ms "
        f"per upload); the first one, starting the zygote: {first * 1000:.0f} ms"
    )
    assert confined > 0 and plain > 0
