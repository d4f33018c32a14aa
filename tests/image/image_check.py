"""The Dockerfile built and run for real (`make image-test`; too heavy for `make test`).

A Docker engine of our own (Debian's docker.io: its own data root and socket, no iptables, no
bridge: containers use the host's network, on loopback) builds the image with BuildKit on a
stand-in base (Debian bookworm and its python3 from debootstrap, as PYTHON_IMAGE: no registry is
reachable here). Then the README's walk-through runs against `vodhub dev` inside it, with a
read-only root filesystem and a data volume, up to a played HLS master, and the image's
HEALTHCHECK must turn the container healthy. Without the volume, the process must say so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_accounts_walkthrough import walk_through
from tests.e2e.test_dev_playback import decoded_sizes, upload, wait_until_ready
from tests.fixtures.processes import free_port
from tests.media_factory import write_clip

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("VODHUB_IMAGE_TEST_DIR", "/var/tmp/vodhub-image-test"))
SOCKET = STATE / "docker.sock"
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"  # docker.io's client
BASE_IMAGE = "vodhub-stand-in-python:bookworm"
IMAGE = "vodhub:image-test"


def docker(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}", "DOCKER_BUILDKIT": "1"}
    finished = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert finished.returncode == 0, f"docker {' '.join(args)}:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}"
    return finished


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """Our own dockerd, unless one already answers on our socket (a previous run left it)."""
    assert shutil.which("dockerd"), "dockerd is missing: `make image-test` installs Debian's docker.io"
    STATE.mkdir(parents=True, exist_ok=True)
    if docker("version", check=False, timeout=20).returncode == 0:
        yield
        return
    log = (STATE / "dockerd.log").open("ab")
    engine = subprocess.Popen(
        ["dockerd", f"--data-root={STATE / 'docker'}", f"--exec-root={STATE / 'exec'}",
         f"--pidfile={STATE / 'dockerd.pid'}", f"--host=unix://{SOCKET}",
         "--iptables=false", "--ip-forward=false", "--bridge=none"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while docker("version", check=False, timeout=20).returncode != 0:
            assert engine.poll() is None, f"dockerd exited: {(STATE / 'dockerd.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "dockerd did not answer within 60 s"
            time.sleep(0.5)
        yield
    finally:
        engine.terminate()
        try:
            engine.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.kill()
        log.close()


@pytest.fixture(scope="session")
def image(docker_engine) -> str:
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        made = subprocess.run(
            ["sh", str(ROOT / "tests" / "image" / "stand_in_base.sh"), str(STATE / "rootfs"), BASE_IMAGE],
            env={**os.environ, "DOCKER": f"{DOCKER} --host unix://{SOCKET}"},
            capture_output=True, text=True, timeout=1800,
        )
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    # The build reaches PyPI through the host's network: the engine has no bridge.
    docker("build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "--tag", IMAGE, ".",
           cwd=ROOT, timeout=2400)
    return IMAGE


@pytest.fixture
def data_volume(docker_engine) -> Iterator[str]:
    name = f"vodhub-image-test-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", name)
    yield name
    docker("volume", "rm", "--force", name, check=False)


def wait_for_live(base_url: str, container: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        state = json.loads(docker("inspect", container).stdout)[0]["State"]
        assert state["Running"], docker("logs", container).stderr[-3000:]
        assert time.monotonic() < deadline, f"no answer from {base_url} within {timeout} s"
        time.sleep(0.5)


def test_the_readme_walk_through_plays_inside_the_image_and_the_healthcheck_passes(image, data_volume, tmp_path):
    port = free_port()
    container = f"vodhub-dev-{uuid.uuid4().hex[:8]}"
    docker("run", "--detach", "--name", container, "--network", "host", "--read-only", "--tmpfs", "/tmp",
           "--volume", f"{data_volume}:/var/lib/vodhub", "--env", "VODHUB_HOST=127.0.0.1",
           "--env", f"VODHUB_PORT={port}", image, "dev")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_live(base_url, container)
        headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
        assert httpx.get(f"{base_url}/api/users/me", headers=headers).json()["username"] == "alice"
        clip = write_clip(tmp_path / "holiday.mp4", width=640, height=360, seconds=4).read_bytes()
        video_id = upload(base_url, headers, clip, title="Holiday", tags="sea,sun")
        video = wait_until_ready(base_url, headers, video_id, timeout=600)
        assert [r["name"] for r in video["renditions"]] == ["240p", "360p"]
        stream = httpx.get(f"{base_url}/api/videos/stream/{video_id}", headers=headers)
        assert stream.status_code == 302 and stream.headers["location"].endswith(".m3u8")
        sizes = decoded_sizes(base_url + stream.headers["location"])  # played: a frame of each rendition
        assert len(sizes) == 2 and (640, 360) in sizes

        deadline = time.monotonic() + 180  # the HEALTHCHECK's first run is 30 s after the start
        while (health := json.loads(docker("inspect", container).stdout)[0]["State"]["Health"])["Status"] != "healthy":
            assert health["Status"] != "unhealthy", health["Log"]
            assert time.monotonic() < deadline, health
            time.sleep(2)
        assert health["Log"][-1]["ExitCode"] == 0
    finally:
        logs = docker("logs", container, check=False)
        (tmp_path / "container.log").write_text(logs.stdout + logs.stderr)
        docker("rm", "--force", container, check=False)


def test_a_read_only_root_without_a_data_volume_says_what_to_do(image):
    finished = docker("run", "--rm", "--network", "host", "--read-only", "--env", f"VODHUB_PORT={free_port()}",
                      image, "api", check=False)
    assert finished.returncode == 1
    assert "vodhub: the data directory /var/lib/vodhub is not writable (Read-only file system)" in finished.stderr
    assert "Traceback" not in finished.stderr
