"""``/v1/payouts`` and ``/v1/payment-options``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.deps import PayoutsRead, PayoutsWrite
from kassa.idempotency.http import respond
from kassa.idempotency.service import REPLAYED_HEADER
from kassa.kit.dberrors import error_summary
from kassa.kit.http import body_schema, json_response, parse_json, read_body, refuse_unknown_query
from kassa.kit.ids import parse_id
from kassa.kit.openapi import doc
from kassa.kit.pagination import DEFAULT_LIMIT, Limit, Page, StartingAfter
from kassa.payouts import service
from kassa.payouts.schemas import NewPayout, PaymentOptions, PayoutOut, PayoutStatus, StatusChange
from kassa.state import AppState, app_state

router = APIRouter(prefix="/v1", tags=["payouts"], dependencies=[Depends(refuse_unknown_query)])
log = structlog.get_logger("kassa.payouts")
CONNECTOR_TIMEOUT_SECONDS = 10.0


@router.get("/payment-options", **doc(PaymentOptions, 200))
async def get_payment_options(request: Request, principal: PayoutsRead) -> Response:
    state = app_state(request)
    async with state.db.read() as conn:
        return json_response(await service.get_options(conn, principal.tenant_id))


@router.put(
    "/payment-options", openapi_extra=body_schema(PaymentOptions), **doc(PaymentOptions, 200, 422)
)
async def put_payment_options(request: Request, principal: PayoutsWrite) -> Response:
    """Replace the tenant's payment options (and its pending TTL) as a whole."""
    raw = await read_body(request)
    body = parse_json(raw, PaymentOptions)
    state = app_state(request)
    now = state.clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 200, await service.put_options(conn, principal.tenant_id, body, now)

    return await respond(request, state, principal, raw, now, work)


@router.post("/payouts", openapi_extra=body_schema(NewPayout), **doc(PayoutOut, 201, 404, 409, 422))
async def create_payout(request: Request, principal: PayoutsWrite) -> Response:
    """A payout in PREVIEW: its fee is fixed and shown; no money moves until PENDING."""
    raw = await read_body(request)
    body = parse_json(raw, NewPayout)
    state = app_state(request)
    now = state.clock.now()
    ttl = timedelta(minutes=state.settings.payout_preview_minutes)

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 201, await service.create(conn, principal.tenant_id, body, now, ttl)

    return await respond(request, state, principal, raw, now, work)


@router.get("/payouts", **doc(Page[PayoutOut], 200, 404, 422))
async def list_payouts(
    request: Request,
    principal: PayoutsRead,
    status: Annotated[PayoutStatus | None, Query()] = None,
    customer_id: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$")] = None,
    wallet_id: Annotated[str | None, Query(description="only this wallet's payouts")] = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Response:
    state = app_state(request)
    after = parse_id(starting_after, "payout") if starting_after else None
    wallet = parse_id(wallet_id, "wallet") if wallet_id else None
    async with state.db.read() as conn:
        page = await service.list_payouts(
            conn,
            principal.tenant_id,
            status=status,
            customer_id=customer_id,
            wallet_id=wallet,
            starting_after=after,
            limit=limit,
        )
    return json_response(page)


@router.get("/payouts/{payout_id}", **doc(PayoutOut, 200, 404))
async def get_payout(request: Request, payout_id: str, principal: PayoutsRead) -> Response:
    state = app_state(request)
    async with state.db.read() as conn:
        found = await service.get(conn, principal.tenant_id, parse_id(payout_id, "payout"))
    return json_response(found)


@router.post(
    "/payouts/{payout_id}/status",
    openapi_extra=body_schema(StatusChange),
    **doc(PayoutOut, 200, 404, 409, 422),
)
async def change_status(request: Request, payout_id: str, principal: PayoutsWrite) -> Response:
    """Move the payout to one of its ``next_status``. PENDING places the hold, CANCELLED
    releases it; a manual payout's COMPLETED or FAILED needs the scope ``payouts:settle``."""
    raw = await read_body(request)
    body = parse_json(raw, StatusChange)
    state = app_state(request)
    now, payout = state.clock.now(), parse_id(payout_id, "payout")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        changed = await service.change_status(
            conn, principal.tenant_id, payout, body.status, body.reason, now, principal.scopes
        )
        return 200, changed

    response = await respond(request, state, principal, raw, now, work)
    if body.status == "PROCESSING" and response.status_code == 200 and not _replayed(response):
        await _submit(state, principal.tenant_id, payout)
    return response


def _replayed(response: Response) -> bool:
    return response.headers.get(REPLAYED_HEADER[0]) == REPLAYED_HEADER[1]


async def _submit(state: AppState, tenant_id: uuid.UUID, payout_id: uuid.UUID) -> None:
    """Hand a payout that just became PROCESSING to its connector, outside any transaction. If
    the connector fails or times out, the payout stays PROCESSING and the worker recovers it."""
    async with state.db.read() as conn:
        payout = await service.processing_ref(conn, tenant_id, payout_id)
    connector = state.connectors.get(payout.connector)
    if connector is None:
        log.error("payout_connector_unknown", payout_id=str(payout_id), name=payout.connector)
        return
    try:
        async with asyncio.timeout(CONNECTOR_TIMEOUT_SECONDS):
            submitted = await connector.submit(payout.ref, state.clock.now())
    except Exception as error:  # noqa: BLE001 - whatever the rail does, the worker recovers
        # The kind of failure only: a rail's message may quote the payout's details.
        log.warning(
            "payout_submit_failed",
            payout_id=str(payout_id),
            error=error_summary("submit", error),
        )
        return
    async with state.db.write() as conn:
        await service.record_submission(conn, payout_id, submitted)
