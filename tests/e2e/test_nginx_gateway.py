"""The nginx gateway of docker-compose.yml, for real: Debian's nginx runs deploy/nginx.conf with
only its ports, upstream address, user and /var paths swapped for the test's own.

Two gateways:
- one in front of a stub upstream that records what reaches it, to see exactly what the
  gateway forwards (identity headers, no body in the token check) and what it keeps back
  (unauthenticated and forbidden requests never reach the route);
- one in front of a real `vodhub dev`: accounts, routing, token validation through the
  subrequest, the CDN-style /media cache and rate limiting.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from adapters.log_redaction import redact
from tests.fixtures.nginx import Gateway, access_log, nginx_gateway
from tests.fixtures.processes import vodhub_process
from tests.media_factory import write_clip

READY_TIMEOUT_S = 60.0
EDGE_MAX_AGE_S = 5  # VODHUB_EDGE_MAX_AGE of the real api: how long the gateway keeps public media
BIG_FILE = bytes(range(256)) * (10 * 1024 + 100)  # 2.5 MiB and a bit: three cache slices
ALICE = {"username": "alice", "email": "alice@example.com", "password": "correct horse battery"}


# ---- a stub upstream that records what the gateway forwards -------------------------------

class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StubServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _answer(self) -> None:
        body = self._read_body()
        seen = {"method": self.command, "path": self.path, "body_length": len(body),
                "headers": {name.lower(): value for name, value in self.headers.items()}}
        self.server.seen.append(seen)
        status, headers, payload = 200, {"Content-Type": "application/json"}, json.dumps(seen).encode()
        if self.path.startswith("/media/big/"):  # the api, authorizing: the bytes are in S3
            headers = {"X-Accel-Redirect": "/_media/s3/vodhub/big/movie.mp4?X-Amz-Signature=abc", "X-Accel-Expires": "60",
                       "X-Media-S3-Host": "s3.internal:8333",
                       "Cache-Control": "public, max-age=31536000, s-maxage=60, immutable", "Content-Type": "video/mp4"}
            payload = b""
        elif self.path.startswith("/vodhub/big/movie.mp4?X-Amz-Signature=abc"):  # S3, presigned
            status, headers, payload = self._ranged(BIG_FILE)
        elif self.path == "/api/auth/validate":
            token = self.headers.get("Authorization", "")
            if token == "Bearer good":
                headers |= {"X-User-Id": "user-123", "X-User-Roles": "user,moderator"}
            elif token == "Bearer forbidden":
                status = 403
            elif token == "Bearer broken":
                status = 500
            else:
                status, headers = 401, headers | {"WWW-Authenticate": "Bearer"}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _ranged(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Like S3: one `bytes=a-b` range → 206."""
        headers = {"Content-Type": "binary/octet-stream", "ETag": '"big-1"', "Accept-Ranges": "bytes"}
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not match:
            return 200, headers, body
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else len(body) - 1, len(body) - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
        return 206, headers, body[start:end + 1]

    def log_message(self, *args: object) -> None:
        pass


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[dict]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # nginx closing a kept-alive connection is not news


@pytest.fixture(scope="module")
def stub_gateway(tmp_path_factory) -> Iterator[tuple[Gateway, list[dict]]]:
    server = _StubServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        prefix = tmp_path_factory.mktemp("nginx-stub")
        upstream = f"127.0.0.1:{server.server_port}"
        with nginx_gateway(prefix, upstream, s3_upstream=upstream) as gateway:
            yield gateway, server.seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def stub(stub_gateway) -> Iterator[tuple[httpx.Client, list[dict], Path]]:
    gateway, seen = stub_gateway
    with gateway.client() as client:
        yield client, seen, gateway.prefix


