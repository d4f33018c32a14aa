"""Create the stack's shared token-signing key once (docker-compose's `jwt-key` job).

Every api replica must sign and verify with the same key (access tokens and signed media
URLs), so it is made here, before any of them starts, instead of by each process on its own.
`python /opt/vodhub/create_jwt_key.py /var/lib/vodhub/keys/jwt-ed25519.pem` writes an Ed25519
private key (PKCS#8 PEM, mode 0600) unless one is already there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def main(path: str) -> int:
    target = Path(path)
    if target.exists():
        print(f"signing key {target} already exists")
        return 0
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    partial.replace(target)
    print(f"created signing key {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
