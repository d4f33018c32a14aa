"""Access tokens as signed JWTs (PyJWT), EdDSA/Ed25519 by default."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from application.errors import InvalidPlaybackToken, InvalidToken
from application.ports import AccessClaims, Clock

REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]


def _algorithm_for(key: Any) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return "ES256"
    raise ValueError("JWT signing key must be Ed25519, RSA or EC P-256")


def load_private_key(pem_or_path: str) -> Any:
    """A private key from PEM text or from the path of a PEM file."""
    text = pem_or_path if "-----BEGIN" in pem_or_path else Path(pem_or_path).read_text()
    return serialization.load_pem_private_key(text.encode(), password=None)


def load_or_create_key(path: Path) -> Any:
    """The embedded default: an Ed25519 key generated once and kept (0600) in the data dir."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
    return load_private_key(str(path))


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 key id: the SHA-256 of the key's required members, canonically ordered."""
    required = {"OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


class JwtTokenIssuer:
    def __init__(
        self, private_key: Any, *, issuer: str, audience: str, clock: Clock, leeway: int = 5
    ) -> None:
        self._private_key = private_key
        self._algorithm = _algorithm_for(private_key)
        self._public_key = private_key.public_key()
        algorithm = jwt.get_algorithm_by_name(self._algorithm)
        self._jwk = {**algorithm.to_jwk(self._public_key, as_dict=True), "use": "sig", "alg": self._algorithm}
        self._kid = _thumbprint(self._jwk)
        self._jwk["kid"] = self._kid
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._leeway = timedelta(seconds=leeway)

    def issue(self, claims: AccessClaims) -> str:
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(claims.subject),
            "username": claims.username,
            "roles": list(claims.roles),
            # Milliseconds (RFC 7519 allows a fractional NumericDate): revocation compares iat
            # with the moment a user was disabled or changed roles, which whole seconds blur.
            "iat": math.floor(claims.issued_at.timestamp() * 1000) / 1000,
            "nbf": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "jti": claims.token_id,
            "sid": claims.session_id,
        }
        return jwt.encode(payload, self._private_key, algorithm=self._algorithm, headers={"kid": self._kid})

    def verify(self, token: str) -> AccessClaims:
        try:
            if jwt.get_unverified_header(token).get("kid") != self._kid:
                raise InvalidToken("token was signed by an unknown key")
            payload = jwt.decode(
                token, self._public_key, algorithms=[self._algorithm],  # pinned: no alg=none, no HS256
                audience=self._audience, issuer=self._issuer,
                # Times are checked below against the injected clock.
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
            claims = self._claims_from(payload)
        except jwt.PyJWTError as error:
            raise InvalidToken(f"invalid token: {error}") from None
        now = self._clock.now()
        if claims.expires_at <= now - self._leeway:
            raise InvalidToken("token has expired")
        if datetime.fromtimestamp(payload["nbf"], UTC) > now + self._leeway:
            raise InvalidToken("token is not yet valid")
        return claims

    def _claims_from(self, payload: dict[str, Any]) -> AccessClaims:
        try:
            roles = payload.get("roles", [])
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise ValueError("roles")
            return AccessClaims(
                subject=UUID(payload["sub"]), username=str(payload.get("username", "")),
                roles=tuple(roles), token_id=str(payload["jti"]), session_id=str(payload.get("sid", "")),
                issued_at=datetime.fromtimestamp(payload["iat"], UTC),
                expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            )
        except (ValueError, TypeError, OverflowError, OSError):
            raise InvalidToken("token claims are malformed") from None

    def public_keys(self) -> dict:
        return {"keys": [dict(self._jwk)]}


class JwtPlaybackTokens:
    """Media tokens as short JWTs signed with the same key, for a separate audience so an access
    token never unlocks media and a media token never authenticates an API call."""

    AUDIENCE = "vodhub-media"

    def __init__(self, private_key: Any, *, issuer: str, clock: Clock) -> None:
        self._private_key = private_key
        self._algorithm = _algorithm_for(private_key)
        self._public_key = private_key.public_key()
        self._issuer = issuer
        self._clock = clock

    def issue(self, video_id: UUID, expires_at: datetime) -> str:
        payload = {"iss": self._issuer, "aud": self.AUDIENCE, "vid": video_id.hex, "exp": int(expires_at.timestamp())}
        return jwt.encode(payload, self._private_key, algorithm=self._algorithm)

    def verify(self, token: str) -> UUID:
        try:
            payload = jwt.decode(
                token, self._public_key, algorithms=[self._algorithm], audience=self.AUDIENCE,
                issuer=self._issuer, options={"require": ["exp", "vid"], "verify_exp": False},
            )
            video_id = UUID(hex=str(payload["vid"]))
            expired = datetime.fromtimestamp(payload["exp"], UTC) <= self._clock.now()
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError, OSError):
            raise InvalidPlaybackToken("the playback token is not valid") from None
        if expired:
            raise InvalidPlaybackToken("the playback token has expired; ask the stream endpoint for a new URL")
        return video_id


class NoSigningKey:
    """TokenIssuer and PlaybackTokens for the processes that hold no signing key (all but the
    api): they never issue or check a token, and if one tried, it fails loudly here."""

    def issue(self, *_: Any) -> str:
        raise RuntimeError("this process holds no signing key: only the api issues tokens")

    def verify(self, token: str) -> Any:
        raise RuntimeError("this process holds no signing key: only the api checks tokens")

    def public_keys(self) -> dict:
        raise RuntimeError("this process holds no signing key: only the api publishes its keys")
