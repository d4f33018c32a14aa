"""/media byte ranges through the gateway (deploy/nginx.conf in front of `vodhub dev` with
VODHUB_MEDIA_ACCEL) against nginx serving the same files statically, both over the same TLS.

wrk asks for random 1 MiB ranges of a 720p progressive MP4, the reference and the gateway taking
turns, and the bench prints each throughput and the median of the rounds' ratios. Target (issue 17): the gateway at
>= 80% of static nginx. The gateway runs deploy/nginx.conf unchanged but for the per-address
/media rate limit, raised so that one wrk host is not throttled.

Run: make bench (or .venv/bin/pytest tests/bench/bench_media_gateway.py -o python_files='bench_*.py' -s).
BENCH_MEDIA_SECONDS (default 5) and BENCH_MEDIA_ROUNDS (default 5) set the length."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fixtures.nginx import nginx_binary, nginx_gateway
from tests.fixtures.processes import free_port, vodhub_process
from tests.media_factory import write_clip

SECONDS = int(os.environ.get("BENCH_MEDIA_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_MEDIA_ROUNDS", "5"))
RANGE = 1024 * 1024
ALICE = {"username": "alice", "email": "alice@example.com", "password": "correct horse battery"}
WRK_SCRIPT = """
local size = tonumber(os.getenv("BENCH_SIZE"))
local span = tonumber(os.getenv("BENCH_RANGE"))
math.randomseed(os.time())
request = function()
  local first = math.random(0, size - span)
  return wrk.format("GET", nil, {Range = "bytes=" .. first .. "-" .. (first + span - 1)})
end
"""
STATIC_CONF = """
user {user};
worker_processes auto;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:tls:10m;
    ssl_certificate {tls}/cert.pem;
    ssl_certificate_key {tls}/key.pem;
    server {{
        listen 127.0.0.1:{port} ssl;
        root {root};
    }}
}}
"""


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        pytest.fail("wrk is not installed: `make bench` installs it (apt-get install -y wrk)")
    return found


@contextmanager
def static_nginx(prefix: Path, root: Path, tls: Path) -> Iterator[str]:
    """The reference: nginx with nothing but TLS and a root over the same files."""
    port = free_port()
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "static.conf"
    conf.write_text(STATIC_CONF.format(user=getpass.getuser(), prefix=prefix, port=port, root=root, tls=tls))
    command = [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    process = subprocess.Popen([*command, "-g", "daemon off;"])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"https://127.0.0.1:{port}/", verify=False, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the reference nginx did not start"
                time.sleep(0.05)
        yield f"https://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def wrk(url: str, size: int, script: Path) -> float:
    """MB/s of random 1 MiB ranges of `url`; every answer must be a 206."""
    env = {**os.environ, "BENCH_SIZE": str(size), "BENCH_RANGE": str(RANGE)}
    out = subprocess.run([wrk_binary(), "-t2", "-c32", f"-d{SECONDS}s", "-s", str(script), url],
                         capture_output=True, text=True, env=env, timeout=SECONDS + 60, check=True).stdout
    assert "Non-2xx" not in out, out
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return requests * RANGE / 1e6


def _upload_and_wait(client: httpx.Client, headers: dict, clip: bytes) -> dict:
    uploaded = client.post("/api/videos/upload", headers=headers, data={"title": "bench"},
                           files={"file": ("clip.mp4", clip, "video/mp4")}, timeout=60)
    assert uploaded.status_code == 202, uploaded.text
    deadline = time.monotonic() + 600
    while (video := client.get(f"/api/videos/{uploaded.json()['id']}", headers=headers).json())["status"] != "ready":
        assert video["status"] != "failed" and time.monotonic() < deadline, video
        time.sleep(0.5)
    return video


def test_media_ranges_through_the_gateway_against_static_nginx(tmp_path):
    api_dir, gateway_dir, static_dir = (tmp_path / name for name in ("api", "gateway", "static"))
    for folder in (api_dir, gateway_dir, static_dir):
        folder.mkdir()
    script = tmp_path / "ranges.lua"
    script.write_text(WRK_SCRIPT)
    env = {"VODHUB_MEDIA_ACCEL": "true", "VODHUB_TRUSTED_PROXIES": "127.0.0.1/32", "VODHUB_RATE_LIMITS": "off",
           "VODHUB_LADDER": "240p,720p"}
    unthrottled = {"zone=media_per_client:10m rate=100r/s;": "zone=media_per_client:10m rate=1000000r/s;"}
    objects = api_dir / "var" / "objects"
    with vodhub_process("dev", cwd=api_dir, env=env) as api_url, \
            nginx_gateway(gateway_dir, api_url.removeprefix("http://"), objects_dir=objects, extra=unthrottled) as gateway, \
            gateway.client(timeout=30) as client:
        assert client.post("/api/auth/register", json=ALICE).status_code == 201
        token = client.post("/api/auth/login", json={"username_or_email": "alice", "password": ALICE["password"]})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        clip = write_clip(tmp_path / "clip.mp4", width=1280, height=720, seconds=10).read_bytes()
        video = _upload_and_wait(client, headers, clip)
        progressive = next(objects.glob(f"processed/{video['id']}/*/mp4/720p.mp4"))
        size = progressive.stat().st_size
        media_path = f"/media/{video['id']}/" + str(progressive.relative_to(objects / "processed" / video["id"]))
        probe = client.get(media_path, headers={"Range": "bytes=0-1"})
        assert probe.status_code == 206, probe.text
        with static_nginx(static_dir, objects, gateway.prefix / "tls") as static_url:
            static_path = "/" + str(progressive.relative_to(objects))
            assert httpx.get(static_url + static_path, verify=False, headers={"Range": "bytes=0-1"}).status_code == 206
            gateway_rates, static_rates = [], []
            for round_ in range(ROUNDS):  # each goes first every other round: a changing load favours neither
                runs = [(static_rates, static_url + static_path), (gateway_rates, gateway.url + media_path)]
                for rates, url in runs if round_ % 2 == 0 else reversed(runs):
                    rates.append(wrk(url, size, script))
    # Each round's pair ran back to back, so its ratio is the least disturbed by a busy machine.
    ratio = statistics.median(gateway / static for gateway, static in zip(gateway_rates, static_rates, strict=True))
    print(f"\n/media 1 MiB ranges of a {size / 1e6:.1f} MB 720p MP4 over TLS, wrk -t2 -c32 -d{SECONDS}s, {ROUNDS} rounds:")
    print(f"  static nginx:       {max(static_rates):8.0f} MB/s best (rounds: {', '.join(f'{r:.0f}' for r in static_rates)})")
    print(f"  gateway (X-Accel):  {max(gateway_rates):8.0f} MB/s best (rounds: {', '.join(f'{r:.0f}' for r in gateway_rates)})")
    print(f"  ratio: {ratio:.0%} of static nginx, the median of the rounds' ratios (target >= 80%)")
    assert ratio >= 0.8, f"the gateway moved {ratio:.0%} of static nginx's throughput"
