"""Video routes: streamed upload and reading one video."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath

from adapters.inbound.http.dependencies import PrincipalDep, VideosDep
from adapters.inbound.http.multipart import upload_events
from application.errors import PayloadTooLarge
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
