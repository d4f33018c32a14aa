"""User profile and role routes."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody

from adapters.inbound.http.dependencies import AccountsDep, PrincipalDep
from adapters.inbound.http.schemas import ProfileUpdateRequest, RolesRequest
from application.accounts import Profile, PublicProfile


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/me", sync_to_thread=True)
    def me(self, principal: PrincipalDep, accounts: AccountsDep) -> Profile:
        """The caller's full profile."""
        return accounts.get_own_profile(principal)

    @get("/{user_id:uuid}", sync_to_thread=True)
    def get_user(self, user_id: FromPath[UUID], principal: PrincipalDep, accounts: AccountsDep) -> Profile | PublicProfile:
        """Full profile for oneself and admins; the public profile for everyone else."""
        return accounts.get_profile(principal, user_id)

    @put("/{user_id:uuid}", sync_to_thread=True)
    def update_user(
        self, user_id: FromPath[UUID], data: JSONBody[ProfileUpdateRequest], principal: PrincipalDep, accounts: AccountsDep
    ) -> Profile:
        """Edit display name, bio or avatar URL (self or admin)."""
        return accounts.update_profile(
            principal, user_id, display_name=data.display_name, bio=data.bio, avatar_url=data.avatar_url
        )

    @put("/{user_id:uuid}/roles", sync_to_thread=True)
    def change_roles(
        self, user_id: FromPath[UUID], data: JSONBody[RolesRequest], principal: PrincipalDep, accounts: AccountsDep
    ) -> Profile:
        """Replace a user's roles (admin only)."""
        return accounts.change_roles(principal, user_id, data.roles)

    @post("/{user_id:uuid}/disable", status_code=204, sync_to_thread=True)
    def disable_user(self, user_id: FromPath[UUID], principal: PrincipalDep, accounts: AccountsDep) -> None:
        """Disable an account (admin only): no more logins or refreshes, and its access tokens fail at once."""
        accounts.disable(principal, user_id)
