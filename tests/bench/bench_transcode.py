"""Transcoding speed: a generated 20 s 1080p30 source through the 240/480/720/1080 ladder.

Run: .venv/bin/python -m tests.bench.bench_transcode   (or pytest with -o python_files='bench_*.py' -s)
Prints wall and CPU time and, when the ffmpeg CLI is installed (`make bench` installs
Debian's), the same ladder by the single best ffmpeg command (one decode, split filter, four
libx264 encoders) measured in the same run, and the ratios between the two.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
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


def _ffmpeg_reference(source: Path, folder: Path) -> tuple[float, float] | None:
    """Wall and CPU seconds of the ffmpeg CLI doing the same ladder, or None without ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    heights = [rung.height for rung in BENCH_RUNGS]
    split = f"[0:v]split={len(heights)}" + "".join(f"[s{i}]" for i in range(len(heights)))
    scales = ";".join(f"[s{i}]scale=-2:{h}[v{i}]" for i, h in enumerate(heights))
    command = [ffmpeg, "-v", "error", "-y", "-i", str(source), "-filter_complex", f"{split};{scales}"]
    for i, rung in enumerate(BENCH_RUNGS):
        command += ["-map", f"[v{i}]", "-c:v", "libx264", "-preset", "veryfast", "-b:v", str(rung.video_bitrate),
                    "-g", "60", "-sc_threshold", "0", str(folder / f"ref_{rung.name}.mp4")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_benchmark() -> None:
    with tempfile.TemporaryDirectory(prefix="vodhub-bench-") as folder:
        source = write_test_pattern(Path(folder) / "source.mp4", width=1920, height=1080, seconds=20, fps=30)
        wall, cpu = time.perf_counter(), _cpu_seconds()
        output = PyAVTranscoder().transcode(source, Path(folder) / "out", BENCH_RUNGS)
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        reference = _ffmpeg_reference(source, Path(folder))
    sizes = ", ".join(f"{r.name} {r.width}x{r.height}" for r in output.renditions)
    print(f"transcoded {output.source.duration_s:.1f} s of 1080p30 into {sizes}")
    print(f"vodhub (PyAV, CMAF + MP4 + thumbnails): wall {wall:.1f} s, CPU {cpu:.1f} s")
    if reference is None:
        print("ffmpeg CLI not installed: no reference (apt-get install ffmpeg)")
        return
    ref_wall, ref_cpu = reference
    print(f"ffmpeg CLI (4 MP4 files, nothing else):  wall {ref_wall:.1f} s, CPU {ref_cpu:.1f} s")
    print(f"ratio vodhub/ffmpeg: wall {wall / ref_wall:.2f}, CPU {cpu / ref_cpu:.2f} (target <= 1.0)")


def test_transcode_speed() -> None:
    run_benchmark()


if __name__ == "__main__":
    run_benchmark()
