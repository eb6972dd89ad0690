"""The Paysafe dialect: Paysafe Embedded Wallet's withdrawal API, under ``/compat/paysafe``.

A withdrawal is a Kassa payout: created in PREVIEW (fee shown, nothing moves), moved to PENDING
(the hold), PROCESSING (handed to the rail), then COMPLETED or FAILED by the rail, or CANCELLED.
The business routes (``/v2/customers/{customerId}/withdrawals…``) take the partner token (a
Kassa API key, or a customer token for that customer); the ``/profile`` routes act for the
current customer, with a customer token. Every answer is built from Kassa's own (the same
payout, hold, journal and events as ``/v1``'s), and every refusal is Paysafe's
``{error: {code, message, details, fieldErrors}}``; see ``docs/dialects.md``.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kassa.auth.deps import authorize
from kassa.auth.service import Principal
from kassa.compat.common import json_answer
from kassa.compat.paysafe import documents, openapi, tokens
from kassa.compat.paysafe.documents import from_problem, render_error, withdrawal
from kassa.compat.paysafe.requests import parse_create, parse_instrument, parse_status
from kassa.idempotency import service as idempotency
from kassa.idempotency.http import answer_response
from kassa.idempotency.service import Answer
from kassa.instruments import service as instruments
from kassa.kit.errors import Forbidden, KassaError, NotFound, ValidationFailed
from kassa.kit.fields import TEXT255
from kassa.kit.http import bearer_token, direct, read_body
from kassa.payouts import actions, lifecycle, options
from kassa.payouts.schemas import NewPayout, PayoutOut
from kassa.sca import service as sca
from kassa.state import AppState, app_state
from kassa.wallets import lookup

BASE = "/compat/paysafe"
router = APIRouter(prefix=BASE, tags=["Paysafe dialect"])
READ, WRITE = "payouts:read", "payouts:write"
MAX_OFFSET = 10_000


class InvalidWithdrawAccount(KassaError):
    code = "invalid_withdraw_account"
    status = 400
    title = "The customer has no account in this currency to withdraw from"


async def _principal(
    request: Request, scope: str, *, customer_id: str | None = None, profile: bool = False
) -> Principal:
    """The partner token (an API key) or a customer token; a customer token reaches its own
    customer only (another is 404), and the ``/profile`` routes take nothing else."""
    state = app_state(request)
    token = bearer_token(request.headers.get("authorization"))
    principal = await authorize(state.authenticator, token, scope, customers=True)
    if profile and principal.customer_id is None:
        raise Forbidden("the /profile routes act for the current customer: send its token")
    if customer_id is not None:
        TEXT255.check(customer_id, "customerId")
        if not principal.owns(customer_id):
            raise NotFound(f"customer {customer_id} not found")
    return principal


def _customer(principal: Principal, customer_id: str | None) -> str:
    found = customer_id if customer_id is not None else principal.customer_id
    assert found is not None
    return found


async def _types(
    state: AppState, principal: Principal, payouts: list[PayoutOut]
) -> dict[uuid.UUID, str]:
    async with state.db.read() as conn:
        return await instruments.types_of(
            conn, principal.tenant_id, [payout.instrument_id for payout in payouts]
        )


def _key(request: Request, principal: Principal, raw: bytes) -> idempotency.Key | None:
    return idempotency.key_for(
        principal.tenant_id,
        request.headers.get(idempotency.HEADER),
        request.method,
        request.scope["path"],
        raw,
    )


async def _translate(state: AppState, principal: Principal, answer: Answer) -> Answer:
    """Kassa's answer (fresh or stored under an Idempotency-Key) in Paysafe's shape."""
    if answer.status >= 400:
        return from_problem(answer)
    payout = PayoutOut.model_validate_json(answer.body)
    types = await _types(state, principal, [payout])
    document = withdrawal(payout, types[payout.instrument_id])
    return json_answer(answer.status, document, [h for h in answer.headers if h[0] != "Location"])


# -- create ---------------------------------------------------------------------------------------


async def _create(request: Request, customer_id: str | None) -> Answer:
    state = app_state(request)
    try:
        principal = await _principal(
            request, WRITE, customer_id=customer_id, profile=customer_id is None
        )
        raw = await read_body(request)
        asked = parse_create(raw)
        customer = _customer(principal, customer_id)
        wallet = await lookup.find(
            state.db, principal.tenant_id, customer_id=customer, currency=asked.currency
        )
        if wallet is None:
            raise InvalidWithdrawAccount(f"customer {customer} has no {asked.currency} account")
        async with state.db.read() as conn:
            types = await instruments.types_of(conn, principal.tenant_id, [asked.instrument_id])
        known = types.get(asked.instrument_id)
        if known is not None and known != asked.instrument_type:
            field = "paymentInstrumentReference.instrumentType"
            message = f"the instrument is a {known}"
            raise ValidationFailed(
                message, errors=[{"field": field, "code": "mismatch", "message": message}]
            )
        body = NewPayout(
            wallet_id=wallet.id,
            amount=asked.amount,
            currency=asked.currency,
            payment_option=asked.payment_option,
            instrument_id=asked.instrument_id,
            reference=asked.reference,
            description=asked.description,
            metadata=asked.metadata,
        )
        done = await actions.create(
            state, principal, body, _key(request, principal, raw), state.clock.now()
        )
        return await _translate(state, principal, done.answer)
    except KassaError as error:
        return render_error(error)


@router.post("/v2/customers/{customerId}/withdrawals", **openapi.CREATE)
@direct
async def create_withdrawal(request: Request, customerId: str) -> Response:
    """Create a withdrawal for the customer, in PREVIEW: its fee is shown, nothing moves."""
    return answer_response(await _create(request, customerId))


@router.post("/profile/withdrawals", **openapi.PROFILE_CREATE)
@direct
async def create_own_withdrawal(request: Request) -> Response:
    """Create a withdrawal for the current customer (its token), in PREVIEW."""
    return answer_response(await _create(request, None))


# -- status ---------------------------------------------------------------------------------------


async def _move(request: Request, customer_id: str | None, withdrawal_id: str) -> Answer:
    state = app_state(request)
    try:
        principal = await _principal(
            request, WRITE, customer_id=customer_id, profile=customer_id is None
        )
        raw = await read_body(request)
        asked = parse_status(raw)
        payout_id = _id(withdrawal_id)
        async with state.db.read() as conn:
            before = await lifecycle.get(conn, principal.tenant_id, payout_id)
        if before.customer_id != _customer(principal, customer_id):
            raise lifecycle.not_found(payout_id)
        now = state.clock.now()
        if asked.sca_event is not None:
            event = await sca.get_event(state.db, principal, asked.sca_event, now)
            if event.payout_id != payout_id:
                message = "the SCA event is not this withdrawal's"
                raise ValidationFailed(
                    message,
                    errors=[
                        {"field": "scaDetails.eventId", "code": "mismatch", "message": message}
                    ],
                )
        done = await actions.change_status(
            state,
            principal,
            payout_id,
            asked.status,  # type: ignore[arg-type]
            asked.reason,
            _key(request, principal, raw),
            now,
        )
        if isinstance(done, actions.AwaitingSca):
            types = await _types(state, principal, [done.payout])
            document = withdrawal(done.payout, types[done.payout.instrument_id], done.event)
            return json_answer(200, document)
        return await _translate(state, principal, done.answer)
    except KassaError as error:
        return render_error(error)


def _id(withdrawal_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(withdrawal_id)
    except ValueError:
        raise NotFound(f"withdrawal {withdrawal_id} not found") from None


@router.post("/v2/customers/{customerId}/withdrawals/{withdrawalId}/status", **openapi.STATUS)
@direct
async def change_status(request: Request, customerId: str, withdrawalId: str) -> Response:
    """Move the withdrawal: PENDING (validated, funds held), PROCESSING (executed),
    CANCELLED; COMPLETED or FAILED for a manual rail (scope ``payouts:settle``)."""
    return answer_response(await _move(request, customerId, withdrawalId))


@router.post("/profile/withdrawals/{withdrawalId}/status", **openapi.PROFILE_STATUS)
@direct
async def change_own_status(request: Request, withdrawalId: str) -> Response:
    """Move the current customer's withdrawal (PENDING, PROCESSING, CANCELLED)."""
    return answer_response(await _move(request, None, withdrawalId))


