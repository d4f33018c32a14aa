"""The browser client: static files in the package, served at `/` and at the client's own paths.

The pages are plain ES modules (no build step). Every document gets a strict Content-Security-
Policy: scripts only from this origin and never inline, so user text that slipped into the DOM as
markup still could not run."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

STATIC_DIR = Path(__file__).parent / "static"
# Our own table: the system's MIME database may be missing, and with `nosniff` a module
# script served without a JavaScript type does not run. (Litestar adds the charset to text/*.)
CONTENT_TYPES = {
    ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json",
}

# The client's own paths: a reload or a shared link on any of them gets the same page, whose
# router draws the right view. Everything else stays the API's (an unknown path is a 404).
CLIENT_PATHS = (
    "/", "/signin", "/signup", "/upload", "/my", "/browse", "/admin",
    "/watch/{video_id:str}", "/shared/{video_id:str}",
)


def content_security_policy(media_origins: Sequence[str] = ()) -> str:
    """The policy of the client's documents; `media_origins` (a CDN) may serve media and images."""
    extra = "".join(f" {origin}" for origin in media_origins)
    return "; ".join((
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data: blob:{extra}",
        f"media-src 'self' blob:{extra}",
        "worker-src 'self' blob:",  # hls.js transmuxes in a worker made from a blob
        f"connect-src 'self'{extra}",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ))


def origin_of(url: str | None) -> list[str]:
    """The origin of an absolute URL (a CDN base URL), or nothing for a path or None."""
    if not url:
        return []
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


def web_client_handlers(media_origins: Sequence[str] = ()) -> list[ControllerRouterHandler]:
    """The route handlers of the client's pages and of its static files."""
    policy = content_security_policy(media_origins)
    index = (STATIC_DIR / "index.html").read_bytes()

    @get(list(CLIENT_PATHS), include_in_schema=True, tags=["web client"], security=[{}], media_type="text/html",
         sync_to_thread=False, name="web-client")
    def page() -> Response[bytes]:
        """The browser client (one page; its script draws the view of the path)."""
        return Response(index, media_type="text/html", headers={
            "Content-Security-Policy": policy, "Cache-Control": "no-cache",
        })

    @get("/static/{name:path}", include_in_schema=False, security=[{}], sync_to_thread=True, name="web-static")
    def static(name: FromPath[str], request: Request) -> Response[bytes]:
        """A file of the client; revalidated on each use (no-cache + ETag) so an upgrade shows at once."""
        found = static_file(name)
        body = found.read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        return Response(body, media_type=CONTENT_TYPES[found.suffix], headers=headers)

    return [page, static]


def static_file(name: str) -> Path:
    """The file `name` inside the static folder, of a type we serve; anything else is not found."""
    found = (STATIC_DIR / name.lstrip("/")).resolve()
    if not found.is_relative_to(STATIC_DIR.resolve()) or not found.is_file() or found.suffix not in CONTENT_TYPES:
        raise NotFoundException(f"no file {name}")
    return found
