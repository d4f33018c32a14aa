"""Upload throughput and server memory: a 1 GiB video through POST /api/videos/upload into the
local-directory store and into SeaweedFS, against `curl --upload-file` straight to the same S3.

Run: make bench (or .venv/bin/pytest tests/bench/bench_upload.py -o python_files='bench_*.py' -s).
BENCH_UPLOAD_MIB overrides the size. Targets: RSS growth < 64 MiB; S3 throughput >= 50% of curl's."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_accounts_walkthrough import walk_through
from tests.fixtures.processes import vodhub_process
from tests.media_factory import write_clip

SIZE_MIB = int(os.environ.get("BENCH_UPLOAD_MIB", "1024"))


@pytest.fixture(scope="module")
def big_video(tmp_path_factory) -> Path:
    """A valid MPEG-TS stream of SIZE_MIB: one short clip's packets repeated."""
    folder = tmp_path_factory.mktemp("bench")
    clip = write_clip(folder / "clip.ts", container="mpegts", width=320, height=180, seconds=4).read_bytes()
    clip = clip[: len(clip) - len(clip) % 188]
    target = folder / "big.ts"
    with target.open("wb") as out:
        written = 0
        while written < SIZE_MIB * 1024 * 1024:
            out.write(clip)
            written += len(clip)
    return target


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def server_pid(base_url: str) -> int:
    port = base_url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split("pid=")[1].split(",")[0])


def curl_seconds(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "--fail-with-body", *args], check=True)
    return time.perf_counter() - started


def upload_through_api(tmp_path: Path, env: dict[str, str], video: Path) -> tuple[float, int]:
    with vodhub_process("api", cwd=tmp_path, env=env) as base_url:
        token = walk_through(base_url)["access_token"]
        pid = server_pid(base_url)
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (login's argon2 used 64 MiB)
        before = rss_kib(pid, "VmRSS")
        seconds = curl_seconds(["-H", f"Authorization: Bearer {token}", "-F", f"file=@{video}",
                                f"{base_url}/api/videos/upload"])
        growth_mib = (rss_kib(pid, "VmHWM") - before) // 1024
    return seconds, growth_mib


def report(name: str, size: int, seconds: float, growth: int | None = None) -> float:
    rate = size / seconds / 1e6
    extra = f", server peak RSS growth {growth} MiB" if growth is not None else ""
    print(f"  {name:34s} {rate:8.1f} MB/s ({seconds:.1f} s){extra}")
    return rate


def test_upload_throughput_and_memory(tmp_path, big_video, s3_server, s3_bucket):
    size = big_video.stat().st_size
    print(f"\nupload of {size / 2**20:.0f} MiB")
    (tmp_path / "local").mkdir()
    local_s, local_growth = upload_through_api(tmp_path / "local", {"VODHUB_DATA_DIR": str(tmp_path / "local")},
                                               big_video)
    report("api -> local directory", size, local_s, local_growth)

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    curl_s = curl_seconds(["--upload-file", str(big_video), f"{s3_server.endpoint}/{s3_bucket}/{prefix}/curl.ts"])
    reference = report("curl --upload-file -> SeaweedFS", size, curl_s)
    (tmp_path / "s3").mkdir()
    s3_env = {"VODHUB_DATA_DIR": str(tmp_path / "s3"), "VODHUB_S3_ENDPOINT": s3_server.endpoint,
              "VODHUB_S3_BUCKET": s3_bucket, "VODHUB_S3_PREFIX": prefix}
    s3_s, s3_growth = upload_through_api(tmp_path / "s3", s3_env, big_video)
    rate = report("api -> SeaweedFS", size, s3_s, s3_growth)
    print(f"  ratio api/curl to S3: {rate / reference:.2f} (target >= 0.50); "
          f"RSS growth local {local_growth} MiB, S3 {s3_growth} MiB (target < 64)")
    httpx.delete(f"{s3_server.endpoint}/{s3_bucket}/{prefix}/curl.ts")