# -- reads ----------------------------------------------------------------------------------------


def _query(request: Request, known: frozenset[str]) -> dict[str, str]:
    params = request.query_params
    unknown = sorted(set(params.keys()) - known)
    if unknown:
        raise ValidationFailed(
            f"unknown query parameter(s): {', '.join(unknown)}",
            errors=[
                {"field": name, "code": "unknown_parameter", "message": "not taken"}
                for name in unknown
            ],
        )
    return {name: params[name] for name in params}


def _integer(value: str | None, name: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        message = f"must be an integer from {low} to {high}"
        raise ValidationFailed(
            f"{name} {message}",
            errors=[{"field": name, "code": "out_of_range", "message": message}],
        )
    return int(value)


async def _list(request: Request, customer_id: str | None) -> Answer:
    state = app_state(request)
    try:
        principal = await _principal(
            request, READ, customer_id=customer_id, profile=customer_id is None
        )
        query = _query(request, frozenset({"merchantRefNum", "limit", "offset"}))
        limit = _integer(query.get("limit"), "limit", 1, 50, 10)
        offset = _integer(query.get("offset"), "offset", 0, MAX_OFFSET, 0)
        reference = query.get("merchantRefNum")
        if reference is not None:
            TEXT255.check(reference, "merchantRefNum")
        async with state.db.read() as conn:
            page = await lifecycle.list_payouts(
                conn,
                principal.tenant_id,
                status=None,
                customer_id=_customer(principal, customer_id),
                starting_after=None,
                limit=limit,
                reference=reference,
                offset=offset,
            )
            types = await instruments.types_of(
                conn, principal.tenant_id, [payout.instrument_id for payout in page.data]
            )
        found = [withdrawal(payout, types[payout.instrument_id]) for payout in page.data]
        meta = {
            "numberOfRecords": len(found),
            "limit": limit,
            "offset": offset,
            "page": offset // limit + 1,
        }
        return json_answer(200, {"withdrawals": found, "meta": meta})
    except KassaError as error:
        return render_error(error)


@router.get("/v2/customers/{customerId}/withdrawals", **openapi.LIST)
async def list_withdrawals(request: Request, customerId: str) -> Response:
    """The customer's withdrawals, newest first (``merchantRefNum``, ``limit`` 1-50,
    ``offset``)."""
    return answer_response(await _list(request, customerId))


@router.get("/profile/withdrawals", **openapi.PROFILE_LIST)
async def list_own_withdrawals(request: Request) -> Response:
    """The current customer's withdrawals, newest first."""
    return answer_response(await _list(request, None))


@router.get("/profile/withdrawals/options", **openapi.OPTIONS)
async def withdrawal_options(request: Request) -> Response:
    """The payment options the current customer can withdraw with: instrument types,
    currencies, limits and fee rule."""
    state = app_state(request)
    try:
        principal = await _principal(request, READ, profile=True)
        _query(request, frozenset())
        async with state.db.read() as conn:
            found = await options.get_options(conn, principal.tenant_id)
        answer = json_answer(200, documents.options(found))
    except KassaError as error:
        answer = render_error(error)
    return answer_response(answer)


async def _get(request: Request, customer_id: str | None, withdrawal_id: str) -> Answer:
    state = app_state(request)
    try:
        principal = await _principal(
            request, READ, customer_id=customer_id, profile=customer_id is None
        )
        _query(request, frozenset())
        payout_id = _id(withdrawal_id)
        async with state.db.read() as conn:
            payout = await lifecycle.get(conn, principal.tenant_id, payout_id)
            if payout.customer_id != _customer(principal, customer_id):
                raise lifecycle.not_found(payout_id)
            types = await instruments.types_of(conn, principal.tenant_id, [payout.instrument_id])
        return json_answer(200, withdrawal(payout, types[payout.instrument_id]))
    except KassaError as error:
        return render_error(error)


@router.get("/v2/customers/{customerId}/withdrawals/{withdrawalId}", **openapi.GET)
async def get_withdrawal(request: Request, customerId: str, withdrawalId: str) -> Response:
    """One of the customer's withdrawals."""
    return answer_response(await _get(request, customerId, withdrawalId))


@router.get("/profile/withdrawals/{withdrawalId}", **openapi.PROFILE_GET)
async def get_own_withdrawal(request: Request, withdrawalId: str) -> Response:
    """One of the current customer's withdrawals."""
    return answer_response(await _get(request, None, withdrawalId))


@router.get("/profile/instruments", **openapi.INSTRUMENTS)
async def list_instruments(request: Request) -> Response:
    """The current customer's payment instruments (masked), newest first."""
    state = app_state(request)
    try:
        principal = await _principal(request, READ, profile=True)
        _query(request, frozenset())
        async with state.db.read() as conn:
            page = await instruments.list_instruments(
                conn, principal.tenant_id, _customer(principal, None), 100
            )
        found: list[dict[str, Any]] = [documents.instrument(item) for item in page.data]
        answer = json_answer(200, {"instruments": found})
    except KassaError as error:
        answer = render_error(error)
    return answer_response(answer)


@router.post("/profile/instruments", **openapi.ADD_INSTRUMENT)
async def add_instrument(request: Request) -> Response:
    """Add a bank account or card for the current customer (checked, stored masked,
    UNVERIFIED until the merchant verifies it)."""
    state = app_state(request)
    try:
        principal = await _principal(request, WRITE, profile=True)
        _query(request, frozenset())
        body = parse_instrument(await read_body(request))
        now = state.clock.now()
        async with state.db.write() as conn:
            created = await instruments.create(
                conn, principal.tenant_id, _customer(principal, None), body, state.box, now
            )
        answer = json_answer(201, documents.instrument(created))
    except KassaError as error:
        answer = render_error(error)
    return answer_response(answer)


# The token endpoint lives beside (tokens.py), under the same base path.
router.include_router(tokens.router)
