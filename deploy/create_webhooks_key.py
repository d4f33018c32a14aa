"""Create the stack's shared webhook-secret key once (docker-compose's `webhooks-key` job).

The api seals each webhook's signing secret with it and the notifier opens it to sign, so
both must hold the same key; it lives in its own volume, never in the database.
`python /opt/vodhub/create_webhooks_key.py /var/lib/vodhub/webhooks/secret.key` writes base64
of 32 random bytes (mode 0600) unless a key is already there.
"""

from __future__ import annotations

import sys
from pathlib import Path

from adapters.outbound.secret_box import load_or_create_key


def main(path: str) -> int:
    target = Path(path)
    existed = target.exists()
    load_or_create_key(target)
    print(f"webhook secret key {target} {'already exists' if existed else 'created'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
