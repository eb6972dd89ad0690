"""Bearer-key authentication and scope checks for ``/v1``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kassa.auth.service import Authenticator, Principal
from kassa.kit.errors import Forbidden, Unauthorized
from kassa.state import app_state

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer ksk_…`")


async def authorize(authenticator: Authenticator, token: str | None, scope: str) -> Principal:
    """The principal behind a bearer token (None: no usable Authorization header), if it
    holds ``scope``; 401 or 403 otherwise."""
    if token is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer ksk_…'")
    principal = await authenticator.authenticate(token)
    if principal is None:
        raise Unauthorized("the API key is unknown or revoked")
    if scope not in principal.scopes:
        raise Forbidden(f"this request needs the scope {scope}")
    return principal


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        token = None if credentials is None else credentials.credentials
        return await authorize(app_state(request).authenticator, token, scope)

    return dependency


WalletsRead = Annotated[Principal, Depends(require("wallets:read"))]
WalletsWrite = Annotated[Principal, Depends(require("wallets:write"))]
WithdrawalsWrite = Annotated[Principal, Depends(require("withdrawals:write"))]
EventsRead = Annotated[Principal, Depends(require("events:read"))]
PayoutsRead = Annotated[Principal, Depends(require("payouts:read"))]
PayoutsWrite = Annotated[Principal, Depends(require("payouts:write"))]
WebhooksManage = Annotated[Principal, Depends(require("webhooks:manage"))]
