"""A client-supplied X-Forwarded-For does not move a request into another rate-limit bucket
unless the peer is a trusted proxy (VODHUB_TRUSTED_PROXIES); the in-process app, whose peer is
Litestar's TestClient ("testclient")."""

from __future__ import annotations

from litestar.testing import TestClient

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit(tmp_path, clock):
    vodhub = bootstrap(Settings(data_dir=tmp_path, rate_limits="default=3/60", trusted_proxies="127.0.0.1/32"),
                       clock=clock, hasher=Argon2PasswordHasher.fast_for_tests())
    try:
        with TestClient(build_api(vodhub)) as client:
            statuses = [client.get("/.well-known/jwks.json", headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                        for n in range(4)]
    finally:
        vodhub.close()
    assert statuses == [200, 200, 200, 429]
