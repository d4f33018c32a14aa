"""Untrusted media is parsed in a confined child: a file that hangs, bloats or crashes the
parser gets 415 and the api stays healthy."""

from __future__ import annotations

import io
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from litestar.testing import TestClient

from adapters.outbound import media_sandbox
from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.media_sandbox import SandboxLimits, run_sandboxed
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from application.errors import UnsupportedMedia
from entrypoints.api import build_api
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests import sandbox_targets as targets
from tests.fixtures.api import bearer, login, register
from tests.media_factory import moving_frame

QUICK = SandboxLimits(timeout_s=3.0, cpu_s=3, memory_bytes=64 * 1024 * 1024)


class EndlessBoxes(io.RawIOBase):
    """An MP4 that never ends: an ftyp box, then 8-byte `free` boxes forever. The mov demuxer
    reads top-level boxes looking for `moov` until the file ends, which it never does."""

    FTYP = struct.pack(">I4s4sI4s", 20, b"ftyp", b"isom", 0, b"isom")
    FREE = struct.pack(">I4s", 8, b"free")
    SIZE = 1 << 50

    def __init__(self) -> None:
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = 65536 if size is None or size < 0 else size
        head = self.FTYP[self.position:self.position + size]
        start = max(self.position, len(self.FTYP))
        body_offset = (start - len(self.FTYP)) % len(self.FREE)
        body = (self.FREE * (size // len(self.FREE) + 2))[body_offset:body_offset + size - len(head)]
        self.position += len(head) + len(body)
        return head + body

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.position = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.SIZE}[whence] + offset
        return self.position

    def tell(self) -> int:
        return self.position


def write_huge_pictures(path: Path, side: int = 4096) -> Path:
    """Two PNG frames of side x side RGB in QuickTime: a few KiB on disk, 48 MiB per decoded
    picture, so decoding it needs more than a small memory budget."""
    with av.open(str(path), mode="w", format="mov") as output:
        stream = output.add_stream("png", rate=1)
        stream.width = stream.height = side
        stream.pix_fmt = "rgb24"
        for index in range(2):
            frame = moving_frame(side, side, index).reformat(format="rgb24")
            frame.pts = index
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


# --- the sandbox itself ------------------------------------------------------------------


def test_the_child_reads_the_parents_source_and_returns_its_result():
    assert run_sandboxed(targets.read_all, io.BytesIO(b"bytes from the parent"), QUICK, returns=bytes) == b"bytes from the parent"


def test_a_child_over_its_memory_budget_is_refused():
    with pytest.raises(UnsupportedMedia, match="memory"):
        run_sandboxed(targets.allocate, io.BytesIO(), QUICK, 256 * 1024 * 1024, returns=int)
    assert run_sandboxed(targets.allocate, io.BytesIO(), QUICK, 1024 * 1024, returns=int) == 1024 * 1024


def test_a_crashing_child_is_refused():
    with pytest.raises(UnsupportedMedia, match="crashed"):
        run_sandboxed(targets.crash, io.BytesIO(), QUICK, returns=type(None))


def test_a_spinning_child_is_stopped_by_its_limits():
    started = time.monotonic()
    with pytest.raises(UnsupportedMedia):
        run_sandboxed(targets.spin, io.BytesIO(), SandboxLimits(timeout_s=30, cpu_s=1), returns=type(None))
    assert time.monotonic() - started < 25  # the CPU limit ended it, not the 30 s timeout


def test_the_child_can_write_no_file(tmp_path):
    with pytest.raises(RuntimeError, match="Too many open files"):
        run_sandboxed(targets.write_a_file, io.BytesIO(), QUICK, str(tmp_path / "escaped"), returns=type(None))
    assert not (tmp_path / "escaped").exists()


def test_the_parent_never_unpickles_what_a_child_sends(tmp_path):
    with pytest.raises(UnsupportedMedia, match="nonsense"):
        run_sandboxed(targets.send_a_pickle, io.BytesIO(), QUICK, str(tmp_path / "pwned"), returns=type(None))
    assert not (tmp_path / "pwned").exists()


def test_a_result_of_the_wrong_shape_is_refused():
    with pytest.raises(UnsupportedMedia, match="nonsense"):
        run_sandboxed(targets.read_all, io.BytesIO(b"not a number"), QUICK, returns=int)


# --- the inspector in it ------------------------------------------------------------------


def test_an_endless_chain_of_mp4_boxes_is_refused_at_the_timeout():
    started = time.monotonic()
    with pytest.raises(UnsupportedMedia, match="too long"):
        PyAVMediaInspector(sandbox=QUICK).inspect(EndlessBoxes())
    assert time.monotonic() - started < 60


@pytest.fixture(scope="module")
def huge_pictures(tmp_path_factory) -> Path:
    return write_huge_pictures(tmp_path_factory.mktemp("media") / "huge.mov")


def test_pictures_too_large_for_the_memory_budget_are_refused(huge_pictures):
    path = huge_pictures
    with path.open("rb") as source, pytest.raises(UnsupportedMedia):
        PyAVMediaInspector(sandbox=QUICK).inspect(source)
    with path.open("rb") as source:  # the same file is a video when memory allows
        assert PyAVMediaInspector(sandbox=SandboxLimits(memory_bytes=1 << 30)).inspect(source).width == 4096


# --- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path, clock) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "var", inspect_timeout_s=3.0, inspect_cpu_s=3, inspect_memory_mb=64)
    app = bootstrap(settings, clock=clock, hasher=Argon2PasswordHasher.fast_for_tests())
    with TestClient(build_api(app)) as test_client:
        yield test_client
    app.close()


def test_a_file_that_bloats_the_parser_is_415_and_the_api_stays_healthy(client, huge_pictures, small_clip):
    register(client, "alice")
    auth = bearer(login(client, "alice"))
    huge = huge_pictures.read_bytes()
    refused = client.post("/api/videos/upload", files={"file": ("huge.mov", huge, "video/quicktime")}, headers=auth)
    assert refused.status_code == 415, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.get("/health/live").status_code == 200
    accepted = client.post("/api/videos/upload", files={"file": ("clip.mp4", small_clip, "video/mp4")}, headers=auth)
    assert accepted.status_code == 202, accepted.text


def test_the_child_sees_none_of_the_parents_environment(monkeypatch):
    monkeypatch.setenv("VODHUB_JWT_PRIVATE_KEY", "-----BEGIN PRIVATE KEY----- not for parsers")
    media_sandbox._zygote._stop()  # the next child comes from a zygote started with this environment
    environment = run_sandboxed(targets.environment, io.BytesIO(), QUICK, returns=dict[str, str])
    assert not any(name.startswith("VODHUB_") for name in environment)
