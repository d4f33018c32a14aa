"""Thumbnails from the frames the transcoder already decodes: a poster, a sprite sheet of
small tiles and a WebVTT storyboard mapping time ranges to tiles.

No numpy or Pillow: pictures are composed byte-wise and encoded with FFmpeg's mjpeg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import VideoFrame

THUMBNAIL_DIR = "thumbnails"
POSTER = "poster.jpg"
SPRITE = "sprite.jpg"
STORYBOARD = "storyboard.vtt"

POSTER_MAX_WIDTH = 1280
POSTER_CANDIDATES = 12
POSTER_SEARCH_FRACTION = Fraction(1, 3)  # the opening third: titles and black leaders come first
POSTER_MIN_LUMA_MEAN = 40  # darker than this reads as black, however much noise it has
POSTER_MAX_LUMA_MEAN = 225  # brighter than this is a white flash or a title card
TILE_WIDTH = 160
MAX_TILES = 100
MIN_TILE_INTERVAL_S = 2
SPRITE_COLUMNS = 10
_SCORE_SIZE = (64, 36)  # enough pixels to judge a picture, few enough to sum in Python
_JPEG_QUALITY = {"qmin": "2", "qmax": "5"}  # mjpeg quantiser range: 2 is best, 31 worst


@dataclass(frozen=True)
class _Tile:
    rgb: bytes  # packed rows of TILE_WIDTH * 3 bytes
    start: Fraction


class ThumbnailCollector:
    """Fed every upright frame once; keeps only what the thumbnails need."""

    def __init__(self, display_width: int, display_height: int, expected_duration_s: float) -> None:
        self.tile_height = _even(TILE_WIDTH * display_height / display_width)
        self.poster_size = _fit_width(display_width, display_height, POSTER_MAX_WIDTH)
        # The header's duration only plans the sampling; a lying header costs tiles, not time.
        expected = Fraction(max(expected_duration_s, 1.0))
        self.tile_interval = max(Fraction(MIN_TILE_INTERVAL_S), expected / MAX_TILES)
        self.poster_step = expected * POSTER_SEARCH_FRACTION / POSTER_CANDIDATES
        self._tiles: list[_Tile] = []
        self._next_candidate = Fraction(0)
        self._candidates_seen = 0
        self._poster: VideoFrame | None = None
        self._poster_score: tuple[bool, float] | None = None

    def add(self, frame: VideoFrame, seconds: Fraction) -> None:
        self.add_tile(frame, seconds)
        self.add_poster_candidate(frame, seconds)

    def add_poster_candidate(self, frame: VideoFrame, seconds: Fraction) -> None:
        if self._candidates_seen < POSTER_CANDIDATES and seconds >= self._next_candidate:
            self._candidates_seen += 1
            self._next_candidate = seconds + self.poster_step
            self._consider_poster(frame)

    def add_tile(self, frame: VideoFrame, seconds: Fraction) -> None:
        """Only for the sprite: no poster candidate."""
        if len(self._tiles) < MAX_TILES and seconds >= len(self._tiles) * self.tile_interval:
            self._tiles.append(_Tile(self._tile_rgb(frame), seconds))

    def write_poster(self, output_dir: Path) -> str:
        """Only the poster (the first task has it while the rest of the video is encoded)."""
        folder = output_dir / THUMBNAIL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        assert self._poster is not None, "the decoder refuses a source without pictures"
        (folder / POSTER).write_bytes(encode_jpeg(self._poster))
        return f"{THUMBNAIL_DIR}/{POSTER}"

    def write_storyboard(self, output_dir: Path, duration: Fraction) -> tuple[str, str]:
        """The sprite and the WebVTT storyboard; returns their paths relative to output_dir."""
        folder = output_dir / THUMBNAIL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SPRITE).write_bytes(encode_jpeg(self._sprite()))
        (folder / STORYBOARD).write_text(self._storyboard(duration), encoding="utf-8")
        return f"{THUMBNAIL_DIR}/{SPRITE}", f"{THUMBNAIL_DIR}/{STORYBOARD}"

    def _consider_poster(self, frame: VideoFrame) -> None:
        mean, variance = luma_statistics(frame)
        score = (POSTER_MIN_LUMA_MEAN <= mean <= POSTER_MAX_LUMA_MEAN, variance)
        if self._poster_score is None or score > self._poster_score:
            self._poster_score = score
            width, height = self.poster_size
            self._poster = frame.reformat(width=width, height=height, format="yuvj420p", interpolation="BICUBIC")

    def _tile_rgb(self, frame: VideoFrame) -> bytes:
        small = frame.reformat(width=TILE_WIDTH, height=self.tile_height, format="rgb24", interpolation="AREA")
        return packed_rows(small, TILE_WIDTH * 3)

    def _sprite(self) -> VideoFrame:
        columns = min(SPRITE_COLUMNS, len(self._tiles))
        rows = math.ceil(len(self._tiles) / columns)
        row_bytes = columns * TILE_WIDTH * 3
        canvas = bytearray(row_bytes * rows * self.tile_height)  # black where no tile falls
        tile_row_bytes = TILE_WIDTH * 3
        for index, tile in enumerate(self._tiles):
            column, row = index % columns, index // columns
            for line in range(self.tile_height):
                at = (row * self.tile_height + line) * row_bytes + column * tile_row_bytes
                canvas[at : at + tile_row_bytes] = tile.rgb[line * tile_row_bytes : (line + 1) * tile_row_bytes]
        return frame_from_rgb(bytes(canvas), columns * TILE_WIDTH, rows * self.tile_height)

    def _storyboard(self, duration: Fraction) -> str:
        columns = min(SPRITE_COLUMNS, len(self._tiles))
        cues = ["WEBVTT", ""]
        for index, tile in enumerate(self._tiles):
            following = self._tiles[index + 1].start if index + 1 < len(self._tiles) else duration
            x, y = (index % columns) * TILE_WIDTH, (index // columns) * self.tile_height
            cues += [
                f"{_timestamp(tile.start)} --> {_timestamp(max(following, tile.start))}",
                f"{SPRITE}#xywh={x},{y},{TILE_WIDTH},{self.tile_height}",
                "",
            ]
        return "\n".join(cues)


def luma_statistics(frame: VideoFrame) -> tuple[float, float]:
    """Mean and variance of the luma of a small grey copy of the frame."""
    width, height = _SCORE_SIZE
    grey = packed_rows(frame.reformat(width=width, height=height, format="gray"), width)
    mean = sum(grey) / len(grey)
    return mean, sum((value - mean) ** 2 for value in grey) / len(grey)


def packed_rows(frame: VideoFrame, row_bytes: int) -> bytes:
    """The first plane's pixels without the padding FFmpeg adds at the end of each line."""
    plane = frame.planes[0]
    data = bytes(plane)
    if plane.line_size == row_bytes:
        return data[: row_bytes * frame.height]
    return b"".join(data[y * plane.line_size : y * plane.line_size + row_bytes] for y in range(frame.height))


def frame_from_rgb(rgb: bytes, width: int, height: int) -> VideoFrame:
    frame = VideoFrame(width, height, "rgb24")
    plane = frame.planes[0]
    row_bytes = width * 3
    if plane.line_size != row_bytes:
        padding = bytes(plane.line_size - row_bytes)
        rgb = b"".join(rgb[y * row_bytes : (y + 1) * row_bytes] + padding for y in range(height))
    plane.update(rgb)
    return frame


def encode_jpeg(frame: VideoFrame) -> bytes:
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = dict(_JPEG_QUALITY)
    picture = frame.reformat(format="yuvj420p")
    picture.pts = 0
    return b"".join(bytes(packet) for packet in encoder.encode(picture) + encoder.encode(None))


def _fit_width(width: int, height: int, max_width: int) -> tuple[int, int]:
    if width <= max_width:
        return _even(width), _even(height)
    return max_width, _even(max_width * height / width)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def _timestamp(seconds: Fraction) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
