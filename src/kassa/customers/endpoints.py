"""``/v1/customers/{customer_id}/tokens``: a token a merchant's app or page holds to act for one
customer (read its wallets, payouts and instruments; make and move its payouts; complete its
SCA), never the merchant's API key. Issued with the scope ``customers:tokens``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth import repository, service
from kassa.auth.deps import CustomersTokens
from kassa.customers.schemas import (
    CustomerTokenInfo,
    CustomerTokenList,
    IssuedCustomerTokenOut,
    NewCustomerToken,
)
from kassa.idempotency.http import respond
from kassa.kit.errors import NotFound
from kassa.kit.http import body_schema, json_response, parse_json, read_body, refuse_unknown_query
from kassa.kit.ids import parse_id
from kassa.kit.openapi import doc
from kassa.state import app_state

router = APIRouter(
    prefix="/v1/customers/{customer_id}/tokens",
    tags=["customers"],
    dependencies=[Depends(refuse_unknown_query)],
)
CustomerId = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[^\x00]+$")]


@router.post(
    "",
    openapi_extra=body_schema(NewCustomerToken),
    **doc(IssuedCustomerTokenOut, 201, 422, summary="Issue a customer token"),
)
async def issue_token(
    request: Request, customer_id: CustomerId, principal: CustomersTokens
) -> Response:
    """A token for this one customer (``Authorization: Bearer kct_…``), shown once; it lasts
    ``expires_in`` seconds (default 15 minutes) unless revoked first."""
    raw = await read_body(request)
    body = parse_json(raw, NewCustomerToken) if raw.strip() else NewCustomerToken()
    state = app_state(request)
    now = state.clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        issued = await service.issue_customer_token(
            conn, principal, customer_id, body.scopes, timedelta(seconds=body.expires_in), now
        )
        return 201, IssuedCustomerTokenOut(
            id=issued.id,
            customer_id=issued.customer_id,
            scopes=issued.scopes,
            created_at=issued.created_at,
            expires_at=issued.expires_at,
            token=issued.token,
        )

    # The answer shows the token: under an Idempotency-Key it is stored sealed.
    collection = request.url.path
    return await respond(
        request, state, principal, raw, now, work, sealed=True, collection=collection
    )


@router.get("", **doc(CustomerTokenList, 200, summary="List a customer's tokens in force"))
async def list_tokens(
    request: Request, customer_id: CustomerId, principal: CustomersTokens
) -> Response:
    """The customer's tokens not expired or revoked, newest first (never the tokens themselves)."""
    state = app_state(request)
    async with state.db.read() as conn:
        rows = await repository.list_customer_tokens(
            conn, principal.tenant_id, customer_id, state.clock.now()
        )
    return json_response(CustomerTokenList(data=[_info(row) for row in rows]))


@router.delete("/{token_id}", **doc(CustomerTokenInfo, 200, 404, summary="Revoke a customer token"))
async def revoke_token(
    request: Request, customer_id: CustomerId, token_id: str, principal: CustomersTokens
) -> Response:
    """The token stops working at once in this process, and within ``KASSA_AUTH_CACHE_SECONDS``
    in every other."""
    state = app_state(request)
    token = parse_id(token_id, "customer token")
    async with state.db.write() as conn:
        row = await repository.revoke_customer_token(
            conn, principal.tenant_id, customer_id, token, state.clock.now()
        )
    if row is None:
        raise NotFound(f"customer token {token_id} not found")
    state.authenticator.forget(f"{service.CUSTOMER_TOKEN_PREFIX}_{row.prefix}")
    return json_response(_info(row))


def _info(row: Row[Any]) -> CustomerTokenInfo:
    return CustomerTokenInfo(
        id=row.id,
        customer_id=row.customer_id,
        scopes=row.scopes.split(),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
