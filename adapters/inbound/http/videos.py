"""Video routes: streamed upload and reading one video."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from anyio import to_thread
from litestar.params import FromPath, QueryParameter
from typing import Annotated

from adapters.inbound.http.dependencies import PrincipalDep, StorageDep, StreamingDep, VideosDep
from adapters.inbound.http.manifests import rebase_dash, rebase_hls
from adapters.inbound.http.media import IMMUTABLE, SIGNED_CACHE, serve_object
from adapters.inbound.http.multipart import upload_events
from application.errors import PayloadTooLarge, ValidationError
from application.streaming import Streaming, StreamTarget, format_from_accept
from application.videos import VideoView

# Room for the form's boundaries, part headers and text fields around the file itself.
MULTIPART_OVERHEAD = 1024 * 1024


@dataclass
class UploadOperation(Operation):
    """The body is parsed by hand (streamed), so OpenAPI is told its shape explicitly."""

    def __post_init__(self) -> None:
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["file"],
            properties={
                "file": Schema(type=OpenAPIType.STRING, format="binary", description="the video"),
                "title": Schema(type=OpenAPIType.STRING, max_length=200, description="default: the file name"),
                "description": Schema(type=OpenAPIType.STRING, max_length=5000),
                "tags": Schema(type=OpenAPIType.STRING, description="comma separated"),
                "visibility": Schema(type=OpenAPIType.STRING, enum=["public", "unlisted", "private"]),
            },
        )
        self.request_body = RequestBody(content={"multipart/form-data": OpenAPIMediaType(schema=form)}, required=True)


class VideosController(Controller):
    path = "/api/videos"
    tags = ["videos"]

    @post(
        "/upload", status_code=202, operation_class=UploadOperation, request_max_body_size=None
    )
    async def upload(self, request: Request, principal: PrincipalDep, videos: VideosDep) -> Response[VideoView]:
        """Upload a video as multipart/form-data (`file`, `title`, `description`, `tags`,
        `visibility`); it is streamed to storage and checked from its bytes."""
        videos.check_may_upload(principal)
        announced = request.headers.get("content-length")
        if announced and announced.isdigit() and int(announced) > videos.max_upload_bytes + MULTIPART_OVERHEAD:
            raise PayloadTooLarge(f"the upload is over the limit of {videos.max_upload_bytes} bytes")
        events = upload_events(request.headers.get("content-type", ""), request.stream())
        video = await videos.upload(principal, events)
        return Response(video, status_code=202, headers={"Location": f"/api/videos/{video.id}"})

    @get("/{video_id:uuid}", sync_to_thread=True)
    def get_video(self, video_id: FromPath[UUID], principal: PrincipalDep, videos: VideosDep) -> VideoView:
        """One video; others' private videos are not found."""
        return videos.get_video(principal, video_id)

    @get("/stream/{video_id:uuid}", status_code=302)
    async def stream(
        self, request: Request, video_id: FromPath[UUID], principal: PrincipalDep, streaming: StreamingDep,
        storage: StorageDep, format: Annotated[str | None, QueryParameter(description="hls, dash or mp4")] = None,
        quality: Annotated[str, QueryParameter(description="240p…1080p or auto")] = "auto",
        delivery: Annotated[str, QueryParameter(description="redirect or proxy")] = "redirect",
    ) -> Response:
        """Play a video: 302 to its media URL, or the bytes themselves with ?delivery=proxy."""
        if delivery not in ("redirect", "proxy"):
            raise ValidationError("delivery", "redirect or proxy")
        fmt = format or format_from_accept(request.headers.get("accept"))
        target = await to_thread.run_sync(streaming.stream, principal, video_id, fmt, quality)
        if delivery == "redirect" and streaming.redirects:
            return Response(content=b"", status_code=302, headers={"Location": target.url, "Cache-Control": "no-store"})
        return await _proxy(request, storage, streaming, target)


async def _proxy(request: Request, storage: StorageDep, streaming: Streaming, target: StreamTarget) -> Response:
    """Serve the file here; manifests get absolute URIs since their neighbours stay under /media."""
    cache = IMMUTABLE if target.public else SIGNED_CACHE
    if not target.key.endswith((".m3u8", ".mpd")):
        return await serve_object(request, storage, target.key, cache, body=True)
    info = await storage.head(target.key)
    text = (await storage.get_range(target.key, 0, info.size if info else 0)).decode()
    folder = target.url.rsplit("/", 1)[0]
    body = rebase_hls(text, folder) if target.key.endswith(".m3u8") else rebase_dash(text, folder)
    media = "application/vnd.apple.mpegurl" if target.key.endswith(".m3u8") else "application/dash+xml"
    return Response(content=body.encode(), status_code=200, media_type=media, headers={"Cache-Control": "no-store"})
