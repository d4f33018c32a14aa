"""Transcoding speed: a generated 20 s 1080p30 source through the 240/480/720/1080 ladder.

Run: .venv/bin/python -m tests.bench.bench_transcode   (or pytest with -o python_files='bench_*.py' -s)
Prints wall and CPU time. Reference on the 2-core dev machine (shared/SERVICES.md): the best
ffmpeg CLI command takes about 17.5 s wall and 33 s CPU for the same work.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from adapters.outbound.pyav_transcoder import PyAVTranscoder
from domain.ladder import LADDER
from tests.integration.transcode_media import write_test_pattern

BENCH_RUNGS = tuple(rung for rung in LADDER if rung.name in {"240p", "480p", "720p", "1080p"})


def _cpu_seconds() -> float:
    """CPU of this process and all its threads (x264 threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_benchmark() -> None:
    with tempfile.TemporaryDirectory(prefix="vodhub-bench-") as folder:
        source = write_test_pattern(Path(folder) / "source.mp4", width=1920, height=1080, seconds=20, fps=30)
        wall, cpu = time.perf_counter(), _cpu_seconds()
        output = PyAVTranscoder().transcode(source, Path(folder) / "out", BENCH_RUNGS)
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    sizes = ", ".join(f"{r.name} {r.width}x{r.height}" for r in output.renditions)
    print(f"transcoded {output.source.duration_s:.1f} s of 1080p30 into {sizes}")
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s ({cpu / wall:.2f} cores busy)")


def test_transcode_speed() -> None:
    run_benchmark()


if __name__ == "__main__":
    run_benchmark()
