"""Transcoder over PyAV (FFmpeg in-process; no ffmpeg subprocess, ever).

One pass over the source: decode once, turn each frame upright, hand it to one encoder
thread per rung and to the thumbnail collector, encode the audio once; the rung packets go
into one dash muxer (CMAF segments + HLS + DASH) and the progressive rung's packets also
into a faststart MP4. The parts live in adapters/outbound/transcoding/.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from av.audio.frame import AudioFrame
from av.container import OutputContainer

from adapters.outbound.transcoding import packaging, source, thumbnails
from adapters.outbound.transcoding.geometry import RungSize, rung_sizes
from adapters.outbound.transcoding.ladder_encoder import KeyframeClock, RungEncoder, configure_x264
from application.ports import Rendition, SourceInfo, TranscodeOutput
from domain.ladder import Rung, progressive_rung

SEGMENT_SECONDS = 4
KEYFRAME_INTERVAL = Fraction(2)  # two GOPs per segment; players can also start mid-segment


class PyAVTranscoder:
    """The Transcoder port over PyAV."""

    def probe(self, source_path: Path) -> SourceInfo:
        return source.probe(source_path)

    def transcode(self, source_path: Path, output_dir: Path, rungs: Sequence[Rung]) -> TranscodeOutput:
        if not rungs:
            raise ValueError("at least one rung is needed")
        info = source.probe(source_path)
        sizes = rung_sizes(info.width, info.height, rungs)
        progressive = _progressive_size(sizes)
        output_dir.mkdir(parents=True, exist_ok=True)
        with source.open_source(source_path) as container:
            decoder = source.SourceDecoder(container, info.rotation)
            job = _Job(decoder, info, sizes, progressive, output_dir)
            duration = job.run()
        poster, sprite, storyboard = job.thumbnails.write(output_dir, duration)
        packaging.write_rung_masters(output_dir, [size.rung.name for size in sizes])
        return TranscodeOutput(
            source=replace(info, duration_s=float(duration)),
            renditions=tuple(
                Rendition(s.rung.name, s.width, s.height, s.rung.video_bitrate,
                          hls=f"{packaging.CMAF_DIR}/{packaging.rung_master_name(s.rung.name)}")
                for s in sizes
            ),
            files=tuple(
                name for folder in (packaging.CMAF_DIR, packaging.PROGRESSIVE_DIR, thumbnails.THUMBNAIL_DIR)
                for name in packaging.written_files(output_dir, folder)
            ),
            hls_master=f"{packaging.CMAF_DIR}/{packaging.HLS_MASTER}",
            dash_manifest=f"{packaging.CMAF_DIR}/{packaging.DASH_MANIFEST}",
            progressive=packaging.progressive_name(progressive.rung.name),
            poster=poster,
            sprite=sprite,
            storyboard=storyboard,
        )


def _progressive_size(sizes: list[RungSize]) -> RungSize:
    chosen = progressive_rung(tuple(size.rung for size in sizes))
    return next(size for size in sizes if size.rung == chosen)


class _Job:
    """One transcode: owns the outputs and the encoder threads while the source is decoded."""

    def __init__(
        self, decoder: source.SourceDecoder, info: SourceInfo, sizes: list[RungSize],
        progressive: RungSize, output_dir: Path,
    ) -> None:
        self.decoder = decoder
        self.info = info
        self.sizes = sizes
        self.progressive = progressive
        self.output_dir = output_dir
        self.thumbnails = thumbnails.ThumbnailCollector(info.width, info.height, info.duration_s)

    def run(self) -> Fraction:
        """Decode, encode and package everything; returns the measured duration."""
        has_audio = self.decoder.audio is not None
        with ExitStack() as closing:
            dash = packaging.open_dash(self.output_dir, SEGMENT_SECONDS, has_audio)
            closing.callback(dash.close)
            mp4 = packaging.open_progressive(self.output_dir / packaging.progressive_name(self.progressive.rung.name))
            closing.callback(mp4.close)
            muxer = packaging.Muxer(dash, mp4)
            encoders = self._add_rungs(dash, muxer)
            audio = packaging.AudioTrack(packaging.add_aac_stream(dash), muxer) if has_audio else None
            dash.start_encoding()  # opens the encoders, so the MP4 can copy their parameters
            self._mirror_progressive(muxer, encoders, audio)
            self._encode_all(encoders, audio)
            # The pictures' span: audio often overhangs by its codec's padding.
            return self.decoder.end

    def _add_rungs(self, dash: OutputContainer, muxer: packaging.Muxer) -> list[RungEncoder]:
        video = self.decoder.video
        rate = source.frame_rate(video)
        # A cap well above the forced interval, so only the clock decides keyframes.
        gop_frames = math.ceil(rate * KEYFRAME_INTERVAL * 2)
        encoders = []
        for size in self.sizes:
            stream = dash.add_stream("libx264", rate=rate)
            configure_x264(stream, size, video.time_base, gop_frames)
            encoders.append(RungEncoder(stream, size, muxer.write))
        return encoders

    def _mirror_progressive(
        self, muxer: packaging.Muxer, encoders: list[RungEncoder], audio: packaging.AudioTrack | None
    ) -> None:
        muxer.mirror(next(e.stream for e in encoders if e.size == self.progressive))
        if audio is not None:
            muxer.mirror(audio.stream)

    def _encode_all(self, encoders: list[RungEncoder], audio: packaging.AudioTrack | None) -> None:
        for encoder in encoders:
            encoder.start()
        try:
            self._feed(encoders, audio)
            for encoder in encoders:
                encoder.finish()
        except BaseException:
            for encoder in encoders:
                encoder.abort()  # never leave a thread running behind an exception
            raise
        if audio is not None:
            audio.finish()

    def _feed(self, encoders: list[RungEncoder], audio: packaging.AudioTrack | None) -> None:
        clock = KeyframeClock(KEYFRAME_INTERVAL)
        for item in self.decoder.frames():
            if isinstance(item, AudioFrame):
                if audio is not None and self.decoder.origin is not None:
                    audio.add(item, self.decoder.origin)
                continue
            keyframe = clock.is_due(item.seconds)
            for encoder in encoders:
                encoder.submit(item.frame, keyframe)
            self.thumbnails.add(item.frame, item.seconds)

