"""Accounts: register, log in, rotate refresh tokens, log out, profiles and roles."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.errors import AuthenticationFailed, Conflict, InvalidToken, NotFound, TooManyAttempts
from application.following import SignalledLog
from application.ports import (
    AccessClaims,
    Clock,
    IdGenerator,
    PasswordHasher,
    RefreshTokenStore,
    RevocationList,
    TokenIssuer,
)
from application.rate_limits import LoginBudget
from application.verified_tokens import VerifiedTokens
from domain.users import (
    FIRST_ADMIN,
    UniqueIndex,
    User,
    check_password_policy,
    index_id,
    normalise_email,
    normalise_username,
)


class Principal(msgspec.Struct, frozen=True):
    """Who is calling, as proven by a valid access token."""

    user_id: UUID
    username: str
    roles: tuple[str, ...]
    token_id: str
    session_id: str
    expires_at: datetime


class Profile(msgspec.Struct):
    id: UUID
    username: str
    email: str
    display_name: str
    bio: str
    avatar_url: str | None
    roles: list[str]
    disabled: bool
    created_at: datetime
    updated_at: datetime


class PublicProfile(msgspec.Struct):
    id: UUID
    username: str
    display_name: str
    bio: str
    avatar_url: str | None


class TokenPair(msgspec.Struct):
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    token_type: str = "Bearer"


def _profile(user: User) -> Profile:
    return Profile(
        id=user.id, username=user.username, email=user.email, display_name=user.display_name,
        bio=user.bio, avatar_url=user.avatar_url, roles=list(user.roles), disabled=user.disabled,
        created_at=user.created_on, updated_at=user.modified_on,
    )


def _public_profile(user: User) -> PublicProfile:
    return PublicProfile(
        id=user.id, username=user.username, display_name=user.display_name, bio=user.bio,
        avatar_url=user.avatar_url,
    )


def _session_key(session_id: str) -> str:
    return f"session:{session_id}"


def _millisecond(moment: datetime) -> datetime:
    """Access tokens carry their iat to the millisecond; a cutoff is compared at that precision."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts(SignalledLog):
    name = "accounts"

    def __init__(
        self, *, hasher: PasswordHasher, tokens: TokenIssuer, refresh_tokens: RefreshTokenStore,
        revocations: RevocationList, clock: Clock, ids: IdGenerator,
        access_ttl: int = 900, refresh_ttl: int = 2_592_000, login_budget: LoginBudget | None = None,
        env: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(env=env)
        self.hasher = hasher
        self.tokens = tokens
        self.verified_tokens = VerifiedTokens(tokens, clock)
        self.refresh_tokens = refresh_tokens
        self.revocations = revocations
        self.clock = clock
        self.ids = ids
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.login_budget = login_budget
        # Verifying against a real hash when the user is unknown keeps the answer's timing
        # from telling which usernames exist.
        self._decoy_hash = hasher.hash(secrets.token_urlsafe(16))

    # --- registration ----------------------------------------------------------

    def register(
        self, username: str, email: str, password: str, display_name: str | None = None
    ) -> Profile:
        """Create an account; the first one ever is admin. Duplicates are refused atomically."""
        username, email = normalise_username(username), normalise_email(email)
        check_password_policy(password)
        password_hash = self.hasher.hash(password)
        for _ in range(2):
            first = not self._exists(index_id(*FIRST_ADMIN))
            user = User.register(
                self.ids.new_id(), username, email, password_hash, first=first,
                display_name=display_name,
            )
            claims = [
                UniqueIndex(kind="username", value=username, user_id=user.id),
                UniqueIndex(kind="email", value=email, user_id=user.id),
            ]
            if first:
                claims.append(UniqueIndex(kind=FIRST_ADMIN[0], value=FIRST_ADMIN[1], user_id=user.id))
            try:
                self.save(user, *claims)
            except IntegrityError:
                if self._exists(index_id("username", username)):
                    raise Conflict("username is already taken") from None
                if self._exists(index_id("email", email)):
                    raise Conflict("email is already registered") from None
                continue  # someone else took the first-admin seat meanwhile: register as user
            return _profile(user)
        raise Conflict("registration raced with another; try again")

    # --- tokens -------------------------------------------------------------------

    def login(self, username_or_email: str, password: str) -> TokenPair:
        """Exchange credentials for an access and refresh token; one answer for every failure."""
        issued_at = self.clock.now()  # before reading the user: see _revoke_earlier_tokens
        user = self._find_by_login(username_or_email)
        # An account's budget whichever name or email is typed; a name matching no account has its
        # own, so the answer (429 included) never tells which accounts exist.
        budget_key = f"user:{user.id}" if user else f"name:{username_or_email.strip().casefold()}"
        self._spend_login_attempt(budget_key)
        if user is None:
            self.hasher.verify(self._decoy_hash, password)
            raise AuthenticationFailed("unknown user or wrong password")
        if not self.hasher.verify(user.password_hash, password) or user.disabled:
            raise AuthenticationFailed("unknown user or wrong password")
        if self.login_budget is not None:
            self.login_budget.refund(budget_key)  # only failures count
        if self.hasher.needs_rehash(user.password_hash):
            user.change_password(self.hasher.hash(password))
            self.save(user)
        return self._issue_pair(user, family_id=secrets.token_urlsafe(16), issued_at=issued_at)

    def _spend_login_attempt(self, budget_key: str) -> None:
        """Counted before the password is checked, so concurrent guesses cannot overshoot."""
        if self.login_budget is None:
            return
        retry_after_s = self.login_budget.spend(budget_key)
        if retry_after_s is not None:
            raise TooManyAttempts("too many failed logins for this account; try again later", retry_after_s)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token for a new pair; a replayed one revokes its whole family."""
        now = self.clock.now()  # also the new token's iat, read before the user: see _revoke_earlier_tokens
        grant = self.refresh_tokens.use(_hash_refresh_token(refresh_token))
        if grant is None or grant.expires_at <= now:
            raise InvalidToken("refresh token is unknown or expired")
        if grant.already_used:  # a stolen token was replayed: end the whole session, access tokens too
            self.refresh_tokens.revoke_family(grant.family_id, until=grant.expires_at)
            self._revoke_session_access(grant.family_id)
            raise InvalidToken("refresh token was already used; the session is revoked")
        if self.refresh_tokens.is_family_revoked(grant.family_id):
            raise InvalidToken("refresh token was revoked")
        user = self._get_user(grant.user_id, error=InvalidToken("account no longer exists"))
        if user.disabled:
            raise InvalidToken("account is disabled")
        return self._issue_pair(user, family_id=grant.family_id, issued_at=now)

    def authenticate(self, access_token: str) -> Principal:
        """The caller behind a valid, unrevoked access token; raises InvalidToken otherwise."""
        return self._unrevoked(self.verified_tokens.verify(access_token))

    def authenticate_without_io(self, access_token: str) -> Principal | None:
        """authenticate, when it can answer from this process's memory alone (a token verified
        before, a revocation list mirrored here), so that a caller on an event loop need not move
        it to a thread; None when it cannot."""
        if not self.revocations.answers_without_io():
            return None
        claims = self.verified_tokens.known(access_token)
        return None if claims is None else self._unrevoked(claims)

    def _unrevoked(self, claims: AccessClaims) -> Principal:
        if self.revocations.is_revoked(
            claims.token_id, _session_key(claims.session_id), user_id=claims.subject, issued_at=claims.issued_at
        ):
            raise InvalidToken("token was revoked")
        return Principal(
            user_id=claims.subject, username=claims.username, roles=claims.roles,
            token_id=claims.token_id, session_id=claims.session_id, expires_at=claims.expires_at,
        )

    def logout(self, principal: Principal) -> None:
        """Revoke the presented access token and every refresh token of its session."""
        self.revocations.revoke(principal.token_id, until=principal.expires_at)
        until = self.clock.now() + timedelta(seconds=self.refresh_ttl)
        self.refresh_tokens.revoke_family(principal.session_id, until=until)
        self._revoke_session_access(principal.session_id)

    def _revoke_session_access(self, session_id: str) -> None:
        """Every access token of the session, not only the one presented: they all carry its id."""
        self.revocations.revoke(_session_key(session_id), until=self.clock.now() + timedelta(seconds=self.access_ttl))

    def public_keys(self) -> dict[str, Any]:
        """The JWK Set that verifies access tokens."""
        return self.tokens.public_keys()

    # --- profiles and roles ------------------------------------------------------

    def get_profile(self, principal: Principal, user_id: UUID) -> Profile | PublicProfile:
        """Full profile for oneself and admins, public profile for everyone else."""
        user = self._get_user(user_id)
        if user.may_manage(principal.user_id, principal.roles):
            return _profile(user)
        return _public_profile(user)

    def get_own_profile(self, principal: Principal) -> Profile:
        """The caller's full profile."""
        return _profile(self._get_user(principal.user_id))

    def update_profile(
        self, principal: Principal, user_id: UUID, *, display_name: str | None = None,
        bio: str | None = None, avatar_url: str | None = None,
    ) -> Profile:
        """Edit display name, bio or avatar; self or admin."""
        user = self._get_user(user_id)
        user.update_profile(
            principal.user_id, principal.roles, display_name=display_name, bio=bio,
            avatar_url=avatar_url,
        )
        self.save(user)
        return _profile(user)

    def change_roles(self, principal: Principal, user_id: UUID, roles: list[str]) -> Profile:
        """Replace a user's roles; admin only. A real change ends every access token issued before it."""
        user = self._get_user(user_id)
        before = list(user.roles)
        user.change_roles(principal.roles, roles)
        if user.roles != before:
            self._revoke_earlier_tokens(user)
        return _profile(user)

    def disable(self, principal: Principal, user_id: UUID) -> Profile:
        """Stop an account from logging in or refreshing, and end its access tokens; admin only."""
        user = self._get_user(user_id)
        user.disable(principal.roles)
        self._revoke_earlier_tokens(user)  # also when it was disabled already: a retry completes the revocation
        return _profile(user)

    def _revoke_earlier_tokens(self, user: User) -> None:
        """Save the change and refuse every access token issued before it.

        Login and refresh take a token's iat before they read the user, so a token that
        still carries the old state has an iat before the cutoff taken after the save. The
        cutoff taken before the save makes the change fail closed: if the revocation list
        is unreachable nothing is saved (503) and the admin retries."""
        until = self.clock.now() + timedelta(seconds=self.access_ttl)
        self.revocations.revoke_issued_before(user.id, _millisecond(self.clock.now()), until)
        self.save(user)
        self.revocations.revoke_issued_before(user.id, _millisecond(self.clock.now()), until)

    # --- helpers ------------------------------------------------------------------

    def _issue_pair(self, user: User, family_id: str, issued_at: datetime) -> TokenPair:
        now = issued_at
        access = self.tokens.issue(
            AccessClaims(
                subject=user.id, username=user.username, roles=tuple(user.roles),
                token_id=self.ids.new_id().hex, session_id=family_id, issued_at=now,
                expires_at=now + timedelta(seconds=self.access_ttl),
            )
        )
        refresh = secrets.token_urlsafe(32)
        self.refresh_tokens.add(
            _hash_refresh_token(refresh), user.id, family_id,
            expires_at=now + timedelta(seconds=self.refresh_ttl),
        )
        return TokenPair(
            access_token=access, expires_in=self.access_ttl, refresh_token=refresh,
            refresh_expires_in=self.refresh_ttl,
        )

    def _find_by_login(self, username_or_email: str) -> User | None:
        value = username_or_email.strip().casefold()
        kind = "email" if "@" in value else "username"
        try:
            index: UniqueIndex = self.repository.get(index_id(kind, value))
        except AggregateNotFoundError:
            return None
        return self._get_user(index.user_id)

    def _get_user(self, user_id: UUID, error: Exception | None = None) -> User:
        try:
            user: object = self.repository.get(user_id)
        except AggregateNotFoundError:
            user = None
        if not isinstance(user, User):
            raise error or NotFound("no such user")
        return user

    def _exists(self, aggregate_id: UUID) -> bool:
        try:
            self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True
