"""``/v1/payouts`` and ``/v1/payment-options``.

A payout's creation and its status changes are marked ``kit.http.direct``: the app's ASGI front
(``wallets.hotpath``) serves them without FastAPI's middleware, routing and dependency solving,
so each checks its query and its key itself, in the order FastAPI's dependencies did (an unknown
query parameter first, then the key), and answers alike either way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.deps import (
    PayoutsReadOrCustomer,
    PayoutsWrite,
    authorize,
    require,
)
from kassa.auth.service import Principal
from kassa.idempotency.http import answer_response, request_key, respond, with_location
from kassa.kit.http import (
    bearer_token,
    body_schema,
    direct,
    json_response,
    parse_json,
    raise_unknown,
    read_body,
    refuse_unknown_query,
)
from kassa.kit.ids import parse_id
from kassa.kit.openapi import doc
from kassa.kit.pagination import DEFAULT_LIMIT, Limit, Page, StartingAfter
from kassa.payouts import actions, lifecycle, options
from kassa.payouts.schemas import (
    NewPayout,
    PaymentOptions,
    PayoutAwaitingSca,
    PayoutOut,
    PayoutStatus,
    StatusChange,
)
from kassa.state import AppState, app_state

router = APIRouter(prefix="/v1", tags=["payouts"], dependencies=[Depends(refuse_unknown_query)])
SETTLE_SCOPE = lifecycle.SETTLE_SCOPE
WRITE_SCOPE = "payouts:write"


@router.get("/payment-options", **doc(PaymentOptions, 200, summary="Get payment options"))
async def get_payment_options(request: Request, principal: PayoutsReadOrCustomer) -> Response:
    """How the tenant's customers can be paid out: each option's instruments, currencies,
    limits, fee and rail, and how long a PENDING payout may wait."""
    state = app_state(request)
    async with state.db.read() as conn:
        return json_response(await options.get_options(conn, principal.tenant_id))


@router.put(
    "/payment-options",
    openapi_extra=body_schema(PaymentOptions),
    **doc(PaymentOptions, 200, 422, summary="Replace payment options"),
)
async def put_payment_options(request: Request, principal: PayoutsWrite) -> Response:
    """Replace the tenant's payment options (and its pending TTL) as a whole."""
    raw = await read_body(request)
    body = parse_json(raw, PaymentOptions)
    state = app_state(request)
    now = state.clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 200, await options.put_options(conn, principal.tenant_id, body, now)

    return await respond(request, state, principal, raw, now, work)


@router.post(
    "/payouts",
    openapi_extra=body_schema(NewPayout),
    **doc(
        PayoutOut,
        201,
        404,
        (
            409,
            "the instrument is not verified (`instrument_not_verified`), the wallet is frozen"
            " or closed, or the reference was used",
        ),
        (
            422,
            "the payment option is unknown or refuses this payout (`unknown_payment_option`,"
            " `payment_option_refused`)",
        ),
        summary="Create a payout",
    ),
    # Documents the key it needs; the app's ASGI front serves the route (``direct``), and the
    # endpoint checks the key itself.
    dependencies=[Depends(require(WRITE_SCOPE))],
)
@direct
async def create_payout(request: Request) -> Response:
    """A payout in PREVIEW: its fee is fixed and shown; no money moves until PENDING."""
    state, principal = await _authorized(request)
    raw = await read_body(request)
    body = parse_json(raw, NewPayout)
    key = request_key(request, principal.tenant_id, raw)
    done = await actions.create(state, principal, body, key, state.clock.now())
    return answer_response(with_location(done.answer, "/v1/payouts"))


@router.get("/payouts", **doc(Page[PayoutOut], 200, 404, 422, summary="List payouts"))
async def list_payouts(
    request: Request,
    principal: PayoutsReadOrCustomer,
    status: Annotated[PayoutStatus | None, Query()] = None,
    customer_id: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$")] = None,
    wallet_id: Annotated[str | None, Query(description="only this wallet's payouts")] = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Response:
    """The tenant's payouts, newest first, optionally by status, customer or wallet (a
    customer token's: its customer's only)."""
    state = app_state(request)
    if principal.customer_id is not None:
        if customer_id is not None and customer_id != principal.customer_id:
            return json_response(Page[PayoutOut](data=[], has_more=False))
        customer_id = principal.customer_id
    after = parse_id(starting_after, "payout") if starting_after else None
    wallet = parse_id(wallet_id, "wallet") if wallet_id else None
    async with state.db.read() as conn:
        page = await lifecycle.list_payouts(
            conn,
            principal.tenant_id,
            status=status,
            customer_id=customer_id,
            wallet_id=wallet,
            starting_after=after,
            limit=limit,
        )
    return json_response(page)


@router.get("/payouts/{payout_id}", **doc(PayoutOut, 200, 404, summary="Get a payout"))
async def get_payout(
    request: Request, payout_id: str, principal: PayoutsReadOrCustomer
) -> Response:
    """A payout with its fees, its status history and the statuses it may move to."""
    state = app_state(request)
    async with state.db.read() as conn:
        found = await lifecycle.get(conn, principal.tenant_id, parse_id(payout_id, "payout"))
    if not principal.owns(found.customer_id):
        raise lifecycle.not_found(payout_id)
    return json_response(found)


@router.post(
    "/payouts/{payout_id}/status",
    openapi_extra=body_schema(StatusChange),
    **doc(
        PayoutOut,
        200,
        404,
        (
            409,
            "the payout cannot move there (`invalid_status_transition`, `payout_expired`),"
            " or the wallet lacks the funds (`insufficient_funds`)",
        ),
        422,
        summary="Move a payout",
    ),
    # As for ``create_payout``: documented here, checked by the endpoint.
    dependencies=[Depends(require(WRITE_SCOPE))],
)
@direct
async def change_status(request: Request, payout_id: str) -> Response:
    """Move the payout to one of its ``next_status``. PENDING places the hold, CANCELLED
    releases it; a manual payout's COMPLETED or FAILED needs the scope ``payouts:settle``."""
    state, principal = await _authorized(request)
    raw = await read_body(request)
    body = parse_json(raw, StatusChange)
    key = request_key(request, principal.tenant_id, raw)
    payout = parse_id(payout_id, "payout")
    done = await actions.change_status(
        state, principal, payout, body.status, body.reason, key, state.clock.now()
    )
    if isinstance(done, actions.AwaitingSca):
        shown = done.payout.model_dump()
        return json_response(PayoutAwaitingSca(**{**shown, "action": "SCA", "sca": done.event}))
    return answer_response(done.answer)


async def _authorized(request: Request) -> tuple[AppState, Principal]:
    """What FastAPI's dependencies did for a ``direct`` route, in their order: the router's
    refusal of a query parameter (these routes take none), then the key (or a customer token)
    and its ``payouts:write``."""
    raise_unknown(request.query_params.keys(), frozenset())
    state = app_state(request)
    token = bearer_token(request.headers.get("authorization"))
    return state, await authorize(state.authenticator, token, WRITE_SCOPE, customers=True)
