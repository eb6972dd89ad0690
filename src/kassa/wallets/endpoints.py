"""``/v1`` wallets, deposits, immediate withdrawals and transactions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from kassa.auth.deps import WalletsRead, WalletsWrite, WithdrawalsWrite
from kassa.auth.service import Principal
from kassa.kit.http import body_schema, json_response, parse_body, parse_json, read_body
from kassa.kit.ids import parse_id
from kassa.kit.pagination import DEFAULT_LIMIT, Limit, Page, StartingAfter
from kassa.kit.problem import PROBLEM_MEDIA_TYPE
from kassa.ledger.schemas import TransactionKind, TransactionOut
from kassa.state import AppState, app_state
from kassa.wallets import service
from kassa.wallets.schemas import DepositIn, FreezeIn, NewWallet, WalletOut, WithdrawalIn

router = APIRouter(prefix="/v1", tags=["wallets"])


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": "problem+json"}
        for status in (401, 403, *statuses)
    }


def _doc(model: type[Any], status: int, *problems: int) -> dict[str, Any]:
    return {
        "status_code": status,
        "response_class": Response,
        "responses": {status: {"model": model}, **_problems(*problems)},
    }


@router.post("/wallets", openapi_extra=body_schema(NewWallet), **_doc(WalletOut, 201, 409, 422))
async def create_wallet(request: Request, principal: WalletsWrite) -> Response:
    body = await parse_body(request, NewWallet)
    state = app_state(request)
    async with state.db.write() as conn:
        wallet = await service.create_wallet(conn, principal.tenant_id, body, state.clock.now())
    return json_response(wallet, 201)


@router.get("/wallets", **_doc(Page[WalletOut], 200, 404, 422))
async def list_wallets(
    request: Request,
    principal: WalletsRead,
    customer_id: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$")] = None,
    currency: Annotated[str | None, Query(pattern="^[A-Z]{3}$")] = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Response:
    state = app_state(request)
    after = parse_id(starting_after, "wallet") if starting_after else None
    async with state.db.read() as conn:
        page = await service.list_wallets(
            conn,
            principal.tenant_id,
            customer_id=customer_id,
            currency=currency,
            starting_after=after,
            limit=limit,
            now=state.clock.now(),
        )
    return json_response(page)


@router.get("/wallets/{wallet_id}", **_doc(WalletOut, 200, 404))
async def get_wallet(request: Request, wallet_id: str, principal: WalletsRead) -> Response:
    state = app_state(request)
    async with state.db.read() as conn:
        wallet = await service.get_wallet(
            conn, principal.tenant_id, parse_id(wallet_id, "wallet"), state.clock.now()
        )
    return json_response(wallet)


async def post_money(
    state: AppState, principal: Principal, movement: service.Movement, wallet_id: str, raw: bytes
) -> TransactionOut:
    """A deposit or an immediate withdrawal from its raw body; shared with ``hotpath``."""
    body: DepositIn | WithdrawalIn
    if movement is service.WITHDRAWAL:
        body = parse_json(raw, WithdrawalIn)
    else:
        body = parse_json(raw, DepositIn)
        if body.kind == "gift":
            movement = service.GIFT
    return await service.move_money(
        state.db,
        movement,
        service.MoneyRequest(
            principal.tenant_id,
            parse_id(wallet_id, "wallet"),
            body.amount,
            body.currency,
            body.reference,
            body.description,
            body.metadata,
        ),
        state.clock.now(),
    )


# Served by ``kassa.wallets.hotpath`` before FastAPI sees them; these routes document them and
# answer the same way should a request reach them.
@router.post(
    "/wallets/{wallet_id}/deposits",
    openapi_extra=body_schema(DepositIn),
    **_doc(TransactionOut, 201, 404, 409, 422),
)
async def deposit(request: Request, wallet_id: str, principal: WalletsWrite) -> Response:
    raw = await read_body(request)
    transaction = await post_money(app_state(request), principal, service.DEPOSIT, wallet_id, raw)
    return json_response(transaction, 201)


@router.post(
    "/wallets/{wallet_id}/withdrawals",
    openapi_extra=body_schema(WithdrawalIn),
    **_doc(TransactionOut, 201, 404, 409, 422),
)
async def withdraw(request: Request, wallet_id: str, principal: WithdrawalsWrite) -> Response:
    """An immediate withdrawal: the wallet is debited at once, to the tenant's payouts
    clearing account."""
    raw = await read_body(request)
    state = app_state(request)
    transaction = await post_money(state, principal, service.WITHDRAWAL, wallet_id, raw)
    return json_response(transaction, 201)


@router.post(
    "/wallets/{wallet_id}/freeze",
    openapi_extra=body_schema(FreezeIn),
    **_doc(WalletOut, 200, 404, 409, 422),
)
async def freeze(request: Request, wallet_id: str, principal: WalletsWrite) -> Response:
    body = await parse_body(request, FreezeIn, empty_ok=True)
    state = app_state(request)
    async with state.db.write() as conn:
        wallet = await service.freeze(
            conn, principal.tenant_id, parse_id(wallet_id, "wallet"), body, state.clock.now()
        )
    return json_response(wallet)


@router.post("/wallets/{wallet_id}/unfreeze", **_doc(WalletOut, 200, 404, 409))
async def unfreeze(request: Request, wallet_id: str, principal: WalletsWrite) -> Response:
    state = app_state(request)
    async with state.db.write() as conn:
        wallet = await service.unfreeze(
            conn, principal.tenant_id, parse_id(wallet_id, "wallet"), state.clock.now()
        )
    return json_response(wallet)


@router.delete("/wallets/{wallet_id}", **_doc(WalletOut, 200, 404, 409))
async def close_wallet(request: Request, wallet_id: str, principal: WalletsWrite) -> Response:
    """Close a wallet whose balance, holds and gift balance are all zero; it stays readable."""
    state = app_state(request)
    async with state.db.write() as conn:
        wallet = await service.close(
            conn, principal.tenant_id, parse_id(wallet_id, "wallet"), state.clock.now()
        )
    return json_response(wallet)


@router.get("/wallets/{wallet_id}/transactions", **_doc(Page[TransactionOut], 200, 404, 422))
async def list_transactions(
    request: Request,
    wallet_id: str,
    principal: WalletsRead,
    kind: TransactionKind | None = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Response:
    state = app_state(request)
    after = parse_id(starting_after, "transaction") if starting_after else None
    async with state.db.read() as conn:
        page = await service.list_transactions(
            conn,
            principal.tenant_id,
            parse_id(wallet_id, "wallet"),
            kind=kind,
            starting_after=after,
            limit=limit,
        )
    return json_response(page)


@router.get("/transactions/{transaction_id}", **_doc(TransactionOut, 200, 404))
async def get_transaction(
    request: Request, transaction_id: str, principal: WalletsRead
) -> Response:
    state = app_state(request)
    async with state.db.read() as conn:
        transaction = await service.get_transaction(
            conn, principal.tenant_id, parse_id(transaction_id, "transaction")
        )
    return json_response(transaction)
