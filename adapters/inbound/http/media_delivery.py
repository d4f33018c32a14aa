"""How /media reaches shared caches: the edge lifetime of public media, and, behind the nginx
gateway, X-Accel-Redirect answers that leave moving the bytes to nginx.

Behind the gateway vodhub only authorizes: it answers an empty 200 whose X-Accel-Redirect names
the object under an internal location of deploy/nginx.conf (`/_media/local/{key}` for the local
object directory, `/_media/s3/{bucket}/{prefix}{key}` for S3, presigned with the api's own S3
credentials when it has some), and nginx serves the bytes with
its own Range, ETag, 304 and sendfile or S3 cache. The answer says how long the gateway may
reuse it (X-Accel-Expires): the edge lifetime for public media, never for signed paths, which
vodhub checks on every request."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from litestar import Request, Response

from application.media_layout import media_type

MEDIA_DELIVERY = "vodhub.media_delivery"  # app state
S3_LOCATION = "/_media/s3"  # deploy/nginx.conf's internal location in front of S3
_MAX_AGE = re.compile(r"(?<!-)max-age=(\d+)")
_S_MAXAGE = re.compile(r"s-maxage=(\d+)")


@dataclass(frozen=True)
class MediaDelivery:
    edge_max_age: int = 60  # s-maxage of public media: how soon a deletion or privacy change reaches shared caches
    accel_prefix: str | None = None  # behind the gateway: X-Accel-Redirect to this prefix + the object key
    s3_host: str | None = None  # the S3 endpoint's host[:port], the Host nginx must send (and sign for)
    presign: Callable[[str], str] | None = None  # key → "/{bucket}/{key}?X-Amz-…" when S3 wants signed reads

    def accel_target(self, key: str) -> str:
        assert self.accel_prefix is not None
        if self.presign is not None:
            return S3_LOCATION + self.presign(key)
        return self.accel_prefix + quote(key, safe="/")


def media_delivery(request: Request) -> MediaDelivery:
    return request.app.state.get(MEDIA_DELIVERY) or MediaDelivery()


def accel_prefix(*, local: bool, bucket: str = "", prefix: str = "") -> str:
    """The internal location of deploy/nginx.conf that serves the objects of this storage."""
    if local:
        return "/_media/local/"
    object_prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    return f"{S3_LOCATION}/{bucket}/{object_prefix}"


@lru_cache(maxsize=64)
def with_edge_lifetime(cache: str, edge_max_age: int) -> str:
    """A public Cache-Control with `s-maxage` added when shared caches must drop it sooner than
    browsers (who keep the long lifetime)."""
    found = _MAX_AGE.search(cache)
    if not cache.startswith("public") or found is None or int(found.group(1)) <= edge_max_age:
        return cache
    return cache.replace(found.group(0), f"{found.group(0)}, s-maxage={edge_max_age}")


@lru_cache(maxsize=64)
def shared_lifetime(cache: str) -> int:
    """Seconds a shared cache may keep an answer with this Cache-Control (ours: public or private)."""
    if not cache.startswith("public"):
        return 0
    found = _S_MAXAGE.search(cache) or _MAX_AGE.search(cache)
    return int(found.group(1)) if found else 0


def accel_response(delivery: MediaDelivery, key: str, cache: str) -> Response:
    """Authorized: nginx serves `key` itself, with this Cache-Control and the key's Content-Type."""
    headers = {
        "X-Accel-Redirect": delivery.accel_target(key),
        "X-Accel-Expires": str(shared_lifetime(cache)),
        "Cache-Control": cache,
        "Content-Type": media_type(key),
    }
    if delivery.s3_host:
        headers["X-Media-S3-Host"] = delivery.s3_host
    return Response(content=b"", status_code=200, headers=headers)


def edge_expiry(delivery: MediaDelivery, cache: str) -> dict[str, str]:
    """For answers with bytes behind the gateway (manifests): how long it may reuse them."""
    return {} if delivery.accel_prefix is None else {"X-Accel-Expires": str(shared_lifetime(cache))}
