"""Transcoder over PyAV (FFmpeg in-process; no ffmpeg subprocess, ever).

The work of one video is a plan of tasks (domain/transcode_jobs.py); this adapter does the
media side of each step: index the source without decoding, run one task (seek, decode a
chunk, encode its rungs into CMAF segments), and assemble the progressive MP4 and the
storyboard at the end. The parts live in adapters/outbound/transcoding/.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from adapters.outbound.media_sandbox import SandboxLimits, run_sandboxed
from adapters.outbound.transcoding import assembly, tasks
from adapters.outbound.transcoding.geometry import rung_sizes
from adapters.outbound.transcoding.index import index_source
from application.ports import AssemblyOutput, SourceIndex, TaskOutput
from domain.ladder import Rung, progressive_rung
from domain.transcode_jobs import AUDIO, LOW, pass_rungs

# Indexing reads every packet header of the whole source: generous, but still bounded.
INDEX_LIMITS = SandboxLimits(timeout_s=1800.0, cpu_s=1200, memory_bytes=4 << 30)


class PyAVTranscoder:
    """The Transcoder port over PyAV. threads: x264 threads per rung (0: as many as cores);
    pinned per deployment, since every task of a rung must configure its encoder alike."""

    def __init__(self, threads: int = 0, sandbox: SandboxLimits | None = INDEX_LIMITS) -> None:
        self.threads = threads
        self.sandbox = sandbox

    def index(self, source: Path, container: str | None = None) -> SourceIndex:
        """The first parse of an upload's whole file, so it runs confined (media_sandbox)."""
        if self.sandbox is None:
            return index_source(source, container)
        return run_sandboxed(index_source, source, self.sandbox, container, returns=SourceIndex)

    def rung_sizes(self, width: int, height: int, rungs: Sequence[Rung]) -> list[dict]:
        return [
            {"name": size.rung.name, "width": size.width, "height": size.height, "bitrate": size.rung.video_bitrate,
             "target": size.rung.height}
            for size in rung_sizes(width, height, rungs)
        ]

    def encode(self, source: Path, plan: dict, pass_name: str, chunk: int, output_dir: Path) -> TaskOutput:
        if pass_name == AUDIO:
            return tasks.encode_audio(source, plan, output_dir)
        rungs = pass_rungs(plan, pass_name)
        if not rungs:
            raise ValueError(f"no such task: {pass_name}:{chunk}")
        return tasks.encode_video_chunk(
            source, plan, chunk, rungs, output_dir, threads=self.threads, poster=pass_name == LOW and chunk == 0,
        )

    def assemble(self, cmaf_dir: Path, plan: dict, tracks: dict[str, dict], output_dir: Path) -> AssemblyOutput:
        by_name = {rung["name"]: rung for rung in plan["rungs"]}
        chosen = progressive_rung(tuple(Rung(r["name"], r.get("target", r["height"]), r["bitrate"]) for r in plan["rungs"]))
        lowest = plan["rungs"][0]["name"]
        duration = Fraction(plan["end"] - plan["origin"]) * Fraction(*plan["time_base"])
        with tempfile.TemporaryDirectory(dir=output_dir) as scratch:
            joined = {
                name: assembly.join_track(cmaf_dir, name, tracks[name]["segments"], Path(scratch) / f"{name}.mp4")
                for name in {chosen.name, lowest, *([AUDIO] if AUDIO in tracks else [])}
            }
            progressive = assembly.progressive_name(chosen.name)
            assembly.remux_progressive(joined[chosen.name], joined.get(AUDIO), output_dir / progressive)
            sprite, storyboard = assembly.storyboard(
                joined[lowest], by_name[lowest]["width"], by_name[lowest]["height"], duration, output_dir,
            )
        return AssemblyOutput(files=(progressive, sprite, storyboard), progressive=progressive, sprite=sprite,
                              storyboard=storyboard)
