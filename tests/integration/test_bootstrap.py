"""The composition root takes every adapter as a keyword, as tests pass their in-memory twins."""

from __future__ import annotations

import uuid

from adapters.outbound.argon2_hasher import Argon2PasswordHasher
from adapters.outbound.cache import InMemoryCache
from adapters.outbound.in_memory_catalog import InMemoryVideoCatalog
from adapters.outbound.jwt_tokens import NoSigningKey
from domain.videos import Video
from entrypoints.bootstrap import bootstrap
from entrypoints.projector import catalog_follower
from entrypoints.settings import Settings


class NoInspection:
    def inspect(self, reader):
        raise AssertionError("not used here")


def test_the_given_catalog_cache_inspector_and_tokens_are_the_ones_used(tmp_path):
    catalog, cache, inspector, tokens = InMemoryVideoCatalog(), InMemoryCache(), NoInspection(), NoSigningKey()
    vodhub = bootstrap(Settings(data_dir=tmp_path / "var"), hasher=Argon2PasswordHasher.fast_for_tests(),
                       catalog=catalog, cache=cache, inspector=inspector, tokens=tokens, playback_tokens=tokens)
    try:
        video = Video.upload(
            uuid.uuid4(), uuid.uuid4(), ("user",), title="listed", description="", tags=[], visibility="public",
            source_key="raw/k/original.mp4", source_size=5, source_content_type="video/mp4", source_sha256="ab" * 32,
        )
        vodhub.videos.save(video)
        catalog_follower(vodhub.catalog, vodhub.videos).catch_up()
        assert catalog.get(video.id).title == "listed"
        assert (vodhub.playback.cache, vodhub.videos.inspector, vodhub.accounts.tokens) == (cache, inspector, tokens)
    finally:
        vodhub.close()
