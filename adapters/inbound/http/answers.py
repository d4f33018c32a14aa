"""Whole answers as plain ASGI, for the hottest routes: a warm manifest, the gateway's token
check. Litestar's Response and ASGIResponse would cost them more than the rest of their path.
A handler returning one is annotated `ASGIApp`, so that Litestar sends it as it is (a Response
it still converts); its OpenAPI answer is declared on the route."""

from __future__ import annotations

from litestar import Response
from litestar.types import Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]


class PlainAnswer:
    """Build one per request, never cache one: the outer layer (middleware/observe.py) extends
    its header list in place."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})

    def as_response(self) -> Response:
        """For HEAD, whose handlers Litestar wants to return a Response."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in self.headers}
        content_type = headers.pop("content-type", None)
        return Response(content=b"", status_code=self.status, headers=headers, media_type=content_type)


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (name in lower case, as ASGI gives them), without
    request.headers, which decodes them all."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