def _tls_version(gateway: Gateway, lowest: ssl.TLSVersion, highest: ssl.TLSVersion) -> str:
    """The protocol the gateway agrees to when the client offers only lowest..highest."""
    context = gateway.ssl_context()
    if lowest < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer what the gateway must refuse
    context.minimum_version, context.maximum_version = lowest, highest
    host, port = gateway.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        return tls.version() or ""


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_https_speaks_tls_1_2_and_1_3_only(stub_gateway):
    gateway, _ = stub_gateway
    assert _tls_version(gateway, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert _tls_version(gateway, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        _tls_version(gateway, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)


@pytest.mark.parametrize("path", ["/health/live", "/media/hsts/a.m4s", "/media/t/token/a.m4s", "/nowhere", "/api/users/me"])
def test_every_https_answer_carries_hsts(stub, path):
    client, _, _ = stub
    response = client.get(path)
    assert response.headers["strict-transport-security"] == "max-age=63072000", response.headers


def test_plain_http_only_redirects_to_https(stub_gateway):
    gateway, seen = stub_gateway
    seen.clear()
    response = httpx.post(f"{gateway.http_url}/api/videos/123?x=1", headers={"Authorization": "Bearer good"},
                          content=b"secret")
    assert response.status_code == 301
    assert response.headers["location"] == "https://127.0.0.1/api/videos/123?x=1"
    assert httpx.get(f"{gateway.http_url}/health/live").status_code == 301
    assert seen == [], "nothing reached the api over plain HTTP"


def test_gateway_forwards_identity_and_checks_the_token_without_the_body(stub):
    client, seen, _ = stub
    seen.clear()
    response = client.post("/api/videos/123?x=1", content=b"v" * 100_000,
                          headers={"Authorization": "Bearer good", "X-User-Id": "spoofed", "X-User-Roles": "admin",
                                   "X-Forwarded-For": "6.6.6.6"})
    assert response.status_code == 200, response.text
    check, route = seen
    assert (check["method"], check["path"]) == ("GET", "/api/auth/validate")
    assert check["body_length"] == 0 and "content-length" not in check["headers"]
    assert check["headers"]["authorization"] == "Bearer good"
    assert check["headers"]["x-original-uri"] == "/api/videos/123?x=1"
    assert "x-user-id" not in check["headers"]
    assert (route["method"], route["path"], route["body_length"]) == ("POST", "/api/videos/123?x=1", 100_000)
    assert route["headers"]["x-user-id"] == "user-123"  # the gateway's, not the client's
    assert route["headers"]["x-user-roles"] == "user,moderator"
    # The client's own X-Forwarded-For is replaced by the address the gateway saw, never extended.
    assert route["headers"]["x-forwarded-for"] == check["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert route["headers"]["x-request-id"]


def test_uploads_stream_through_after_the_check(stub):
    client, seen, prefix = stub
    control = client.post("/api/videos/123", content=b"\0" * 300_000, headers={"Authorization": "Bearer good"})
    assert control.status_code == 200
    seen.clear()
    response = client.post("/api/videos/upload", files={"file": ("a.mp4", b"\0" * 300_000, "video/mp4")},
                          headers={"Authorization": "Bearer good"})
    assert response.status_code == 200
    check, route = seen
    assert check["path"] == "/api/auth/validate" and check["body_length"] == 0
    assert route["path"] == "/api/videos/upload" and route["body_length"] > 300_000
    seen.clear()
    chunked = client.patch("/api/videos/uploads/abc", content=iter([b"x" * 70_000] * 3),
                          headers={"Authorization": "Bearer good", "Content-Type": "application/offset+octet-stream"})
    assert chunked.status_code == 200
    check, route = seen
    assert check["body_length"] == 0 and "transfer-encoding" not in check["headers"]
    assert route["method"] == "PATCH" and route["headers"].get("transfer-encoding") == "chunked"
    assert route["body_length"] == 210_000
    # Elsewhere a body this size is spooled to a temp file first; uploads stream straight on.
    spooled = [line for line in (prefix / "logs" / "error.log").read_text().splitlines() if "buffered to a temporary" in line]
    assert spooled and not any("/api/videos/upload" in line for line in spooled)


@pytest.mark.parametrize("authorization", [None, "Bearer nonsense", "Basic YWxpY2U6c2VjcmV0"])
def test_unauthenticated_requests_get_401_and_never_reach_the_route(stub, authorization):
    client, seen, _ = stub
    seen.clear()
    headers = {"Authorization": authorization} if authorization else {}
    response = client.delete("/api/videos/123", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert [request["path"] for request in seen] == ["/api/auth/validate"]


def test_forbidden_tokens_get_403_and_a_failing_check_503(stub):
    client, seen, _ = stub
    seen.clear()
    forbidden = client.get("/api/users/me", headers={"Authorization": "Bearer forbidden"})
    assert forbidden.status_code == 403 and forbidden.json()["status"] == 403
    broken = client.get("/api/users/me", headers={"Authorization": "Bearer broken"})
    assert broken.status_code == 503 and broken.headers["content-type"] == "application/problem+json"
    assert [request["path"] for request in seen] == ["/api/auth/validate", "/api/auth/validate"]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/auth/register"), ("POST", "/api/auth/login"), ("POST", "/api/auth/refresh"),
    ("GET", "/.well-known/jwks.json"), ("GET", "/health/live"), ("GET", "/health/ready"),
    ("GET", "/media/0c6ea7f1-54a3-4a8e-9d57-0d0c8c1b6a7e/cmaf/master.m3u8"),
    ("GET", "/media/t/some-token/0c6ea7f1-54a3-4a8e-9d57-0d0c8c1b6a7e/cmaf/master.m3u8"),
])
def test_public_routes_skip_the_check_and_carry_no_identity(stub, method, path):
    client, seen, _ = stub
    seen.clear()
    response = client.request(method, path, headers={"X-User-Id": "spoofed"})
    assert response.status_code == 200
    assert [request["path"] for request in seen] == [path]
    assert "x-user-id" not in seen[0]["headers"]


def test_s3_media_is_cached_in_slices_and_reassembled_exactly(stub):
    """The api authorizes once (X-Accel-Redirect, kept for its X-Accel-Expires); the bytes come
    from S3 in 1 MiB slices, cached by object."""
    client, seen, _ = stub
    seen.clear()
    whole = client.get("/media/big/movie.mp4")
    assert whole.status_code == 200 and whole.content == BIG_FILE
    assert whole.headers["x-cache-status"] == "MISS"
    assert whole.headers["content-type"] == "video/mp4"  # the api's, not S3's
    assert whole.headers["cache-control"] == "public, max-age=31536000, s-maxage=60, immutable"
    asked = [request for request in seen if request["path"].startswith("/media/")]
    assert len(asked) == 1 and "range" not in asked[0]["headers"]
    fetched = [request for request in seen if request["path"] == "/vodhub/big/movie.mp4?X-Amz-Signature=abc"]
    assert sorted(request["headers"]["range"] for request in fetched) == [
        "bytes=0-1048575", "bytes=1048576-2097151", "bytes=2097152-3145727"]
    assert {request["headers"]["host"] for request in fetched} == {"s3.internal:8333"}  # what the api signed for
    assert all("authorization" not in request["headers"] for request in fetched)
    seen.clear()
    again = client.get("/media/big/movie.mp4")
    assert again.content == BIG_FILE and again.headers["x-cache-status"] == "HIT"
    across = client.get("/media/big/movie.mp4", headers={"Range": "bytes=1048000-1049000"})
    assert across.status_code == 206 and across.content == BIG_FILE[1048000:1049001]
    assert across.headers["content-range"] == f"bytes 1048000-1049000/{len(BIG_FILE)}"
    assert seen == [], "every slice came from the cache"


@pytest.mark.parametrize("path", ["/metrics", "/metrics/x", "/schema", "/schema/openapi.json"])
def test_the_apis_internal_paths_are_not_routed(stub, path):
    client, seen, _ = stub
    seen.clear()
    response = client.get(path)
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    assert seen == []


@pytest.mark.parametrize("path", ["/", "/watch/0c6ea7f1-54a3-4a8e-9d57-0d0c8c1b6a7e", "/static/js/main.js", "/apix"])
def test_the_web_client_and_other_paths_go_to_the_api_without_a_check(stub, path):
    client, seen, _ = stub
    seen.clear()
    response = client.get(path, headers={"X-User-Id": "spoofed"})
    assert response.status_code == 200
    assert [request["path"] for request in seen] == [path]
    assert "x-user-id" not in seen[0]["headers"]


@pytest.mark.parametrize("path", ["/api/videos/123", "/api/videos/upload", "/api/videos/123/events"])
def test_cors_preflights_skip_the_token_check(stub, path):
    client, seen, _ = stub
    seen.clear()
    response = client.options(path, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "authorization"})
    assert response.status_code == 200
    assert [(request["method"], request["path"]) for request in seen] == [("OPTIONS", path)]
    assert seen[0]["headers"]["origin"] == "https://app.example"


# ---- in front of a real `vodhub dev` -------------------------------------------------------

@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[tuple[httpx.Client, Path, Path, str]]:
    """(a client of the gateway, nginx prefix, the api's working directory, the api's URL)."""
    api_dir = tmp_path_factory.mktemp("vodhub-dev")
    prefix = tmp_path_factory.mktemp("nginx-api")
    env = {"VODHUB_TRUSTED_PROXIES": "127.0.0.1/32", "VODHUB_MEDIA_ACCEL": "true",
           "VODHUB_EDGE_MAX_AGE": str(EDGE_MAX_AGE_S)}
    with vodhub_process("dev", cwd=api_dir, env=env) as api_url, \
            nginx_gateway(prefix, api_url.removeprefix("http://"), objects_dir=api_dir / "var" / "objects") as gateway, \
            gateway.client() as client:
            yield client, prefix, api_dir, api_url


@pytest.fixture(scope="module")
def alice(gateway) -> dict:
    client = gateway[0]
    registered = client.post("/api/auth/register", json=ALICE)
    assert registered.status_code == 201, registered.text
    login = client.post("/api/auth/login", json={"username_or_email": "alice", "password": ALICE["password"]})
    assert login.status_code == 200, login.text
    return {"id": registered.json()["id"], "headers": {"Authorization": f"Bearer {login.json()['access_token']}"}}


def test_accounts_through_the_gateway(gateway, alice):
    client, prefix, api_dir, _ = gateway
    me = client.get("/api/users/me", headers=alice["headers"])
    assert me.status_code == 200 and me.json()["username"] == "alice"
    # The identity the gateway forwarded, as its access log recorded it (written just after the answer).
    deadline = time.monotonic() + 5
    while not any('"GET /api/users/me ' in line and f"user={alice['id']}" in line for line in access_log(prefix)):
        assert time.monotonic() < deadline, access_log(prefix)[-5:]
        time.sleep(0.05)

    validate = client.get("/api/auth/validate", headers=alice["headers"])
    assert validate.status_code == 200
    assert validate.headers["x-user-id"] == alice["id"] and validate.headers["x-user-roles"] == "admin"

    for headers in ({}, {"Authorization": "Bearer not.a.token"}):
        refused = client.get("/api/users/me", headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.headers["content-type"] == "application/problem+json"
    reached = [line for line in (api_dir / "dev.log").read_text().splitlines() if "/api/users/me" in line]
    assert reached and not any(" 401" in line for line in reached)  # only the token check saw them
    assert client.post("/api/auth/login", json={"username_or_email": "alice", "password": "wrong password!"}
                      ).status_code == 401


def test_health_and_keys_are_routed(gateway):
    client = gateway[0]
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    keys = client.get("/.well-known/jwks.json")
    assert keys.status_code == 200 and keys.json()["keys"][0]["kid"]


def test_a_cross_origin_browser_call_through_the_gateway(gateway, alice):
    """A page on another origin: the preflight gets the api's CORS answer with no token, then
    the call itself carries the bearer token."""
    client = gateway[0]
    origin = {"Origin": "https://app.example"}
    preflight = client.options("/api/users/me", headers={
        **origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code in (200, 204), preflight.text
    assert preflight.headers["access-control-allow-origin"] in ("*", "https://app.example")
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "GET" in preflight.headers["access-control-allow-methods"] or preflight.headers["access-control-allow-methods"] == "*"
    call = client.get("/api/users/me", headers={**origin, **alice["headers"]})
    assert call.status_code == 200 and call.json()["username"] == "alice"
    assert call.headers["access-control-allow-origin"] in ("*", "https://app.example")
    assert "x-request-id" in call.headers["access-control-expose-headers"].lower()


def test_the_web_client_is_served_through_the_gateway(gateway):
    client = gateway[0]
    page = client.get("/watch/0c6ea7f1-54a3-4a8e-9d57-0d0c8c1b6a7e")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/static/js/main.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/metrics").status_code == 404


def _client_seen_by_the_api(api_dir: Path, request_id: str) -> str:
    """The client address in the api's access log line of that request."""
    deadline = time.monotonic() + 5
    while True:
        for line in (api_dir / "dev.log").read_text().splitlines():
            if line.startswith("{") and f'"request_id":"{request_id}"' in line:
                return json.loads(line)["client"]
        assert time.monotonic() < deadline, f"no access log line for request {request_id}"
        time.sleep(0.05)


def test_a_client_cannot_spoof_its_address_through_the_gateway(gateway):
    """The api trusts the gateway (VODHUB_TRUSTED_PROXIES), which forwards only what it saw.
    (An untrusted peer's header: tests/unit/test_client_address.py and
    tests/integration/test_client_address_spoofing.py.)"""
    client, _, api_dir, _ = gateway
    through = client.get("/health/ready", headers={"X-Forwarded-For": "6.6.6.6"})
    assert _client_seen_by_the_api(api_dir, through.headers["x-request-id"]) == "127.0.0.1"


def test_behind_a_trusted_load_balancer_the_client_is_the_address_it_reports(gateway, tmp_path):
    """A second gateway from the same file, with the test's own address as a trusted balancer."""
    _, _, api_dir, api_url = gateway
    trusting = {"# set_real_ip_from 10.0.0.0/8;": "set_real_ip_from 127.0.0.1;"}
    with nginx_gateway(tmp_path, api_url.removeprefix("http://"), extra=trusting) as balanced, balanced.client() as client:
        response = client.get("/health/ready", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.9"})
        assert response.status_code == 200
        assert _client_seen_by_the_api(api_dir, response.headers["x-request-id"]) == "198.51.100.9"
        deadline = time.monotonic() + 5  # nginx's own limits and log use it too (logged just after the answer)
        while not any(line.startswith("198.51.100.9 ") for line in access_log(tmp_path)):
            assert time.monotonic() < deadline, access_log(tmp_path)
            time.sleep(0.05)


def _upload_and_wait(client: httpx.Client, headers: dict, clip: bytes, **fields: str) -> dict:
    uploaded = client.post("/api/videos/upload", headers=headers, data=fields,
                          files={"file": ("clip.mp4", clip, "video/mp4")}, timeout=30)
    assert uploaded.status_code == 202, uploaded.text
    video_id = uploaded.json()["id"]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        video = client.get(f"/api/videos/{video_id}", headers=headers).json()
        if video["status"] in ("ready", "failed"):
            assert video["status"] == "ready", video
            return video
        assert time.monotonic() < deadline, f"the video never became ready: {video}"
        time.sleep(0.3)


def _first_segment(client: httpx.Client, master_path: str, headers: dict | None = None) -> str:
    """The path of the first media segment the master playlist leads to."""
    master_url = urljoin(str(client.base_url), master_path)
    master = client.get(master_url, headers=headers)
    assert master.status_code == 200, master.text
    variant_url = urljoin(master_url, next(line for line in master.text.splitlines() if line and not line.startswith("#")))
    variant = client.get(variant_url, headers=headers)
    assert variant.status_code == 200, variant.text
    segment = next(line for line in variant.text.splitlines() if line and not line.startswith("#"))
    return urljoin(variant_url, segment).removeprefix(str(client.base_url).rstrip("/"))


@pytest.fixture(scope="module")
def public_video(gateway, alice, tmp_path_factory) -> dict:
    clip = write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", width=160, height=90, seconds=1).read_bytes()
    return _upload_and_wait(gateway[0], alice["headers"], clip, title="public")


@pytest.fixture(scope="module")
def private_video(gateway, alice, tmp_path_factory) -> dict:
    clip = write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", width=160, height=90, seconds=1).read_bytes()
    return _upload_and_wait(gateway[0], alice["headers"], clip, title="private", visibility="private")


def _object_bytes(api_dir: Path, video_id: str, segment_path: str) -> bytes:
    relative = segment_path.split(f"/{video_id}/", 1)[1]
    return (api_dir / "var" / "objects" / "processed" / video_id / relative).read_bytes()


def _media_requests_to_the_api(api_dir: Path, path: str) -> int:
    logged = redact(path)  # the access log never holds a media token
    return sum(1 for line in (api_dir / "dev.log").read_text().splitlines()
               if line.startswith("{") and f'"path":"{logged}"' in line)


def _assert_served_by_nginx(client: httpx.Client, path: str, expected: bytes) -> None:
    """Range, ETag and 304 as API.md says, from the bytes nginx moved."""
    whole = client.get(path)
    assert whole.status_code == 200 and whole.content == expected
    assert whole.headers["content-type"] == "video/iso.segment"
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"]
    assert "x-accel-redirect" not in whole.headers and "x-accel-expires" not in whole.headers
    ranged = client.get(path, headers={"Range": "bytes=10-109"})
    assert ranged.status_code == 206 and ranged.content == expected[10:110]
    assert ranged.headers["content-range"] == f"bytes 10-109/{len(expected)}"
    suffix = client.get(path, headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == expected[-10:]
    unsatisfiable = client.get(path, headers={"Range": f"bytes={len(expected)}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(expected)}"
    unchanged = client.get(path, headers={"If-None-Match": whole.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    stale = client.get(path, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.content == expected
    elsewhere = client.get(path, headers={"Origin": "https://player.example", "Range": "bytes=0-9"})
    assert elsewhere.status_code == 206 and elsewhere.headers["access-control-allow-origin"] == "*"  # players on other origins
    assert "content-range" in elsewhere.headers["access-control-expose-headers"].lower()
    assert elsewhere.headers["x-content-type-options"] == "nosniff"
    assert elsewhere.headers["x-request-id"] != whole.headers["x-request-id"]  # its own, not a cached one
    head = client.head(path)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(expected)) and head.content == b""


def test_public_media_bytes_come_from_nginx_after_one_authorization(gateway, public_video):
    client, _, api_dir, api_url = gateway
    segment = _first_segment(client, public_video["streams"]["hls"])
    expected = _object_bytes(api_dir, public_video["id"], segment)
    first, second = client.get(segment), client.get(segment)
    assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == ("MISS", "HIT")
    assert first.content == second.content == expected
    assert second.headers["cache-control"] == f"public, max-age=31536000, s-maxage={EDGE_MAX_AGE_S}, immutable"
    _assert_served_by_nginx(client, segment, expected)
    master = public_video["streams"]["hls"]
    manifest = client.get(master)
    assert manifest.status_code == 200 and manifest.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert client.get(master, headers={"If-None-Match": manifest.headers["etag"]}).status_code == 304
    # What the api itself answers there: the authorization only.
    answer = httpx.get(api_url + segment)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["x-accel-redirect"].startswith("/_media/local/processed/")
    assert answer.headers["x-accel-expires"] == str(EDGE_MAX_AGE_S)


def test_signed_media_is_checked_by_the_api_every_time_and_served_by_nginx(gateway, alice, private_video):
    client, _, api_dir, _ = gateway
    signed = client.get(f"/api/videos/stream/{private_video['id']}", headers=alice["headers"])
    assert signed.status_code == 302 and signed.headers["location"].startswith("/media/t/")
    segment = _first_segment(client, signed.headers["location"])
    expected = _object_bytes(api_dir, private_video["id"], segment)
    before = _media_requests_to_the_api(api_dir, segment)
    for _ in range(2):
        response = client.get(segment)
        assert response.status_code == 200 and response.content == expected
        assert response.headers["x-cache-status"] == "BYPASS"
        assert response.headers["cache-control"].startswith("private")
    _assert_served_by_nginx(client, segment, expected)
    deadline = time.monotonic() + 5  # the api logs just after it answers
    while _media_requests_to_the_api(api_dir, segment) - before < 8:
        assert time.monotonic() < deadline, "every signed request is authorized by the api"
        time.sleep(0.05)
    forged = client.get(segment.replace("/media/t/", "/media/t/x", 1))
    assert forged.status_code in (401, 403, 404) and not forged.content.startswith(expected[:16])


def _until_gone(client: httpx.Client, path: str) -> int:
    """Poll until the gateway stops serving `path` (it may keep it for EDGE_MAX_AGE_S)."""
    deadline = time.monotonic() + 12 * EDGE_MAX_AGE_S
    while (response := client.get(path)).status_code == 200:
        assert time.monotonic() < deadline, f"the gateway still serves {path}"
        time.sleep(0.2)
    return response.status_code


def test_the_edge_stops_serving_a_video_made_private_or_deleted(gateway, alice, tmp_path):
    client = gateway[0]
    clip = write_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=1).read_bytes()
    made_private, deleted = (_upload_and_wait(client, alice["headers"], clip, title=title) for title in ("a", "b"))
    paths = {}
    for video in (made_private, deleted):
        paths[video["id"]] = (segment := _first_segment(client, video["streams"]["hls"]))
        assert client.get(segment).status_code == 200
        assert client.get(segment).headers["x-cache-status"] == "HIT"  # kept at the edge
    patched = client.patch(f"/api/videos/{made_private['id']}", json={"visibility": "private"}, headers=alice["headers"])
    assert patched.status_code == 200, patched.text
    assert client.delete(f"/api/videos/{deleted['id']}", headers=alice["headers"]).status_code == 204
    assert _until_gone(client, paths[made_private["id"]]) == 404
    assert _until_gone(client, paths[deleted["id"]]) in (404, 410)
    assert _until_gone(client, made_private["streams"]["hls"]) == 404  # the manifests too


def test_media_in_s3_goes_through_the_gateways_slice_cache(s3_server, s3_bucket, tmp_path):
    """The compose setup: objects in S3 (SeaweedFS), vodhub authorizes, nginx fetches the bytes
    from S3 once and serves public and signed paths from the same cache."""
    prefix = f"gateway-{uuid.uuid4().hex[:8]}"
    env = {"VODHUB_TRUSTED_PROXIES": "127.0.0.1/32", "VODHUB_MEDIA_ACCEL": "true", "VODHUB_S3_ENDPOINT": s3_server.endpoint,
           "VODHUB_S3_BUCKET": s3_bucket, "VODHUB_S3_PREFIX": prefix,
           # SeaweedFS here has no identities and ignores signatures, but the gateway still gets presigned paths.
           "VODHUB_S3_ACCESS_KEY_ID": "gateway-test", "VODHUB_S3_SECRET_ACCESS_KEY": "gateway-test-secret"}
    clip = write_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=1).read_bytes()
    (tmp_path / "api").mkdir()
    with vodhub_process("dev", cwd=tmp_path / "api", env=env) as api_url, \
            nginx_gateway(tmp_path / "nginx", api_url.removeprefix("http://"),
                          s3_upstream=s3_server.endpoint.removeprefix("http://")) as gateway, \
            gateway.client() as client:
        assert client.post("/api/auth/register", json=ALICE).status_code == 201
        login = client.post("/api/auth/login", json={"username_or_email": "alice", "password": ALICE["password"]})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        video = _upload_and_wait(client, headers, clip, title="in s3", visibility="unlisted")
        signed = client.get(f"/api/videos/stream/{video['id']}", headers=headers).headers["location"]
        segment = _first_segment(client, signed)
        key = f"processed/{video['id']}/" + segment.split(f"/{video['id']}/", 1)[1]
        expected = httpx.get(f"{s3_server.endpoint}/{s3_bucket}/{prefix}/{key}").content
        assert expected
        _assert_served_by_nginx(client, segment, expected)
        redirect = httpx.get(api_url + segment).headers["x-accel-redirect"]
        assert redirect.startswith(f"/_media/s3/{s3_bucket}/{prefix}/processed/") and "X-Amz-Signature=" in redirect
        cached = [path for path in (gateway.prefix / "cache" / "media").rglob("*") if path.is_file()]
        assert cached, "the bytes are kept in the gateway's slice cache"


def test_bursts_are_rate_limited(gateway):
    """Last in this file: it spends the client address's burst allowance."""
    client = gateway[0]
    statuses = [client.get("/.well-known/jwks.json") for _ in range(80)]
    limited = [response for response in statuses if response.status_code == 429]
    assert statuses[0].status_code == 200 and limited, [response.status_code for response in statuses]
    assert limited[0].headers["retry-after"] and limited[0].json()["status"] == 429
    assert {response.status_code for response in statuses} == {200, 429}
