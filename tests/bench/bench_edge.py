"""The api's hot paths against references measured in the same run (issue 17), with wrk:

1. GET /health/live against a bare Litestar app with one JSON route, on the same server stack
   (uvicorn, uvloop, httptools). Target: >= 60%.
2. GET /api/auth/validate (revocations in Redis) against /health/live. Target: <= 50% slower.
3. A warm HLS master playlist from /media against /health/live. Target: >= 70% of its rate.
4. 1 MiB byte ranges of a 64 MiB file from /media against nginx serving the same file from the
   same directory (nginx with a worker per core, vodhub dev in one process). Target: >= 15%.

vodhub runs as `vodhub dev` (one process) on Redis, rate limits off (wrk is one client).
Machines are shared: only ratios measured in the same run mean anything.

Run: make bench (or .venv/bin/pytest tests/bench/bench_edge.py -o python_files='bench_*.py' -s).
BENCH_SECONDS sets each wrk run's duration (default 3)."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.test_audience_stack import sign_up
from tests.e2e.test_dev_playback import upload, wait_until_ready
from tests.fixtures.nginx import nginx_binary
from tests.fixtures.processes import free_port, vodhub_process
from tests.media_factory import write_clip

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
CONNECTIONS = 32
RANGE_BYTES = 1024 * 1024
BIG_FILE_BYTES = 64 * RANGE_BYTES
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

RANGES_LUA = """
local n = %d
request = function()
  local start = math.random(0, n - 1) * %d
  return wrk.format("GET", nil, {Range = "bytes=" .. start .. "-" .. (start + %d - 1)})
end
"""


def wrk(url: str, headers: dict[str, str] | None = None, script: Path | None = None) -> tuple[float, float]:
    """(requests/s, bytes/s) of wrk -t2 -c32 against url; fails on any error answer."""
    wrk_binary = shutil.which("wrk")
    if wrk_binary is None:
        pytest.fail("wrk is not installed: `make bench` installs it (apt-get install -y wrk)")
    command = [wrk_binary, "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS:g}s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in output and "Socket errors" not in output, output
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    amount, unit = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?)B", output).groups()
    return rate, float(amount) * UNITS[unit]


def side_by_side(*targets: tuple[str, dict[str, str] | None], runs: int = 3) -> list[float]:
    """The best requests/s of each (url, headers) over a few rounds, taking turns within each
    round: the machine is shared, and others' load only ever slows a run down."""
    best = [0.0] * len(targets)
    for _ in range(runs):
        for index, (url, headers) in enumerate(targets):
            best[index] = max(best[index], wrk(url, headers)[0])
    return best


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"{process.args} exited"
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer within {timeout} s"
        time.sleep(0.2)


@contextmanager
def running(command: list[str], url: str, cwd: Path) -> Iterator[str]:
    log = (cwd / f"{Path(command[0]).name}-{free_port()}.log").open("wb")
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@contextmanager
def bare_litestar(tmp_path: Path) -> Iterator[str]:
    """tests/bench/bare_app.py on the server options `vodhub api` uses."""
    from entrypoints.cli import SERVER_OPTIONS

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "tests.bench.bare_app:app", "--port", str(port),
               "--loop", SERVER_OPTIONS["loop"], "--http", SERVER_OPTIONS["http"], "--no-access-log",
               "--log-level", "warning", "--app-dir", str(ROOT)]
    with running(command, f"http://127.0.0.1:{port}/health/live", tmp_path) as url:
        yield url.removesuffix("/health/live")


