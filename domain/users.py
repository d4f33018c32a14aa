"""Users: registration, profile, password, roles; uniqueness through index aggregates."""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import PermissionDenied, ValidationError

USER, MODERATOR, ADMIN = "user", "moderator", "admin"
ROLES = (USER, MODERATOR, ADMIN)

USERNAME_PATTERN = re.compile(r"[a-z0-9_.-]{3,32}")
# Deliberately simple: one @, no spaces or control characters, a dot in the domain.
EMAIL_PATTERN = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
MAX_EMAIL_LENGTH = 254
PASSWORD_MIN, PASSWORD_MAX = 10, 256
DISPLAY_NAME_MAX, BIO_MAX, AVATAR_URL_MAX = 64, 2000, 2048


def normalise_username(username: str) -> str:
    name = username.strip().casefold()
    if not USERNAME_PATTERN.fullmatch(name):
        raise ValidationError("username", "3 to 32 characters of a-z, 0-9, _ . -")
    return name


def normalise_email(email: str) -> str:
    address = email.strip().casefold()
    if len(address) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.fullmatch(address):
        raise ValidationError("email", "not a valid email address")
    return address


def check_password_policy(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValidationError("password", f"{PASSWORD_MIN} to {PASSWORD_MAX} characters")


def check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise ValidationError("roles", f"choose one or more of {', '.join(ROLES)}")
    return [role for role in ROLES if role in roles]


def _check_text(field: str, value: str | None, limit: int) -> None:
    if value is None:
        return
    if len(value) > limit:
        raise ValidationError(field, f"at most {limit} characters")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        raise ValidationError(field, "control characters are not allowed")


def _check_avatar_url(url: str | None) -> None:
    _check_text("avatar_url", url, AVATAR_URL_MAX)
    if url and not url.startswith(("https://", "http://")):
        raise ValidationError("avatar_url", "must be an http(s) URL")


class User(Aggregate):
    # Declared (not `@event("Name")`) so that a type checker sees them; the names, hence the
    # stored topics, and the fields are those the decorated methods gave them.
    class Registered(Aggregate.Created):
        username: str
        email: str
        password_hash: str
        roles: list[str]
        display_name: str

    @event(Registered)
    def __init__(
        self, id: UUID, username: str, email: str, password_hash: str, roles: list[str], display_name: str
    ) -> None:
        self.username = username
        self.email = email
        self.password_hash = password_hash
        self.roles = roles
        self.display_name = display_name
        self.bio = ""
        self.avatar_url: str | None = None
        self.disabled = False

    @classmethod
    def register(
        cls, user_id: UUID, username: str, email: str, password_hash: str, *, first: bool,
        display_name: str | None = None,
    ) -> User:
        """The first account ever registered administers the platform."""
        username = normalise_username(username)
        email = normalise_email(email)
        display_name = (display_name or "").strip() or username
        _check_text("display_name", display_name, DISPLAY_NAME_MAX)
        roles = [ADMIN] if first else [USER]
        return cls(
            id=user_id, username=username, email=email, password_hash=password_hash,
            roles=roles, display_name=display_name,
        )

    def may_manage(self, actor_id: UUID, actor_roles: tuple[str, ...] | list[str]) -> bool:
        return actor_id == self.id or ADMIN in actor_roles

    def update_profile(
        self, actor_id: UUID, actor_roles: tuple[str, ...], *, display_name: str | None,
        bio: str | None, avatar_url: str | None,
    ) -> None:
        if not self.may_manage(actor_id, actor_roles):
            raise PermissionDenied("only the user or an admin may edit this profile")
        if display_name is not None:
            display_name = display_name.strip()
            if not display_name:
                raise ValidationError("display_name", "must not be blank")
        _check_text("display_name", display_name, DISPLAY_NAME_MAX)
        _check_text("bio", bio, BIO_MAX)
        _check_avatar_url(avatar_url)
        self._profile_updated(display_name=display_name, bio=bio, avatar_url=avatar_url)

    class ProfileUpdated(Aggregate.Event):
        display_name: str | None
        bio: str | None
        avatar_url: str | None

    @event(ProfileUpdated)
    def _profile_updated(self, display_name: str | None, bio: str | None, avatar_url: str | None) -> None:
        if display_name is not None:
            self.display_name = display_name
        if bio is not None:
            self.bio = bio
        if avatar_url is not None:
            self.avatar_url = avatar_url or None

    @event("PasswordChanged")
    def change_password(self, password_hash: str) -> None:
        self.password_hash = password_hash

    def change_roles(self, actor_roles: tuple[str, ...], roles: list[str]) -> None:
        if ADMIN not in actor_roles:
            raise PermissionDenied("only an admin may change roles")
        roles = check_roles(roles)
        if roles != self.roles:  # the same roles again are no change, and revoke nothing
            self._roles_changed(roles=roles)

    @event("RolesChanged")
    def _roles_changed(self, roles: list[str]) -> None:
        self.roles = roles

    def disable(self, actor_roles: tuple[str, ...]) -> None:
        if ADMIN not in actor_roles:
            raise PermissionDenied("only an admin may disable an account")
        if not self.disabled:
            self._disabled()

    @event("Disabled")
    def _disabled(self) -> None:
        self.disabled = True


class UniqueIndex(Aggregate):
    """Claims one normalised value (a username, an email, the first-admin seat). Its id is
    derived from the value, so two claims collide on version 1 in the event store, atomically."""

    @staticmethod
    def create_id(kind: str, value: str) -> UUID:
        return index_id(kind, value)

    @event("Claimed")
    def __init__(self, kind: str, value: str, user_id: UUID) -> None:
        self.kind = kind
        self.value = value
        self.user_id = user_id


def index_id(kind: str, value: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"vodhub:{kind}:{value}")


FIRST_ADMIN = ("first-admin", "seat")
