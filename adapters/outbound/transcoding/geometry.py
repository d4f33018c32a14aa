"""Output sizes for the ladder rungs that all share one exact display shape.

Every rung is square-pixel and exactly the same shape, so a player switching rungs never
changes the picture's shape, and nothing depends on a player honouring a sample aspect
ratio (the common 426x240 beside 640x360 is 16:9 only with a SAR of 640:639, and a
player that ignores it stretches the lowest rung); every DASH Representation says
`sar="1:1"` and means it. Rounding each rung's width independently breaks that. Instead
we pick one small even base shape close to the source's display aspect (32x18 for 16:9,
8x6 for 4:3) and make every rung an integer multiple of it: 416x234, 640x360, 1280x720.
The short side lands within a few pixels of the rung's nominal height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.ladder import Rung

MAX_ASPECT_ERROR = 0.005  # a 0.5% stretch is invisible, and it keeps 16:9 exactly 16:9
_BASE_SHORT_SIDES = range(2, 66, 2)  # even, so every multiple is even too


@dataclass(frozen=True)
class RungSize:
    rung: Rung
    width: int
    height: int


@dataclass(frozen=True)
class _Base:
    short: int
    long: int
    aspect_error: float
    height_error: float


def rung_sizes(display_width: int, display_height: int, rungs: Sequence[Rung]) -> list[RungSize]:
    """One size per rung (duplicates dropped), all multiples of one base shape, none larger
    than the source."""
    short_side, long_side = sorted((display_width, display_height))
    base = _best_base(short_side, long_side, [rung.height for rung in rungs])
    sizes: list[RungSize] = []
    seen: set[tuple[int, int]] = set()
    for rung in rungs:
        factor = _factor(base.short, rung.height, short_side)
        short, long = factor * base.short, factor * base.long
        size = (long, short) if display_width >= display_height else (short, long)
        if size not in seen:
            seen.add(size)
            sizes.append(RungSize(rung, *size))
    return sizes


def _best_base(short_side: int, long_side: int, targets: list[int]) -> _Base:
    """The base with the smallest short-side error among those true to the aspect (or the
    truest one when none is close enough, e.g. an extreme panorama)."""
    aspect = long_side / short_side
    measured = [_measure(short, aspect, short_side, targets) for short in _BASE_SHORT_SIDES]
    bases = [base for base in measured if base is not None]
    faithful = [base for base in bases if base.aspect_error <= MAX_ASPECT_ERROR]
    if faithful:
        return min(faithful, key=lambda base: (base.height_error, base.aspect_error))
    return min(bases, key=lambda base: (base.aspect_error, base.height_error))


def _measure(short: int, aspect: float, source_short: int, targets: list[int]) -> _Base | None:
    if short > source_short:
        return None
    long = max(2, 2 * round(short * aspect / 2))
    height_error = max(
        abs(_factor(short, target, source_short) * short - target) / target for target in targets
    )
    return _Base(short, long, abs(long / short - aspect) / aspect, height_error)


def _factor(base_short: int, target: int, source_short: int) -> int:
    """The multiple of the base nearest the target, never above the source (no upscaling)."""
    return max(1, min(round(target / base_short), source_short // base_short))
