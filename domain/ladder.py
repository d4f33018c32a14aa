"""The adaptive-bitrate ladder: which renditions a source of a given size gets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import ValidationError


@dataclass(frozen=True)
class Rung:
    name: str  # "720p"
    height: int  # target short side in pixels
    video_bitrate: int  # bits per second


ALL_RUNGS: tuple[Rung, ...] = (
    Rung("240p", 240, 400_000),
    Rung("360p", 360, 800_000),
    Rung("480p", 480, 1_200_000),
    Rung("720p", 720, 2_800_000),
    Rung("1080p", 1080, 5_000_000),
    Rung("1440p", 1440, 9_000_000),
    Rung("2160p", 2160, 16_000_000),
)
# 1440p and 2160p cost a 4K source several times the rest of its ladder: an operator's choice.
LADDER: tuple[Rung, ...] = ALL_RUNGS[:5]

AUDIO_BITRATE = 128_000
PROGRESSIVE_MAX_HEIGHT = 720


def parse_ladder(text: str) -> tuple[Rung, ...]:
    """`240p,480p,1080p` → those rungs, lowest first; a name not in ALL_RUNGS is refused."""
    known = {rung.name: rung for rung in ALL_RUNGS}
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValidationError("ladder", f"rungs from {', '.join(known)}; got {text!r}")
    return tuple(sorted({known[name] for name in names}, key=lambda rung: rung.height))


def rungs_for_source(width: int, height: int, ladder: Sequence[Rung] = LADDER) -> tuple[Rung, ...]:
    """Rungs for a source, judged by its short side (portrait phones too): never
    upscale, but always keep at least the lowest rung."""
    short_side = min(width, height)
    fitting = tuple(rung for rung in ladder if rung.height <= short_side)
    return fitting or tuple(ladder[:1])


def progressive_rung(rungs: tuple[Rung, ...]) -> Rung:
    """The rung of the progressive MP4: the highest one up to 720p."""
    eligible = [rung for rung in rungs if rung.height <= PROGRESSIVE_MAX_HEIGHT]
    return eligible[-1] if eligible else rungs[0]
