"""Genres: one fixed list, so that filtering and related videos mean the same thing everywhere."""

from __future__ import annotations

from domain.errors import ValidationError

GENRES = (
    "film", "animation", "music", "sports", "gaming", "education", "science", "news", "travel", "comedy",
    "people", "howto", "other",
)


def check_genre(genre: str) -> str:
    """The genre, case-folded; refused unless it is one of GENRES."""
    folded = genre.strip().casefold()
    if folded not in GENRES:
        raise ValidationError("genre", f"one of {', '.join(GENRES)}")
    return folded
