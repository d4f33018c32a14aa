"""Play a video, top to bottom: GET /api/videos/stream/{id} picks the file that plays it
(application/streaming.py) and redirects to it under /media, or proxies it; GET/HEAD /media/…
then serves the object's bytes by ranged reads, with validators and cache headers, once
streaming.media_file has said the caller may have it. What a video's playback needs to know is
read through the cache in application/playback.py."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated
from uuid import UUID

from anyio import to_thread
from litestar import Controller, Request, Response, get, head
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream
from litestar.types import ASGIApp

from adapters.inbound.http.answers import PlainAnswer, header
from adapters.inbound.http.dependencies import BulkheadsDep, MediaDep, PrincipalDep, StorageDep, StreamingDep
from adapters.inbound.http.media_delivery import (
    MediaDelivery,
    accel_response,
    edge_expiry,
    media_delivery,
    with_edge_lifetime,
)
from adapters.inbound.http.problems import problem
from adapters.inbound.http.ranges import Unsatisfiable, parse_range
from application.errors import NotFound, ValidationError
from application.media_layout import MANIFEST_SUFFIXES, media_type
from application.playback import CachedFile, PlaybackCache
from application.ports import ObjectInfo, ObjectStorage
from application.streaming import MediaFile, Streaming, StreamTarget, format_from_accept

IMMUTABLE = "public, max-age=31536000, immutable"
MANIFEST_CACHE = "public, max-age=300"
GROWING_MANIFEST_CACHE = "public, max-age=10"  # renditions are still being added
SIGNED_CACHE = "private, max-age=3600"
PROXIED_CACHE = "private, no-store"


class StreamController(Controller):
    path = "/api/videos"
    tags = ["videos"]

    @get("/stream/{video_id:uuid}", status_code=302)
    async def stream(
        self, request: Request, video_id: FromPath[UUID], principal: PrincipalDep, streaming: StreamingDep,
        storage: StorageDep, bulkheads: BulkheadsDep,
        format: Annotated[str | None, QueryParameter(description="hls, dash or mp4")] = None,
        quality: Annotated[str, QueryParameter(description="240p…1080p or auto")] = "auto",
        delivery: Annotated[str, QueryParameter(description="redirect or proxy")] = "redirect",
    ) -> Response:
        """Play a video: 302 to its media URL, or the bytes themselves with ?delivery=proxy."""
        if delivery not in ("redirect", "proxy"):
            raise ValidationError("delivery", "redirect or proxy")
        fmt = format or format_from_accept(request.headers.get("accept"))
        target = await bulkheads.event_store.run(streaming.stream, principal, video_id, fmt, quality)
        if delivery == "redirect" and streaming.redirects:
            return Response(content=b"", status_code=302, headers={"Location": target.url, "Cache-Control": "no-store"})
        return await _proxy(request, storage, streaming, target)


async def _proxy(request: Request, storage: StorageDep, streaming: Streaming, target: StreamTarget) -> Response:
    """Serve the file here; manifests get absolute URIs since their neighbours stay under /media.
    This URL needs a token and its bytes depend on Accept: no shared cache may keep them."""
    if not target.key.endswith((".m3u8", ".mpd")):
        return await serve_object(request, storage, target.key, PROXIED_CACHE, body=True)
    info = await storage.head(target.key)
    text = (await storage.get_range(target.key, 0, info.size if info else 0)).decode()
    folder = target.url.rsplit("/", 1)[0]
    body = rebase_hls(text, folder) if target.key.endswith(".m3u8") else rebase_dash(text, folder)
    media = "application/vnd.apple.mpegurl" if target.key.endswith(".m3u8") else "application/dash+xml"
    return Response(content=body.encode(), status_code=200, media_type=media, headers={"Cache-Control": PROXIED_CACHE})


# Manifests served away from their folder (stream ?delivery=proxy) must not rely on relative
# URIs, which a player would resolve against the API path: point them at the media folder.

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


def split_media_path(request: Request) -> tuple[str | None, UUID, str]:
    """(token, video id, relative file) from /media/[t/{token}/]{id}/{file…}; NotFound otherwise."""
    raw_path = request.scope.get("raw_path", b"").decode("latin-1").lower()
    if "%2f" in raw_path or "%5c" in raw_path:  # an encoded slash would smuggle a path segment
        raise NotFound("no such media file")
    parts = request.scope["path"].removeprefix("/media/").split("/")
    token = None
    if parts[0] == "t" and len(parts) >= 3:
        token, parts = parts[1], parts[2:]
    try:
        video_id = _video_id(parts[0])
    except ValueError:
        raise NotFound("no such media file") from None
    return token, video_id, "/".join(parts[1:])


@functools.lru_cache(maxsize=4096)  # a player asks for many files of one video: parse its id once
def _video_id(text: str) -> UUID:
    return UUID(text)


def cache_control(file: MediaFile, name: str) -> str:
    if not file.final and name.endswith(MANIFEST_SUFFIXES):
        return GROWING_MANIFEST_CACHE if file.public else "private, max-age=10"
    if not file.public:
        return SIGNED_CACHE
    if name.endswith(MANIFEST_SUFFIXES):
        return MANIFEST_CACHE if file.final else GROWING_MANIFEST_CACHE
    return IMMUTABLE


def _etag(info: ObjectInfo) -> str:
    tag = (info.etag or f"{info.size:x}").strip('"')
    return f'"{tag}"'


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [candidate.strip().removeprefix("W/") for candidate in header.split(",")]
    return "*" in candidates or etag in candidates


def _if_range_allows(request: Request, etag: str, info: ObjectInfo) -> bool:
    """A Range is honoured only while the client's copy is still current (If-Range)."""
    condition = request.headers.get("if-range")
    if not condition:
        return True
    if condition.startswith('"'):
        return condition == etag
    try:
        return info.last_modified is not None and parsedate_to_datetime(condition) >= info.last_modified.replace(microsecond=0)
    except (TypeError, ValueError):
        return False


