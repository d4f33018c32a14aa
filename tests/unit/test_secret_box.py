"""Webhook secrets at rest: sealed with AES-256-GCM, bound to their endpoint, keyed outside the database."""

from __future__ import annotations

import base64

import pytest

from adapters.outbound.secret_box import AesGcmSecretBox, load_or_create_key, parse_key
from entrypoints.bootstrap import webhook_secret_box
from entrypoints.settings import Settings


def test_a_sealed_secret_opens_only_for_its_endpoint_and_key():
    box = AesGcmSecretBox.generate()
    sealed = box.seal(b"s" * 32, "endpoint-1")
    assert box.open(sealed, "endpoint-1") == b"s" * 32
    assert base64.b64encode(b"s" * 32).decode() not in sealed and sealed != box.seal(b"s" * 32, "endpoint-1")
    for sealed_text, context, other_box in ((sealed, "endpoint-2", box), (sealed[:-2] + "AA", "endpoint-1", box),
                                             (sealed, "endpoint-1", AesGcmSecretBox.generate()),
                                             ("v9." + sealed[3:], "endpoint-1", box), ("v1.!!", "endpoint-1", box)):
        with pytest.raises(ValueError):
            other_box.open(sealed_text, context)


def test_the_key_is_made_once_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "keys" / "webhooks-secret.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and load_or_create_key(path) == key
    assert path.stat().st_mode & 0o077 == 0 and list(path.parent.iterdir()) == [path]


def test_the_key_setting_is_base64_or_a_file(tmp_path):
    key = base64.b64encode(b"k" * 32).decode()
    (tmp_path / "secret.key").write_text(key + "\n")
    sealed = webhook_secret_box(Settings(data_dir=tmp_path, webhooks_secret_key=key)).seal(b"x", "e")
    from_file = webhook_secret_box(Settings(data_dir=tmp_path, webhooks_secret_key=str(tmp_path / "secret.key")))
    assert from_file.open(sealed, "e") == b"x"
    for bad in ("not base64!", base64.b64encode(b"short").decode(), str(tmp_path / "missing.key")):
        with pytest.raises(SystemExit, match="bad setting"):
            webhook_secret_box(Settings(data_dir=tmp_path, webhooks_secret_key=bad))
    with pytest.raises(ValueError):
        parse_key("")
