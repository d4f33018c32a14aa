"""The log followers keep their positions across a restart, in `vodhub dev` (SQLite files) too."""

from __future__ import annotations

import uuid

import anyio

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from domain.videos import Video
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings


def test_a_restarted_dev_relay_resumes_where_it_stopped_instead_of_republishing_the_log(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    first = bootstrap(settings, hasher=Argon2PasswordHasher.fast_for_tests())
    try:
        first.videos.save(Video.upload(
            uuid.uuid4(), uuid.uuid4(), ("user",), title="t", description="", tags=[], visibility="public",
            source_key="raw/k/original.mp4", source_size=5, source_content_type="video/mp4", source_sha256="ab" * 32,
        ))
        assert anyio.run(first.relay.step) == 1
    finally:
        first.close()
    restarted = bootstrap(settings, hasher=Argon2PasswordHasher.fast_for_tests())
    try:
        assert restarted.relay.position() == 1
        assert anyio.run(restarted.relay.step) == 0
    finally:
        restarted.close()
