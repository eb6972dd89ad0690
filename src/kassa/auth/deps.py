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


async def authorize(
    authenticator: Authenticator, token: str | None, scope: str, *, customers: bool = False
) -> Principal:
    """The principal behind a bearer token (None: no usable Authorization header), if it
    holds ``scope``; 401 or 403 otherwise. A customer token passes only where the route says
    ``customers=True`` (and the route then limits it to its own customer's objects): every
    other route answers it 403."""
    if token is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer ksk_…'")
    principal = await authenticator.authenticate(token)
    if principal is None:
        raise Unauthorized("the API key or customer token is unknown, expired or revoked")
    if principal.customer_id is not None and not customers:
        raise Forbidden("a customer token cannot make this request; it needs the API key")
    if scope not in principal.scopes:
        raise Forbidden(f"this request needs the scope {scope}")
    return principal


def require(scope: str, *, customers: bool = False) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        token = None if credentials is None else credentials.credentials
        return await authorize(app_state(request).authenticator, token, scope, customers=customers)

    return dependency


WalletsRead = Annotated[Principal, Depends(require("wallets:read"))]
WalletsWrite = Annotated[Principal, Depends(require("wallets:write"))]
WithdrawalsWrite = Annotated[Principal, Depends(require("withdrawals:write"))]
EventsRead = Annotated[Principal, Depends(require("events:read"))]
PayoutsRead = Annotated[Principal, Depends(require("payouts:read"))]
PayoutsWrite = Annotated[Principal, Depends(require("payouts:write"))]
WebhooksManage = Annotated[Principal, Depends(require("webhooks:manage"))]

# The same scopes, on routes that also take a customer token (its own customer's objects only).
WalletsReadOrCustomer = Annotated[Principal, Depends(require("wallets:read", customers=True))]
PayoutsReadOrCustomer = Annotated[Principal, Depends(require("payouts:read", customers=True))]
PayoutsWriteOrCustomer = Annotated[Principal, Depends(require("payouts:write", customers=True))]
CustomersTokens = Annotated[Principal, Depends(require("customers:tokens"))]
