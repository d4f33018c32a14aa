"""GET/HEAD /media/…: object bytes by ranged reads, with validators and cache headers."""

from __future__ import annotations

import functools
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from uuid import UUID

from anyio import to_thread
from litestar import Request, Response, get, head
from litestar.response import Stream

from adapters.inbound.http.dependencies import MediaDep
from adapters.inbound.http.media_delivery import (
    MediaDelivery,
    accel_response,
    edge_expiry,
    media_delivery,
    with_edge_lifetime,
)
from adapters.inbound.http.problems import problem
from adapters.inbound.http.ranges import Unsatisfiable, parse_range
from application.errors import NotFound
from application.media_layout import MANIFEST_SUFFIXES, media_type
from application.playback import CachedFile, PlaybackCache
from application.ports import ObjectInfo, ObjectStorage
from application.streaming import MediaFile, Streaming

IMMUTABLE = "public, max-age=31536000, immutable"
MANIFEST_CACHE = "public, max-age=300"
GROWING_MANIFEST_CACHE = "public, max-age=10"  # renditions are still being added
SIGNED_CACHE = "private, max-age=3600"


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
        video_id = UUID(parts[0])
    except ValueError:
        raise NotFound("no such media file") from None
    return token, video_id, "/".join(parts[1:])


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
                 delivery: MediaDelivery | None = None) -> Response:
    token, video_id, name = split_media_path(request)
    # Warm requests answer from memory, on the loop; the rest wait on the event store or Redis in a thread.
    file = streaming.known_media_file(video_id, name, token) or await to_thread.run_sync(
        streaming.media_file, video_id, name, token,
    )
    delivery = delivery or media_delivery(request)
    cache = with_edge_lifetime(cache_control(file, name), delivery.edge_max_age)
    if name.endswith(MANIFEST_SUFFIXES):
        manifest = streaming.playback.known_manifest(f"{file.key}@{file.version}") or await cached_manifest(
            streaming.playback, storage, file.key, file.version,
        )
        response = _manifest_response(request, manifest, cache, media_type(name), body=body)
        if delivery.accel_prefix is not None:  # behind the gateway: how long it may reuse the answer
            response.headers.update(edge_expiry(delivery, cache))
        return response
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


def _header(request: Request, name: bytes) -> str | None:
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


@functools.lru_cache(maxsize=1024)
def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _manifest_response(request: Request, manifest: CachedFile, cache: str, content_type: str, *, body: bool) -> Response:
    """Whole manifests only: a server may ignore Range, and manifests are a few KiB."""
    headers = {"ETag": manifest.etag, "Cache-Control": cache}
    if manifest.last_modified:
        headers["Last-Modified"] = _http_date(manifest.last_modified)
    if_none_match = _header(request, b"if-none-match")  # not request.headers: it decodes them all
    if if_none_match and _etag_matches(if_none_match, manifest.etag):
        return Response(content=b"", status_code=304, headers=headers)
    headers["Content-Length"] = str(len(manifest.data))
    content = manifest.data if body else b""
    return Response(content=content, status_code=200, headers=headers, media_type=content_type)


@get("/media/{rest:path}", tags=["streaming"], security=[{}])
async def get_media(request: Request, media: MediaDep) -> Response:
    """Media bytes of ready videos; `Range`, `If-None-Match` and `If-Range` are honoured."""
    return await _media(request, media.streaming, media.storage, body=True, delivery=media.delivery)


@head("/media/{rest:path}", tags=["streaming"], security=[{}])
async def head_media(request: Request, media: MediaDep) -> Response[None]:
    """The headers GET would send."""
    return await _media(request, media.streaming, media.storage, body=False, delivery=media.delivery)
