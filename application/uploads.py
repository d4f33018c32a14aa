"""What an upload looks like to the use case, whatever protocol carried it (multipart, tus):
a flat stream of form fields and one file's bytes, consumed in arrival order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from domain.genres import check_genre
from domain.videos import check_visibility, clean_description, clean_title, split_tags

# Extensions kept on the stored original; anything else is stored without one. The bytes,
# not the name, decide whether it is a video.
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".3gp", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".mpg",
    ".mpeg", ".vob", ".flv", ".ogv", ".ogg",
})

CONTENT_TYPES = {
    "mp4": "video/mp4", "matroska": "video/x-matroska", "webm": "video/webm", "avi": "video/x-msvideo",
    "mpegts": "video/mp2t", "mpegps": "video/mpeg", "flv": "video/x-flv", "ogg": "video/ogg",
}


@dataclass(frozen=True)
class FormField:
    name: str
    value: str


@dataclass(frozen=True)
class FileStart:
    field: str
    filename: str


@dataclass(frozen=True)
class FileChunk:
    data: bytes


@dataclass(frozen=True)
class FileEnd:
    pass


UploadEvent = FormField | FileStart | FileChunk | FileEnd


def safe_extension(filename: str) -> str:
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.casefold()
    return suffix if suffix in VIDEO_EXTENSIONS else ""


def title_from_filename(filename: str) -> str:
    """The default title: the file's name without folders or extension."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    stem = name[: -len(PurePosixPath(name).suffix)] if PurePosixPath(name).suffix else name
    return stem.strip()[:200] or "Untitled"


def upload_details(fields: dict[str, str], filename: str) -> dict[str, Any]:
    """The video's details from the form fields (or tus metadata), checked: a bad title is
    refused before any byte is inspected."""
    title = fields.get("title", "").strip() or title_from_filename(filename)
    return {
        "title": clean_title(title),
        "description": clean_description(fields.get("description", "")),
        "tags": split_tags(fields.get("tags", "")),
        "visibility": check_visibility(fields.get("visibility", "").strip() or "public"),
        "genre": check_genre(fields["genre"]) if fields.get("genre", "").strip() else None,
    }
