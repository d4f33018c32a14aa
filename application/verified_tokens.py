"""Access tokens already verified, so that a token presented again costs a lookup, not a
signature check: what a gateway's per-request auth subrequest needs."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from application.ports import AccessClaims, Clock, TokenIssuer

MAX_VERIFIED_TOKENS = 10_000


class VerifiedTokens:
    """A bounded LRU of verified tokens' claims, keyed by the token's SHA-256 (a leaked memory
    dump holds no usable token) and kept until the token's `exp`. It answers only whether the
    signature and claims are good: revocation is checked by the caller on every use."""

    def __init__(self, tokens: TokenIssuer, clock: Clock, max_entries: int = MAX_VERIFIED_TOKENS) -> None:
        self._tokens = tokens
        self._clock = clock
        self._max_entries = max_entries
        self._claims: OrderedDict[bytes, AccessClaims] = OrderedDict()
        self._lock = threading.Lock()  # authenticate runs in worker threads

    def knows(self, token: str) -> bool:
        """Whether verify would answer from memory (the token was verified and has not expired)."""
        return self.known(token) is not None

    def known(self, token: str) -> AccessClaims | None:
        """The claims of a token verified before and not expired; None otherwise."""
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            claims = self._claims.get(key)
            if claims is None or claims.expires_at <= self._clock.now():
                return None
            self._claims.move_to_end(key)
            return claims

    def verify(self, token: str) -> AccessClaims:
        """The token's claims; raises InvalidToken as TokenIssuer.verify does."""
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            claims = self._claims.get(key)
            if claims is not None:
                if claims.expires_at > self._clock.now():
                    self._claims.move_to_end(key)
                    return claims
                del self._claims[key]
        claims = self._tokens.verify(token)
        with self._lock:
            self._claims[key] = claims
            while len(self._claims) > self._max_entries:
                self._claims.popitem(last=False)
        return claims
