"""The JWT adapter refuses every kind of bad token."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from application.errors import InvalidToken
from application.ports import AccessClaims
from tests.fixtures.forged_tokens import forged_tokens


@pytest.fixture
def valid_token(token_issuer, clock) -> str:
    now = clock.now()
    return token_issuer.issue(AccessClaims(
        subject=uuid.uuid4(), username="alice", roles=("user",), token_id="j1", session_id="s1",
        issued_at=now, expires_at=now + timedelta(minutes=15),
    ))


def kid_of(token_issuer) -> str:
    return token_issuer.public_keys()["keys"][0]["kid"]


def test_valid_token_round_trips(token_issuer, valid_token):
    claims = token_issuer.verify(valid_token)
    assert (claims.username, claims.roles, claims.token_id, claims.session_id) == ("alice", ("user",), "j1", "s1")


def test_header_names_the_key_and_the_algorithm(token_issuer, valid_token):
    import jwt

    header = jwt.get_unverified_header(valid_token)
    assert header == {"alg": "EdDSA", "kid": kid_of(token_issuer), "typ": "JWT"}


def test_jwks_publishes_only_the_public_key(token_issuer):
    (key,) = token_issuer.public_keys()["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert "d" not in key


@pytest.mark.parametrize("case", [
    "expired", "not_yet_valid", "other_key_same_kid", "other_key_other_kid", "alg_none",
    "hs256_with_public_key", "tampered_payload", "wrong_audience", "wrong_issuer", "missing_jti",
    "missing_exp", "subject_not_uuid", "roles_not_a_list", "garbage", "empty_segments",
])
def test_bad_token_is_refused(case, token_issuer, signing_key, valid_token):
    token = forged_tokens(signing_key, kid_of(token_issuer), valid_token)[case]
    with pytest.raises(InvalidToken):
        token_issuer.verify(token)


def test_token_expires_by_the_injected_clock(token_issuer, valid_token, clock):
    clock.advance(15 * 60 + 6)
    with pytest.raises(InvalidToken, match="expired"):
        token_issuer.verify(valid_token)
