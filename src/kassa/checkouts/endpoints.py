"""``/v1/checkouts``: checkout sessions for the hosted withdrawal page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth import repository as auth_repository
from kassa.auth.deps import require
from kassa.auth.service import Principal
from kassa.checkouts import repository, service
from kassa.checkouts.schemas import (
    CheckoutList,
    CheckoutOut,
    IssuedCheckout,
    NewCheckout,
    PageSettings,
    Status,
)
from kassa.idempotency.http import respond
from kassa.kit.http import body_schema, json_response, parse_json, read_body, refuse_unknown_query
from kassa.kit.ids import parse_id
from kassa.kit.openapi import doc
from kassa.kit.pagination import DEFAULT_LIMIT, Limit
from kassa.state import app_state

router = APIRouter(
    prefix="/v1/checkouts", tags=["checkouts"], dependencies=[Depends(refuse_unknown_query)]
)
CheckoutsRead = Annotated[Principal, Depends(require("checkouts:read"))]
CheckoutsWrite = Annotated[Principal, Depends(require("checkouts:write"))]


@router.post(
    "",
    openapi_extra=body_schema(NewCheckout),
    **doc(
        IssuedCheckout,
        201,
        (404, "the customer has no wallet in the currency (`not_found`)"),
        422,
        summary="Create a checkout session",
    ),
)
async def create_checkout(request: Request, principal: CheckoutsWrite) -> Response:
    """A session for one customer's withdrawal on the hosted page: send the customer to its
    ``url``. The ``client_secret`` (part of the url) is shown this once."""
    raw = await read_body(request)
    body = parse_json(raw, NewCheckout)
    state = app_state(request)
    now = state.clock.now()
    base_url = str(request.base_url).rstrip("/")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        issued = await service.create(
            state.db,
            conn,
            principal.tenant_id,
            principal.currency,
            body,
            base_url,
            state.settings.webhook_allowed_hosts,
            now,
        )
        return 201, issued

    return await respond(
        request, state, principal, raw, now, work, sealed=True, collection="/v1/checkouts"
    )


@router.get("/settings", **doc(PageSettings, 200, summary="Get the hosted page's settings"))
async def get_settings(request: Request, principal: CheckoutsRead) -> Response:
    """The origins that may frame the hosted page (none by default), and how instruments added
    on it are marked (``unverified`` by default)."""
    state = app_state(request)
    async with state.db.read() as conn:
        tenant = await auth_repository.get_tenant(conn, principal.tenant_id)
    return json_response(service.page_settings(tenant))


@router.put(
    "/settings",
    openapi_extra=body_schema(PageSettings),
    **doc(PageSettings, 200, 422, summary="Set the hosted page's settings"),
)
async def put_settings(request: Request, principal: CheckoutsWrite) -> Response:
    """Replace the origins that may frame the hosted page (its CSP ``frame-ancestors``) and
    how instruments added on it are marked (a member left out takes its default)."""
    raw = await read_body(request)
    body = parse_json(raw, PageSettings)
    state = app_state(request)
    now = state.clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        await auth_repository.set_checkout_frame_ancestors(
            conn, principal.tenant_id, body.frame_ancestors
        )
        await auth_repository.set_checkout_added_instruments(
            conn, principal.tenant_id, body.added_instruments
        )
        return 200, body

    return await respond(request, state, principal, raw, now, work)


@router.get("", **doc(CheckoutList, 200, 422, summary="List checkout sessions"))
async def list_checkouts(
    request: Request,
    principal: CheckoutsRead,
    status: Annotated[Status | None, Query()] = None,
    customer_id: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$")] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """The tenant's sessions, newest first, optionally by status (as stored) or customer."""
    state = app_state(request)
    now = state.clock.now()
    async with state.db.read() as conn:
        rows = await repository.list_checkouts(
            conn, principal.tenant_id, status=status, customer_id=customer_id, limit=limit
        )
    return json_response(CheckoutList(data=[service.shown(row, now) for row in rows]))


@router.get("/{checkout_id}", **doc(CheckoutOut, 200, 404, summary="Get a checkout session"))
async def get_checkout(request: Request, checkout_id: str, principal: CheckoutsRead) -> Response:
    """A session: its status, and its payout once the customer confirmed."""
    state = app_state(request)
    async with state.db.read() as conn:
        found = await service.get(
            conn, principal.tenant_id, parse_id(checkout_id, "checkout"), state.clock.now()
        )
    return json_response(found)


@router.post(
    "/{checkout_id}/expire",
    **doc(
        CheckoutOut,
        200,
        404,
        (409, "not open (`checkout_closed`)"),
        summary="Expire a checkout session",
    ),
)
async def expire_checkout(
    request: Request, checkout_id: str, principal: CheckoutsWrite
) -> Response:
    """Close an open session now: its page shows it expired and moves no money."""
    raw = await read_body(request)
    state = app_state(request)
    now = state.clock.now()
    parsed = parse_id(checkout_id, "checkout")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 200, await service.expire(conn, principal.tenant_id, parsed, now)

    return await respond(request, state, principal, raw, now, work)
