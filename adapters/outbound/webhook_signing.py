"""Standard Webhooks signatures (https://www.standardwebhooks.com), made by the reference
`standardwebhooks` library so that any receiver using a Standard Webhooks library verifies them."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signed_headers(secret: bytes, message_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The headers of one attempt: the id is the same on every attempt, the timestamp is the attempt's."""
    moment = timestamp.astimezone(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, moment, body.decode()),
    }
