"""Webhook signing secrets at rest: AES-256-GCM under a key kept outside the database.

The notifier must sign with the secret itself, so it cannot be hashed like a password.
Each secret is encrypted with a fresh 96-bit nonce and authenticated together with its
endpoint's id (associated data), so a copy of the database alone reveals no secret, and a
sealed secret moved onto another endpoint's row does not open. The key comes from the
VODHUB_WEBHOOKS_SECRET_KEY setting (what a deployment should use, from its secret store);
without it one is generated once into the data directory, readable by its owner only."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
NONCE_BYTES = 12


class AesGcmSecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the webhook secret key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    @classmethod
    def generate(cls) -> AesGcmSecretBox:
        """A box with a fresh key that lives as long as the object: for tests and one-process use."""
        return cls(AESGCM.generate_key(bit_length=256))

    def seal(self, secret: bytes, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret, context.encode())
        return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: str) -> bytes:
        version, _, text = sealed.partition(".")
        if version != VERSION:
            raise ValueError("not a sealed secret of a known version")
        try:
            raw = base64.urlsafe_b64decode(text.encode())
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise ValueError("the sealed secret was altered, belongs elsewhere or needs another key") from None


def parse_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError("VODHUB_WEBHOOKS_SECRET_KEY is not base64") from None
    if len(key) != 32:
        raise ValueError("VODHUB_WEBHOOKS_SECRET_KEY must be base64 of 32 random bytes")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key in path, created (mode 0600) when missing."""
    if path.exists():
        return parse_key(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = AESGCM.generate_key(bit_length=256)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(base64.b64encode(key).decode() + "\n")
    try:
        os.link(draft, path)  # atomic, and refuses to replace a key another process made first
    except FileExistsError:
        return parse_key(path.read_text())
    finally:
        draft.unlink()
    return key