async def serve_object(request: Request, storage: ObjectStorage, key: str, cache: str, *, body: bool) -> Response:
    """The object, or the one range asked for, streamed from storage."""
    info = await storage.head(key)
    if info is None:
        raise NotFound("no such media file")
    etag = _etag(info)
    headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": cache, "Content-Type": media_type(key)}
    if info.last_modified:
        headers["Last-Modified"] = format_datetime(info.last_modified, usegmt=True)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and _etag_matches(if_none_match, etag):
        return Response(content=b"", status_code=304, headers=headers)
    try:
        byte_range = parse_range(request.headers.get("range"), info.size) if _if_range_allows(request, etag, info) else None
    except Unsatisfiable:
        return problem(416, f"the range is outside the {info.size} bytes of this file",
                       headers={"Content-Range": f"bytes */{info.size}", "Accept-Ranges": "bytes"})
    start, end, status = 0, info.size, 200
    if byte_range:
        start, end, status = byte_range.start, byte_range.end, 206
        headers["Content-Range"] = byte_range.content_range(info.size)
    headers["Content-Length"] = str(end - start)
    if not body:
        return Response(content=b"", status_code=status, headers=headers)
    return Stream(storage.stream(key, start, end), status_code=status, headers=headers)


async def _media(request: Request, streaming: Streaming, storage: ObjectStorage, *, body: bool,
                 delivery: MediaDelivery | None = None) -> Response | PlainAnswer:
    token, video_id, name = split_media_path(request)
    # Warm requests answer from memory, on the loop; the rest wait on the event store or Redis in a thread.
    file = streaming.known_media_file(video_id, name, token)
    if file is None:
        file = await to_thread.run_sync(streaming.media_file, video_id, name, token)
    delivery = delivery or media_delivery(request)
    cache = with_edge_lifetime(cache_control(file, name), delivery.edge_max_age)
    if name.endswith(MANIFEST_SUFFIXES):
        manifest = streaming.playback.known_manifest(f"{file.key}@{file.version}") or await cached_manifest(
            streaming.playback, storage, file.key, file.version,
        )
        return _manifest_answer(request, manifest, cache, media_type(name), edge_expiry(delivery, cache), body=body)
    if delivery.accel_prefix is not None:
        return accel_response(delivery, file.key, cache)
    return await serve_object(request, storage, file.key, cache, body=body)


async def cached_manifest(playback: PlaybackCache, storage: ObjectStorage, key: str, version: str = "") -> CachedFile:
    """Players re-read manifests far more often than segments: keep them in the cache, under
    the version of the video's manifests, since they grow while renditions are published."""
    cache_key = f"{key}@{version}"
    cached = await to_thread.run_sync(playback.manifest, cache_key)
    if cached is not None:
        return cached
    info = await storage.head(key)
    if info is None:
        raise NotFound("no such media file")
    cached = CachedFile(data=await storage.get_range(key, 0, info.size), etag=_etag(info),
                        last_modified=info.last_modified)
    await to_thread.run_sync(playback.remember_manifest, cache_key, cached)
    return cached


@functools.lru_cache(maxsize=1024)
def _http_date(moment: datetime) -> bytes:
    return format_datetime(moment, usegmt=True).encode("latin-1")


def _manifest_answer(request: Request, manifest: CachedFile, cache: str, content_type: str,
                     extra: dict[str, str], *, body: bool) -> PlainAnswer:
    """Whole manifests only: a server may ignore Range, and manifests are a few KiB."""
    headers = [(b"etag", manifest.etag.encode("latin-1")), (b"cache-control", cache.encode("latin-1"))]
    if manifest.last_modified:
        headers.append((b"last-modified", _http_date(manifest.last_modified)))
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]
    if_none_match = header(request.scope, b"if-none-match")
    if if_none_match and _etag_matches(if_none_match, manifest.etag):
        return PlainAnswer(304, headers, b"")
    headers += [(b"content-length", str(len(manifest.data)).encode()), (b"content-type", content_type.encode("latin-1"))]
    return PlainAnswer(200, headers, manifest.data if body else b"")


@get("/media/{rest:path}", tags=["streaming"], security=[{}])
async def get_media(request: Request, media: MediaDep) -> ASGIApp:
    """Media bytes of ready videos; `Range`, `If-None-Match` and `If-Range` are honoured."""
    # ASGIApp: see answers.py.
    return await _media(request, media.streaming, media.storage, body=True, delivery=media.delivery)  # type: ignore[return-value]


@head("/media/{rest:path}", tags=["streaming"], security=[{}])
async def head_media(request: Request, media: MediaDep) -> Response[None]:
    """The headers GET would send."""
    answer = await _media(request, media.streaming, media.storage, body=False, delivery=media.delivery)
    return answer.as_response() if isinstance(answer, PlainAnswer) else answer
