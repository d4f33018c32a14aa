"""Request and response bodies of the HTTP API (msgspec Structs; lengths bound every input)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

Username = Annotated[str, Meta(min_length=3, max_length=32, description="3–32 of [a-z0-9_.-], case-folded")]
Email = Annotated[str, Meta(min_length=3, max_length=254)]
Password = Annotated[str, Meta(min_length=10, max_length=256)]
DisplayName = Annotated[str, Meta(max_length=64)]


class RegisterRequest(msgspec.Struct):
    username: Username
    email: Email
    password: Password
    display_name: DisplayName | None = None


class LoginRequest(msgspec.Struct):
    username_or_email: Annotated[str, Meta(min_length=1, max_length=254)]
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class RefreshRequest(msgspec.Struct):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=512)]


class ValidateResponse(msgspec.Struct):
    sub: UUID
    username: str
    roles: list[str]
    exp: int


class ProfileUpdateRequest(msgspec.Struct):
    display_name: DisplayName | None = None
    bio: Annotated[str, Meta(max_length=2000)] | None = None
    avatar_url: Annotated[str, Meta(max_length=2048)] | None = None


class RolesRequest(msgspec.Struct):
    roles: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(min_length=1, max_length=3)]


class VideoPatchRequest(msgspec.Struct):
    """A JSON merge patch: an absent field stays as it is; null clears description, tags and genre."""

    title: Annotated[str, Meta(max_length=200)] | None | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=5000)] | None | UnsetType = UNSET
    tags: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(max_length=20)] | None | UnsetType = UNSET
    genre: Annotated[str, Meta(max_length=32)] | None | UnsetType = UNSET
    visibility: Annotated[str, Meta(max_length=16)] | None | UnsetType = UNSET

    def given(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        """(the fields set to a value, the fields set to null)."""
        fields = {name: getattr(self, name) for name in self.__struct_fields__ if getattr(self, name) is not UNSET}
        return ({name: value for name, value in fields.items() if value is not None},
                tuple(name for name, value in fields.items() if value is None))


class CommentRequest(msgspec.Struct):
    body: Annotated[str, Meta(max_length=20_000)]
    parent_id: UUID | None = None


class CommentEditRequest(msgspec.Struct):
    body: Annotated[str, Meta(max_length=20_000)]
