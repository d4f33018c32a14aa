"""CORS from VODHUB_CORS_ORIGINS: `*` (the default) for any origin, a comma-separated list,
or `off`. Never with credentials: the API authenticates with bearer tokens, not cookies."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.config.cors import CORSConfig

# What a browser script may read from a response besides the CORS-safelisted headers.
EXPOSED_HEADERS = [
    "X-Request-ID", "Location", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
    "RateLimit-Policy", "Content-Range", "Accept-Ranges", "Content-Length", "ETag", "WWW-Authenticate",
    "X-User-Id", "X-User-Roles",
    # tus clients in a browser read these
    "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata", "Tus-Resumable", "Tus-Version",
    "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm", "Vodhub-Video-Id",
]


def parse_cors_origins(text: str) -> tuple[str, ...]:
    """`*` or empty: any origin; `off` or `none`: no CORS headers at all; else the listed origins."""
    text = text.strip()
    if text.lower() in ("off", "none"):
        return ()
    origins = tuple(origin.strip().rstrip("/") for origin in text.split(",") if origin.strip())
    return origins or ("*",)


def cors_config(origins: Sequence[str]) -> CORSConfig | None:
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins), allow_methods=["*"], allow_headers=["*"], allow_credentials=False,
        expose_headers=EXPOSED_HEADERS, max_age=600,
    )
