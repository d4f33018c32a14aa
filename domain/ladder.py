"""The adaptive-bitrate ladder: which renditions a source of a given size gets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    name: str  # "720p"
    height: int  # target short side in pixels
    video_bitrate: int  # bits per second


LADDER: tuple[Rung, ...] = (
    Rung("240p", 240, 400_000),
    Rung("360p", 360, 800_000),
    Rung("480p", 480, 1_200_000),
    Rung("720p", 720, 2_800_000),
    Rung("1080p", 1080, 5_000_000),
)

AUDIO_BITRATE = 128_000
PROGRESSIVE_MAX_HEIGHT = 720


def rungs_for_source(width: int, height: int) -> tuple[Rung, ...]:
    """Rungs for a source, judged by its short side (portrait phones too): never
    upscale, but always keep at least the lowest rung."""
    short_side = min(width, height)
    fitting = tuple(rung for rung in LADDER if rung.height <= short_side)
    return fitting or LADDER[:1]


def progressive_rung(rungs: tuple[Rung, ...]) -> Rung:
    """The rung of the progressive MP4: the highest one up to 720p."""
    eligible = [rung for rung in rungs if rung.height <= PROGRESSIVE_MAX_HEIGHT]
    return eligible[-1] if eligible else rungs[0]
