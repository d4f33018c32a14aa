"""Deliveries are signed per Standard Webhooks, and the README's three lines verify one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from adapters.outbound.webhook_signing import signed_headers
from application.webhooks import new_secret

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_verifies_a_signed_delivery_and_refuses_a_forged_one(capsys):
    section = README.read_text().split("## Webhooks", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(example.strip().splitlines()) == 3
    key, secret = new_secret()
    body = b'{"type":"video.ready","timestamp":"2026-01-01T00:00:00Z","data":{"id":"v1"}}'
    headers = signed_headers(key, "msg_1", datetime.now(UTC), body)
    exec(example.replace("whsec_…", secret), {"request_body": body, "request_headers": headers})
    assert capsys.readouterr().out == "video.ready v1\n"
    with pytest.raises(WebhookVerificationError):
        exec(example.replace("whsec_…", secret), {"request_body": body.replace(b"v1", b"v2"), "request_headers": headers})


def test_a_stale_attempt_does_not_verify():
    key, secret = new_secret()
    headers = signed_headers(key, "msg_1", datetime.now(UTC) - timedelta(minutes=6), b"{}")
    assert headers["webhook-signature"].startswith("v1,") and headers["webhook-id"] == "msg_1"
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(b"{}", headers)
