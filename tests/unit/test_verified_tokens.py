"""The LRU of verified access tokens: a second presentation costs a lookup, never a weaker check."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from application.errors import InvalidToken
from application.ports import AccessClaims
from application.verified_tokens import VerifiedTokens
from tests.fixtures.forged_tokens import forged_tokens


class CountingIssuer:
    def __init__(self, issuer) -> None:
        self.issuer = issuer
        self.verified = 0

    def verify(self, token: str) -> AccessClaims:
        self.verified += 1
        return self.issuer.verify(token)


def issue(token_issuer, clock, token_id: str = "j1", minutes: int = 15) -> str:
    now = clock.now()
    return token_issuer.issue(AccessClaims(
        subject=uuid.uuid4(), username="alice", roles=("user",), token_id=token_id, session_id="s1",
        issued_at=now, expires_at=now + timedelta(minutes=minutes),
    ))


def test_a_token_is_verified_once_then_answered_from_memory(token_issuer, clock):
    counting = CountingIssuer(token_issuer)
    verified = VerifiedTokens(counting, clock)
    token = issue(token_issuer, clock)
    assert not verified.knows(token)
    first, second = verified.verify(token), verified.verify(token)
    assert first == second and first.token_id == "j1"
    assert counting.verified == 1 and verified.knows(token)


def test_claims_are_kept_only_until_the_token_expires(token_issuer, clock):
    counting = CountingIssuer(token_issuer)
    verified = VerifiedTokens(counting, clock)
    token = issue(token_issuer, clock, minutes=1)
    verified.verify(token)
    clock.advance(61)
    assert not verified.knows(token)
    clock.advance(10)  # past the issuer's leeway too
    with pytest.raises(InvalidToken, match="expired"):
        verified.verify(token)


def test_bad_tokens_are_never_remembered(token_issuer, signing_key, clock):
    verified = VerifiedTokens(token_issuer, clock)
    good = issue(token_issuer, clock)
    kid = token_issuer.public_keys()["keys"][0]["kid"]
    tampered = forged_tokens(signing_key, kid, good)["tampered_payload"]
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verified.verify(tampered)
    assert not verified.knows(tampered)


def test_the_least_recently_used_token_makes_room(token_issuer, clock):
    counting = CountingIssuer(token_issuer)
    verified = VerifiedTokens(counting, clock, max_entries=2)
    a, b, c = (issue(token_issuer, clock, token_id) for token_id in ("a", "b", "c"))
    verified.verify(a)
    verified.verify(b)
    verified.verify(a)  # b is now the least recently used
    verified.verify(c)
    assert verified.knows(a) and verified.knows(c) and not verified.knows(b)


def test_authenticate_checks_revocation_on_every_use(account_adapters, clock):
    from application.accounts import Accounts

    accounts = Accounts(**account_adapters)
    accounts.register("alice", "alice@example.com", "correct horse battery")
    pair = accounts.login("alice", "correct horse battery")
    principal = accounts.authenticate(pair.access_token)
    assert accounts.authenticate_without_io(pair.access_token) == principal  # known now, and in-memory revocations
    accounts.logout(principal)
    with pytest.raises(InvalidToken, match="revoked"):
        accounts.authenticate_without_io(pair.access_token)
    with pytest.raises(InvalidToken, match="revoked"):
        accounts.authenticate(pair.access_token)
