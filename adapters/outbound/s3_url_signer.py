"""Presigned S3 GET paths, so that the nginx gateway can fetch objects from a bucket that does
not allow anonymous reads, with the api's own S3 identity (X-Accel-Redirect to S3)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store


class S3UrlSigner:
    def __init__(self, endpoint: str, bucket: str, region: str, access_key_id: str, secret_access_key: str,
                 prefix: str = "", ttl_s: int = 3600) -> None:
        self.store = S3Store(bucket, prefix=prefix or None, endpoint=endpoint, region=region,
                             access_key_id=access_key_id, secret_access_key=secret_access_key,
                             virtual_hosted_style_request=False)
        self.ttl = timedelta(seconds=ttl_s)

    def signed_path(self, key: str) -> str:
        """`/{bucket}/{prefix}{key}?X-Amz-…`: a GET of the object, signed for the endpoint's host only."""
        url = urlsplit(obstore.sign(self.store, "GET", key, self.ttl))
        return f"{url.path}?{url.query}"
