"""HTTP Range requests (RFC 9110 §14) for one representation of known size."""

from __future__ import annotations

import re
from dataclasses import dataclass

RANGE_SPEC = re.compile(r"bytes=(\d*)-(\d*)")
MAX_DIGITS = 20  # beyond any real object size; keeps int() on hostile input cheap


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


class Unsatisfiable(Exception):
    """A valid range that lies wholly outside the representation: 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to serve, or None for the whole object. Malformed, reversed and
    multi-range headers are ignored (whole object), as RFC 9110 allows; a syntactically
    valid range that selects nothing raises Unsatisfiable."""
    if not header:
        return None
    match = RANGE_SPEC.fullmatch(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if (not first and not last) or len(first) > MAX_DIGITS or len(last) > MAX_DIGITS:
        return None
    if not first:  # suffix: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable()
        return ByteRange(max(0, size - suffix), size)
    start = int(first)
    end = int(last) + 1 if last else size
    if last and end <= start:
        return None  # reversed: invalid, so ignored
    if start >= size:
        raise Unsatisfiable()
    return ByteRange(start, min(end, size))
