"""Where a video's files live in object storage, and how media URLs name them.

A media file is named relative to the video: `cmaf/…` and `mp4/…` live under
processed/{id}/, `thumbnails/…` under thumbnails/{id}/."""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID

MEDIA_FOLDERS = ("cmaf", "mp4", "thumbnails")
MEDIA_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml", ".m4s": "video/iso.segment",
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".m4a": "audio/mp4", ".jpg": "image/jpeg", ".vtt": "text/vtt",
}
MANIFEST_SUFFIXES = (".m3u8", ".mpd")


def media_type(name: str) -> str:
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return MEDIA_TYPES.get(suffix, "application/octet-stream")


def object_key(video_id: UUID, relative: str) -> str:
    if relative.startswith("thumbnails/"):
        return f"thumbnails/{video_id}/{relative.removeprefix('thumbnails/')}"
    return f"processed/{video_id}/{relative}"


def plan_folder(video_id: UUID, plan_id: UUID) -> str:
    """Every object of one plan lives under here: a superseded plan never touches another's."""
    return f"processed/{video_id}/{plan_id}"


def plan_object(video_id: UUID, plan_id: UUID, relative: str) -> str:
    """Thumbnails too: a superseded plan's late poster never replaces the current one's."""
    return f"{plan_folder(video_id, plan_id)}/{relative}"


def relative_name(video_id: UUID, key: str) -> str:
    """The inverse of object_key."""
    for prefix, folder in ((f"thumbnails/{video_id}/", "thumbnails/"), (f"processed/{video_id}/", "")):
        if key.startswith(prefix):
            return folder + key.removeprefix(prefix)
    raise ValueError(f"{key} is not a file of video {video_id}")


def is_safe_media_name(relative: str) -> bool:
    """Inside one of the video's folders (`{plan}/cmaf/…`, `{plan}/mp4/…` or `thumbnails/…`;
    videos processed before plans existed have no plan part), with no way out of it."""
    if not relative or len(relative) > 512 or any(ch in relative for ch in "\\\x00%?#"):
        return False
    parts = relative.split("/")
    if plan_of(relative) is not None:
        parts = parts[1:]
    return len(parts) >= 2 and parts[0] in MEDIA_FOLDERS and all(part not in ("", ".", "..") for part in parts)


def plan_of(relative: str) -> UUID | None:
    """The plan a media name belongs to, if it names one."""
    first = relative.split("/", 1)[0]
    return _plan_named(first) if len(first) == 36 else None


@lru_cache(maxsize=4096)  # every request for a segment names its plan: parse each spelling once
def _plan_named(first: str) -> UUID | None:
    try:
        plan = UUID(first)
    except ValueError:
        return None
    return plan if str(plan) == first else None  # one spelling per plan, so one cache entry