@contextmanager
def nginx_static(tmp_path: Path, root: Path) -> Iterator[str]:
    """nginx serving `root` as static files: sendfile, a worker per core (its defaults in Debian)."""
    port, prefix = free_port(), tmp_path / "nginx-static"
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""daemon off; user {getpass.getuser()}; worker_processes auto; pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy; fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    with running([nginx_binary(), "-p", str(prefix), "-c", str(conf)], f"http://127.0.0.1:{port}/", tmp_path) as url:
        yield url.rstrip("/")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_url) -> Iterator[dict]:
    """`vodhub dev` with one ready video, a viewer's token, and the bare reference app."""
    tmp_path = tmp_path_factory.mktemp("edge")
    redis_prefix = f"vodhub-bench:{uuid.uuid4().hex}:"
    env = {"VODHUB_REDIS_URL": redis_url, "VODHUB_REDIS_PREFIX": redis_prefix, "VODHUB_RATE_LIMITS": "off",
           "VODHUB_LADDER": "240p", "VODHUB_LOG_LEVEL": "WARNING", "VODHUB_DATA_DIR": str(tmp_path / "data")}
    clip = write_clip(tmp_path / "clip.mp4", width=320, height=240, seconds=4).read_bytes()
    with vodhub_process("dev", cwd=tmp_path, env=env, timeout=120) as base_url, bare_litestar(tmp_path) as bare_url:
        headers = sign_up(base_url, "bencher")
        video_id = upload(base_url, headers, clip)
        wait_until_ready(base_url, headers, video_id)
        yield {"base_url": base_url, "bare_url": bare_url, "headers": headers, "video_id": video_id,
               "data_dir": tmp_path / "data", "tmp_path": tmp_path}
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=redis_prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def report(lines: list[tuple[str, float]], ratio: str, value: float, target: str, met: bool) -> None:
    print()
    for label, rate in lines:
        print(f"  {label:<44} {rate:10.0f} requests/s")
    print(f"  {ratio}: {value:.0%} (target {target}) {'met' if met else 'NOT MET'}")


def test_health_live_against_a_bare_litestar_app(stack):
    vodhub_url, bare_url = f"{stack['base_url']}/health/live", f"{stack['bare_url']}/health/live"
    bare, live = side_by_side((bare_url, None), (vodhub_url, None))
    ratio = live / bare
    report([("bare Litestar GET /health/live", bare), ("vodhub GET /health/live", live)],
           "vodhub / bare", ratio, ">= 60%", ratio >= 0.6)


def test_validate_against_health_live(stack):
    live, validate = side_by_side((f"{stack['base_url']}/health/live", None),
                                  (f"{stack['base_url']}/api/auth/validate", stack["headers"]))
    over = live / validate - 1
    report([("GET /health/live", live), ("GET /api/auth/validate", validate)],
           "validate's cost over /health/live", over, "<= 50%", over <= 0.5)


def test_warm_manifest_against_health_live(stack):
    stream = httpx.get(f"{stack['base_url']}/api/videos/stream/{stack['video_id']}?format=hls", headers=stack["headers"])
    assert stream.status_code == 302, stream.text
    master_url = httpx.URL(stack["base_url"]).join(stream.headers["location"])
    assert httpx.get(master_url).status_code == 200  # warm
    live, manifest = side_by_side((f"{stack['base_url']}/health/live", None), (str(master_url), None))
    ratio = manifest / live
    report([("GET /health/live", live), ("GET /media/…/master.m3u8 (warm)", manifest)],
           "manifest / live", ratio, ">= 70%", ratio >= 0.7)


def test_media_ranges_against_nginx(stack):
    """The progressive MP4's object is swapped for a 64 MiB file: vodhub serves it by its
    /media path, nginx by its path under the objects directory."""
    objects = stack["data_dir"] / "objects"
    video_id = stack["video_id"]
    mp4 = next((objects / "processed" / video_id).rglob("*.mp4"))
    mp4.write_bytes(os.urandom(BIG_FILE_BYTES))
    relative = mp4.relative_to(objects / "processed" / video_id).as_posix()
    script = stack["tmp_path"] / "ranges.lua"
    script.write_text(RANGES_LUA % (BIG_FILE_BYTES // RANGE_BYTES, RANGE_BYTES, RANGE_BYTES))
    vodhub_url = f"{stack['base_url']}/media/{video_id}/{relative}"
    assert httpx.get(vodhub_url, headers={"Range": "bytes=0-1"}).status_code == 206
    with nginx_static(stack["tmp_path"], objects) as nginx_url:
        nginx_file = f"{nginx_url}/processed/{video_id}/{relative}"
        nginx = vodhub = 0.0
        for _ in range(2):
            nginx = max(nginx, wrk(nginx_file, script=script)[1])
            vodhub = max(vodhub, wrk(vodhub_url, script=script)[1])
    ratio = vodhub / nginx
    print(f"\n  nginx, 1 MiB ranges {nginx / 1e6:10.0f} MB/s\n  vodhub /media, same  {vodhub / 1e6:10.0f} MB/s"
          f"\n  vodhub / nginx: {ratio:.0%} (target >= 15%) {'met' if ratio >= 0.15 else 'NOT MET'}")
