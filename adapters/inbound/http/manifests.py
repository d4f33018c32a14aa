"""Manifests served away from their folder (stream ?delivery=proxy) must not rely on relative
URIs, which a player would resolve against the API path: point them at the media folder."""

from __future__ import annotations

import re

URI_ATTRIBUTE = re.compile(r'URI="([^"]+)"')


def _absolute(uri: str, folder_url: str) -> str:
    return uri if "://" in uri or uri.startswith("/") else f"{folder_url}/{uri}"


def rebase_hls(playlist: str, folder_url: str) -> str:
    lines = []
    for line in playlist.splitlines():
        if line and not line.startswith("#"):
            line = _absolute(line.strip(), folder_url)
        elif line.startswith("#"):
            line = URI_ATTRIBUTE.sub(lambda m: f'URI="{_absolute(m.group(1), folder_url)}"', line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def rebase_dash(mpd: str, folder_url: str) -> str:
    """Insert a BaseURL as the MPD's first child; SegmentTemplate URLs resolve against it."""
    match = re.search(r"<MPD\b[^>]*>", mpd)
    if match is None or "<BaseURL>" in mpd:
        return mpd
    return f"{mpd[:match.end()]}\n  <BaseURL>{folder_url}/</BaseURL>{mpd[match.end():]}"
