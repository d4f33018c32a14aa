"""Video routes: upload, read, edit, delete, status events and history (playing one: playback.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from adapters.inbound.http.dependencies import (
    BulkheadsDep,
    ListingDep,
    PrincipalDep,
    StatusFeedDep,
    VideosDep,
)
from adapters.inbound.http.multipart import upload_events
from adapters.inbound.http.schemas import VideoPatchRequest
from application.errors import PayloadTooLarge
from application.listing import VideoPage
from application.status_feed import ProcessingState
from application.video_views import VideoView
from application.videos import HistoryEntry
from domain.genres import GENRES
from domain.videos import FAILED, READY

FINAL_STATUSES = (READY, FAILED)
MAX_EVENT_STREAM_S = 30 * 60  # bounds how long one client holds a stream
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
                "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="the video"),
                "title": Schema(type=OpenAPIType.STRING, max_length=200, description="default: the file name"),
                "description": Schema(type=OpenAPIType.STRING, max_length=5000),
                "tags": Schema(type=OpenAPIType.STRING, description="comma separated"),
                "genre": Schema(type=OpenAPIType.STRING, enum=list(GENRES)),
                "visibility": Schema(type=OpenAPIType.STRING, enum=["public", "unlisted", "private"]),
            },
        )
        self.request_body = RequestBody(content={"multipart/form-data": OpenAPIMediaType(schema=form)}, required=True)


class VideosController(Controller):
    path = "/api/videos"
    tags = ["videos"]

    @get("", sync_to_thread=True)
    def list_videos(
        self, principal: PrincipalDep, listing: ListingDep,
        owner: Annotated[UUID | None, QueryParameter(description="only this owner's videos")] = None,
        tag: Annotated[str | None, QueryParameter(max_length=32)] = None,
        q: Annotated[str | None, QueryParameter(max_length=200, description="words of title, description, tags")] = None,
        genre: Annotated[str | None, QueryParameter(max_length=32, description="one of GET /api/videos/genres")] = None,
        sort: Annotated[str, QueryParameter(max_length=16, description="newest, views or likes")] = "newest",
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> VideoPage:
        """Public, ready videos, newest first (or `sort=views|likes`); follow `next_cursor` for the next page."""
        return listing.list_public(owner=owner, tag=tag, query=q, genre=genre, sort=sort, cursor=cursor, limit=limit,
                                   viewer_id=principal.user_id)

    @get("/genres")
    async def genres(self, principal: PrincipalDep) -> list[str]:
        """The genres a video may have."""
        del principal  # every /api route needs a token
        return list(GENRES)

    @post(
        "/upload", status_code=202, operation_class=UploadOperation, request_max_body_size=None
    )
    async def upload(self, request: Request, principal: PrincipalDep, videos: VideosDep) -> Response[VideoView]:
        """Upload a video as multipart/form-data (`file`, `title`, `description`, `tags`, `genre`,
        `visibility`); it is streamed to storage and checked from its bytes."""
        videos.check_may_upload(principal)
        announced = request.headers.get("content-length")
        if announced and announced.isdigit() and int(announced) > videos.max_upload_bytes + MULTIPART_OVERHEAD:
            raise PayloadTooLarge(f"the upload is over the limit of {videos.max_upload_bytes} bytes")
        events = upload_events(request.headers.get("content-type", ""), request.stream(),
                               read_timeout_s=request.app.state.get("upload_read_timeout_s", 60.0))
        video = await videos.upload(principal, events)
        return Response(video, status_code=202, headers={"Location": f"/api/videos/{video.id}"})

    @get("/{video_id:uuid}")
    async def get_video(
        self, video_id: FromPath[UUID], principal: PrincipalDep, videos: VideosDep, bulkheads: BulkheadsDep,
    ) -> VideoView:
        """One video; others' private videos are not found."""
        return await bulkheads.event_store.run(videos.get_video, principal, video_id)

    @patch("/{video_id:uuid}")
    async def edit_video(
        self, video_id: FromPath[UUID], data: JSONBody[VideoPatchRequest], principal: PrincipalDep, videos: VideosDep,
        bulkheads: BulkheadsDep,
    ) -> VideoView:
        """Change title, description, tags, genre or visibility (owner, moderator, admin). A JSON merge
        patch: absent fields stay, null clears description, tags or genre (and is refused for the others)."""
        values, cleared = data.given()
        return await bulkheads.event_store.run(
            lambda: videos.edit_details(principal, video_id, **values, cleared=cleared))

    @delete("/{video_id:uuid}", status_code=204)
    async def delete_video(
        self, video_id: FromPath[UUID], principal: PrincipalDep, videos: VideosDep, bulkheads: BulkheadsDep,
    ) -> None:
        """Delete (owner, moderator, admin); its media is removed in the background."""
        await bulkheads.event_store.run(videos.delete_video, principal, video_id)

    @post("/{video_id:uuid}/retry", status_code=202)
    async def retry(
        self, video_id: FromPath[UUID], principal: PrincipalDep, videos: VideosDep, bulkheads: BulkheadsDep,
    ) -> VideoView:
        """Re-drive a failed video's processing (owner, moderator, admin); 409 unless it failed."""
        return await bulkheads.event_store.run(videos.retry, principal, video_id)

    @get("/{video_id:uuid}/history")
    async def history(
        self, video_id: FromPath[UUID], principal: PrincipalDep, videos: VideosDep, bulkheads: BulkheadsDep,
    ) -> list[HistoryEntry]:
        """The video's domain events: its audit trail (owner, moderator, admin)."""
        return await bulkheads.event_store.run(videos.history, principal, video_id)

    @get("/{video_id:uuid}/events")
    async def status_events(
        self, video_id: FromPath[UUID], principal: PrincipalDep, status_feed: StatusFeedDep, bulkheads: BulkheadsDep,
    ) -> ServerSentEvent:
        """Server-Sent Events of the status, the current one first, until it is ready or failed.
        The stream also ends when the caller's token expires (reconnect with a fresh one).
        At most a few streams per user are open at once (429 beyond)."""
        subscription = await status_feed.open(principal, video_id)
        try:
            state = await bulkheads.event_store.run(status_feed.visible_state, principal, video_id)
        except BaseException:
            status_feed.close(subscription)
            raise
        status_feed.watch_job(state, video_id)
        ends_at = min(principal.expires_at, datetime.now(UTC) + timedelta(seconds=MAX_EVENT_STREAM_S))

        async def changes() -> AsyncIterator[ServerSentEventMessage]:
            try:
                async for message in status_messages(state, subscription.receive, ends_at):
                    yield message
            finally:
                status_feed.close(subscription)

        return ServerSentEvent(changes())


