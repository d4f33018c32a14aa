"""Auth routes and the bearer-token dependency that every protected route declares."""

from __future__ import annotations

import msgspec
from anyio import to_thread
from litestar import Controller, Request, get, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.types import ASGIApp

from adapters.inbound.http.answers import PlainAnswer, header
from adapters.inbound.http.dependencies import AccountsDep, BulkheadsDep, PrincipalDep
from adapters.inbound.http.schemas import LoginRequest, RefreshRequest, RegisterRequest, ValidateResponse
from application.accounts import Accounts, Principal, Profile, TokenPair
from application.errors import InvalidToken

NO_TOKEN: list[dict[str, list[str]]] = [{}]  # OpenAPI security: this route needs no token


async def provide_principal(request: Request, accounts: Accounts) -> Principal:
    """The caller proven by `Authorization: Bearer <access token>`; 401 otherwise."""
    scheme, _, token = (header(request.scope, b"authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("an access token is required: Authorization: Bearer <token>")
    token = token.strip()
    principal = accounts.authenticate_without_io(token)
    return principal if principal is not None else await to_thread.run_sync(accounts.authenticate, token)


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    # Both hash a password (argon2, 64 MiB each by default): they run in the hashing bulkhead.
    @post("/register", status_code=201, security=NO_TOKEN)
    async def register(self, data: JSONBody[RegisterRequest], accounts: AccountsDep, bulkheads: BulkheadsDep) -> Profile:
        """Create an account; the first one ever registered is admin."""
        return await bulkheads.hashing.run(accounts.register, data.username, data.email, data.password,
                                           data.display_name)

    @post("/login", status_code=200, security=NO_TOKEN)
    async def login(self, data: JSONBody[LoginRequest], accounts: AccountsDep, bulkheads: BulkheadsDep) -> TokenPair:
        """Exchange credentials for an access token and a refresh token."""
        return await bulkheads.hashing.run(accounts.login, data.username_or_email, data.password)

    @post("/refresh", status_code=200, sync_to_thread=True, security=NO_TOKEN)
    def refresh(self, data: JSONBody[RefreshRequest], accounts: AccountsDep) -> TokenPair:
        """Spend a refresh token for a new pair (rotation; replay revokes the family)."""
        return accounts.refresh(data.refresh_token)

    @post("/logout", status_code=204, sync_to_thread=True)
    def logout(self, principal: PrincipalDep, accounts: AccountsDep) -> None:
        """Revoke the presented access token and its refresh family."""
        accounts.logout(principal)

    @get("/validate", responses={200: ResponseSpec(ValidateResponse, description="The token is valid")})
    async def validate(self, principal: PrincipalDep) -> ASGIApp:
        """For a gateway's auth subrequest: 200 with X-User-Id and X-User-Roles, or 401.
        Asked once per API request behind the gateway: a plain answer (see answers.py)."""
        user_id, roles = str(principal.user_id), ",".join(principal.roles)
        body = msgspec.json.encode(ValidateResponse(
            sub=principal.user_id, username=principal.username, roles=list(principal.roles),
            exp=int(principal.expires_at.timestamp()),
        ))
        return PlainAnswer(200, [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-user-id", user_id.encode()), (b"x-user-roles", roles.encode("latin-1")),
        ], body)


@get("/.well-known/jwks.json", tags=["auth"], security=NO_TOKEN)
async def jwks(accounts: AccountsDep) -> dict:
    """The public keys that verify access tokens (JWK Set)."""
    return accounts.public_keys()


__all__ = ["AuthController", "jwks", "provide_principal"]
