"""A video's media as its events record it: the renditions that can be streamed, the manifests
that list them and the thumbnails, each an object key (media_links makes URLs of them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec


class Rendition(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    name: str  # the rung, e.g. "720p": what ?quality= names
    width: int
    height: int
    bitrate: int
    hls: str | None = None  # this rung's own HLS playlist; None in videos processed before there were any
    mp4: str | None = None  # the progressive MP4 remuxed from this rung (one rung has it), once ready


class Manifests(msgspec.Struct, frozen=True, omit_defaults=True):
    hls: str | None = None  # the master playlist of every published rung
    dash: str | None = None


class Thumbnails(msgspec.Struct, frozen=True, omit_defaults=True):
    poster: str | None = None
    sprite: str | None = None
    storyboard: str | None = None

    def merged(self, newer: Thumbnails) -> Thumbnails:
        """These, with those newer has replacing them."""
        return msgspec.structs.replace(self, **{name: key for name, key in named(newer).items()})


def named(struct: Manifests | Thumbnails) -> dict[str, str]:
    """name → object key of those present."""
    return {name: key for name, key in msgspec.structs.asdict(struct).items() if key is not None}


def progressive(renditions: Sequence[Rendition]) -> Rendition | None:
    """The rendition whose progressive MP4 exists, if one does."""
    return next((rendition for rendition in renditions if rendition.mp4 is not None), None)


def upcast_untyped(state: dict[str, Any]) -> None:
    """Media recorded as plain dicts (events before class_version 2, catalog rows written before
    them): the progressive MP4 sat in manifests["mp4"], its rung known only from its file name
    ("…/mp4/720p.mp4"). Read that name here, once, and give the MP4 to its rendition."""
    manifests = {**state.get("manifests", {})}
    mp4 = manifests.pop("mp4", None)
    quality = mp4.rsplit("/", 1)[-1].removesuffix(".mp4") if isinstance(mp4, str) else None
    state["renditions"] = [
        msgspec.convert({**rendition, **({"mp4": mp4} if rendition["name"] == quality else {})}, Rendition)
        if isinstance(rendition, dict) else rendition
        for rendition in state.get("renditions", [])
    ]
    state["manifests"] = msgspec.convert(manifests, Manifests)
    if isinstance(state.get("thumbnails"), dict):
        state["thumbnails"] = msgspec.convert(state["thumbnails"], Thumbnails)