class MyVideosController(Controller):
    path = "/api/users/me/videos"
    tags = ["videos"]

    @get("", sync_to_thread=True)
    def my_videos(
        self, principal: PrincipalDep, listing: ListingDep, cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> VideoPage:
        """The caller's own videos, any status or visibility, newest first (as the catalog has them)."""
        return listing.list_owned(principal.user_id, cursor=cursor, limit=limit)


async def status_messages(
    first: ProcessingState, states: MemoryObjectReceiveStream[ProcessingState], ends_at: datetime,
) -> AsyncIterator[ServerSentEventMessage]:
    """The status first; then, for each new state, the renditions that became streamable, the
    status if it changed (after the renditions, so that `ready` comes last) and the progress."""
    current, shown, published = first.status, None, set()
    yield ServerSentEventMessage(data=current, event="status")  # the first event, always
    if current in FINAL_STATUSES:
        return
    state = first
    while True:
        for rendition in state.renditions:
            if rendition.name not in published:
                published.add(rendition.name)
                data = {"name": rendition.name, "width": rendition.width, "height": rendition.height}
                yield ServerSentEventMessage(data=msgspec.json.encode(data).decode(), event="rendition")
        if state.status != current:
            current = state.status
            yield ServerSentEventMessage(data=current, event="status")
        if state.status == "processing" and state.progress != shown:
            shown = state.progress
            yield ServerSentEventMessage(data=msgspec.json.encode({"progress": shown}).decode(), event="progress")
        if current in (*FINAL_STATUSES, "deleted"):
            return
        with anyio.move_on_after((ends_at - datetime.now(UTC)).total_seconds()):
            state = await states.receive()
            continue
        return  # the token expired, or the stream's time is up
