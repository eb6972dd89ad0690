"""``/v1/customers/{customer_id}/instruments``: a customer's bank accounts and cards."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.deps import PayoutsReadOrCustomer, PayoutsWrite, PayoutsWriteOrCustomer
from kassa.auth.service import Principal
from kassa.idempotency.http import respond
from kassa.instruments import service
from kassa.instruments.schemas import DeletedInstrument, InstrumentOut, NewInstrument
from kassa.kit.errors import NotFound
from kassa.kit.http import body_schema, json_response, parse_json, read_body, refuse_unknown_query
from kassa.kit.ids import parse_id
from kassa.kit.openapi import doc
from kassa.kit.pagination import DEFAULT_LIMIT, Limit, Page
from kassa.state import app_state

router = APIRouter(
    prefix="/v1/customers/{customer_id}/instruments",
    tags=["instruments"],
    dependencies=[Depends(refuse_unknown_query)],
)
CustomerId = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[^\x00]+$")]


def _own(principal: Principal, customer_id: str) -> None:
    """A customer token reaches its own customer's instruments only: any other is 404."""
    if not principal.owns(customer_id):
        raise NotFound(f"customer {customer_id} not found")


@router.post(
    "",
    openapi_extra=body_schema(NewInstrument),
    **doc(
        InstrumentOut,
        201,
        422,
        (503, "Kassa cannot open its stored secrets (`secrets_unavailable`)"),
        summary="Add a payment instrument",
    ),
)
async def create_instrument(
    request: Request, customer_id: CustomerId, principal: PayoutsWriteOrCustomer
) -> Response:
    """Add a bank account or card; it is checked, stored masked and starts ``unverified``."""
    _own(principal, customer_id)
    raw = await read_body(request)
    body = parse_json(raw, NewInstrument)
    state = app_state(request)
    now = state.clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        created = await service.create(conn, principal.tenant_id, customer_id, body, state.box, now)
        return 201, created

    collection = f"/v1/customers/{quote(customer_id, safe='')}/instruments"
    return await respond(request, state, principal, raw, now, work, collection=collection)


@router.get("", **doc(Page[InstrumentOut], 200, 422, summary="List a customer's instruments"))
async def list_instruments(
    request: Request,
    customer_id: CustomerId,
    principal: PayoutsReadOrCustomer,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """The customer's bank accounts and cards, newest first (masked)."""
    _own(principal, customer_id)
    state = app_state(request)
    async with state.db.read() as conn:
        page = await service.list_instruments(conn, principal.tenant_id, customer_id, limit)
    return json_response(page)


@router.get("/{instrument_id}", **doc(InstrumentOut, 200, 404, summary="Get an instrument"))
async def get_instrument(
    request: Request, customer_id: CustomerId, instrument_id: str, principal: PayoutsReadOrCustomer
) -> Response:
    """One of the customer's instruments (masked)."""
    _own(principal, customer_id)
    state = app_state(request)
    async with state.db.read() as conn:
        found = await service.get(
            conn, principal.tenant_id, customer_id, parse_id(instrument_id, "payment instrument")
        )
    return json_response(found)


@router.post(
    "/{instrument_id}/verify", **doc(InstrumentOut, 200, 404, summary="Verify an instrument")
)
async def verify_instrument(
    request: Request, customer_id: CustomerId, instrument_id: str, principal: PayoutsWrite
) -> Response:
    """Mark the instrument verified (the merchant has checked it is the customer's)."""
    raw = await read_body(request)
    state = app_state(request)
    now, instrument = state.clock.now(), parse_id(instrument_id, "payment instrument")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        verified = await service.verify(conn, principal.tenant_id, customer_id, instrument, now)
        return 200, verified

    return await respond(request, state, principal, raw, now, work)


@router.delete(
    "/{instrument_id}", **doc(DeletedInstrument, 200, 404, summary="Delete an instrument")
)
async def delete_instrument(
    request: Request,
    customer_id: CustomerId,
    instrument_id: str,
    principal: PayoutsWriteOrCustomer,
) -> Response:
    """Remove the instrument: no new payout can use it; payouts made with it keep it."""
    _own(principal, customer_id)
    raw = await read_body(request)
    state = app_state(request)
    now, instrument = state.clock.now(), parse_id(instrument_id, "payment instrument")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        deleted = await service.delete(conn, principal.tenant_id, customer_id, instrument, now)
        return 200, deleted

    return await respond(request, state, principal, raw, now, work)
