"""``/v1`` wallets, deposits, immediate withdrawals and transactions."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.deps import (
    WalletsReadOrCustomer,
    WalletsWrite,
    WithdrawalsWrite,
    authorize,
    require,
)
from kassa.auth.service import Principal
from kassa.idempotency import service as idempotency
from kassa.idempotency.http import answer_response, respond, with_location
from kassa.kit.errors import KassaError, NotFound
from kassa.kit.http import (
    JSON_MEDIA_TYPE,
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
from kassa.ledger.schemas import TransactionKind, TransactionOut
from kassa.state import AppState, app_state
from kassa.wallets import creation_queue, lookup, movements, service
from kassa.wallets.schemas import (
    DepositIn,
    FreezeIn,
    NewWallet,
    WalletOut,
    WithdrawalIn,
)

router = APIRouter(prefix="/v1", tags=["wallets"], dependencies=[Depends(refuse_unknown_query)])


@router.post(
    "/wallets",
    openapi_extra=body_schema(NewWallet),
    **doc(
        WalletOut,
        201,
        (409, "the customer has a wallet in this currency, maybe closed (`wallet_exists`)"),
        422,
        summary="Create a wallet",
    ),
    # Documents the key it needs; the app's ASGI front serves the route (``direct``), and the
    # endpoint checks the key itself.
    dependencies=[Depends(require("wallets:write"))],
)
@direct
async def create_wallet(request: Request) -> Response:
    """A wallet for one customer in one currency, empty and active (one per customer and
    currency)."""
    raise_unknown(request.query_params.keys(), frozenset())
    state = app_state(request)
    token = bearer_token(request.headers.get("authorization"))
    principal = await authorize(state.authenticator, token, "wallets:write")
    raw = await read_body(request)
    body = parse_json(raw, NewWallet)
    now = state.clock.now()
    if request.headers.get(idempotency.HEADER) is None:
        # Without a key nothing else is written with it: one statement that commits itself,
        # shared with the creations that arrive meanwhile (group commit).
        wallet = await creation_queue.queue_of(state.db).create(principal.tenant_id, body, now)
        return Response(
            wallet.model_dump_json(),
            status_code=201,
            media_type=JSON_MEDIA_TYPE,
            headers={"location": f"/v1/wallets/{wallet.id}"},
        )

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 201, await service.create_wallet(conn, principal.tenant_id, body, now)

    return await respond(request, state, principal, raw, now, work, collection="/v1/wallets")


@router.get("/wallets", **doc(Page[WalletOut], 200, 404, 422, summary="List wallets"))
async def list_wallets(
    request: Request,
    principal: WalletsReadOrCustomer,
    customer_id: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$")] = None,
    currency: Annotated[str | None, Query(pattern="^[A-Z]{3}$")] = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Response:
    """The tenant's wallets, newest first, optionally of one customer or currency; 404 if
    ``starting_after`` names no wallet. A customer token sees its customer's only."""
    state = app_state(request)
    if principal.customer_id is not None:
        if customer_id is not None and customer_id != principal.customer_id:
            return json_response(Page[WalletOut](data=[], has_more=False))
        customer_id = principal.customer_id
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


@router.get("/wallets/{wallet_id}", **doc(WalletOut, 200, 404, summary="Get a wallet"))
async def get_wallet(
    request: Request, wallet_id: str, principal: WalletsReadOrCustomer
) -> Response:
    """A wallet with its balances: posted, held, available, gift."""
    state = app_state(request)
    async with state.db.read() as conn:
        wallet = await service.get_wallet(
            conn, principal.tenant_id, parse_id(wallet_id, "wallet"), state.clock.now()
        )
    if not principal.owns(wallet.customer_id):
        raise NotFound(f"wallet {wallet_id} not found")
    return json_response(wallet)


def answer_v1(outcome: movements.Outcome) -> idempotency.Answer:
    """``/v1``'s answer to a deposit or withdrawal: the transaction, or a problem document."""
    if isinstance(outcome, KassaError):
        return idempotency.problem_answer(outcome)
    return idempotency.Answer(201, JSON_MEDIA_TYPE, outcome.transaction.model_dump_json().encode())


async def post_money(
    state: AppState,
    principal: Principal,
    movement: movements.Movement,
    wallet_id: str,
    raw: bytes,
    key_header: str | None,
    path: str,
) -> idempotency.Answer:
    """A deposit or an immediate withdrawal from its raw body; shared with ``hotpath``."""
    body: DepositIn | WithdrawalIn
    if movement is movements.WITHDRAWAL:
        body = parse_json(raw, WithdrawalIn)
    else:
        body = parse_json(raw, DepositIn)
        if body.kind == "gift":
            movement = movements.GIFT
    request = movements.MoneyRequest(
        principal.tenant_id,
        parse_id(wallet_id, "wallet"),
        movement,
        body.amount,
        body.currency,
        body.reference,
        body.description,
        body.metadata,
    )
    key = idempotency.key_for(principal.tenant_id, key_header, "POST", path, raw)
    ttl = timedelta(hours=state.settings.idempotency_ttl_hours)
    answer = await movements.move(state.db, request, state.clock.now(), answer_v1, key=key, ttl=ttl)
    # A transaction is read at /v1/transactions/{id}; a replayed 201 gets its Location too.
    return with_location(answer, "/v1/transactions")


# Served by ``kassa.wallets.hotpath`` before FastAPI sees them; these routes document them and
# answer the same way should a request reach them.
@router.post(
    "/wallets/{wallet_id}/deposits",
    openapi_extra=body_schema(DepositIn),
    **doc(
        TransactionOut,
        201,
        404,
        (
            409,
            "the wallet is closed (`wallet_closed`) or the reference was used"
            " (`duplicate_reference`)",
        ),
        422,
        summary="Deposit",
    ),
)
async def deposit(request: Request, wallet_id: str, principal: WalletsWrite) -> Response:
    """Credit the wallet at once: cash, or (``kind: gift``) promotional credit that can be
    spent but never withdrawn."""
    return await _post_money(request, principal, movements.DEPOSIT, wallet_id)


async def _post_money(
    request: Request, principal: Principal, movement: movements.Movement, wallet_id: str
) -> Response:
    raw = await read_body(request)
    key_header = request.headers.get(idempotency.HEADER)
    answer = await post_money(
        app_state(request), principal, movement, wallet_id, raw, key_header, request.url.path
    )
    return answer_response(answer)


@router.post(
    "/wallets/{wallet_id}/withdrawals",
    openapi_extra=body_schema(WithdrawalIn),
    **doc(
        TransactionOut,
        201,
        404,
        (
            409,
            "insufficient available balance (`insufficient_funds`), a frozen or closed wallet"
            " (`wallet_frozen`, `wallet_closed`), a used reference (`duplicate_reference`)",
        ),
        422,
        summary="Withdraw at once",
    ),
)
async def withdraw(request: Request, wallet_id: str, principal: WithdrawalsWrite) -> Response:
    """An immediate withdrawal: the wallet is debited at once, to the tenant's payouts
    clearing account."""
    return await _post_money(request, principal, movements.WITHDRAWAL, wallet_id)


@router.post(
    "/wallets/{wallet_id}/freeze",
    openapi_extra=body_schema(FreezeIn, required=False),
    **doc(
        WalletOut,
        200,
        404,
        (409, "the wallet is closed (`wallet_closed`)"),
        422,
        summary="Freeze a wallet",
    ),
)
async def freeze(request: Request, wallet_id: str, principal: WalletsWrite) -> Response:
    """Stop withdrawals and payouts from the wallet, until ``until`` or until unfrozen;
    deposits still land. The body may be left out."""
    raw = await read_body(request)
    body = parse_json(raw, FreezeIn, empty_ok=True)
    state = app_state(request)
    now, wallet = state.clock.now(), parse_id(wallet_id, "wallet")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 200, await service.freeze(conn, principal.tenant_id, wallet, body, now)

    return await respond(request, state, principal, raw, now, work)


@router.post(
    "/wallets/{wallet_id}/unfreeze",
    **doc(
        WalletOut,
        200,
        404,
        (409, "the wallet is closed (`wallet_closed`)"),
        summary="Unfreeze a wallet",
    ),
)
async def unfreeze(request: Request, wallet_id: str, principal: WalletsWrite) -> Response:
    """Lift the wallet's freeze (a wallet that is not frozen is answered as it is)."""
    raw = await read_body(request)
    state = app_state(request)
    now, wallet = state.clock.now(), parse_id(wallet_id, "wallet")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 200, await service.unfreeze(conn, principal.tenant_id, wallet, now)

    return await respond(request, state, principal, raw, now, work)


@router.delete(
    "/wallets/{wallet_id}",
    **doc(
        WalletOut,
        200,
        404,
        (409, "cash, a hold or (without forfeit_gift) gift credit is left (`wallet_not_empty`)"),
        422,
        summary="Close a wallet",
    ),
)
async def close_wallet(
    request: Request,
    wallet_id: str,
    principal: WalletsWrite,
    forfeit_gift: Annotated[
        bool,
        Query(description="give up the gift balance (back to funding) and close"),
    ] = False,
) -> Response:
    """Close a wallet whose balance and holds are zero; it stays readable. Gift credit cannot
    be withdrawn: a wallet that has some closes only with ``forfeit_gift=true``."""
    raw = await read_body(request)
    state = app_state(request)
    now, wallet = state.clock.now(), parse_id(wallet_id, "wallet")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        closed = await service.close(
            conn, principal.tenant_id, wallet, now, forfeit_gift=forfeit_gift
        )
        return 200, closed

    return await respond(request, state, principal, raw, now, work)


@router.get(
    "/wallets/{wallet_id}/transactions",
    **doc(Page[TransactionOut], 200, 404, 422, summary="List a wallet's transactions"),
)
async def list_transactions(
    request: Request,
    wallet_id: str,
    principal: WalletsReadOrCustomer,
    kind: TransactionKind | None = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Response:
    """The wallet's transactions, newest first, optionally of one kind."""
    state = app_state(request)
    after = parse_id(starting_after, "transaction") if starting_after else None
    await lookup.check_owned(state.db, principal, parse_id(wallet_id, "wallet"))
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


@router.get(
    "/transactions/{transaction_id}", **doc(TransactionOut, 200, 404, summary="Get a transaction")
)
async def get_transaction(
    request: Request, transaction_id: str, principal: WalletsReadOrCustomer
) -> Response:
    """One transaction of any of the tenant's wallets (a customer token: of its customer's)."""
    state = app_state(request)
    async with state.db.read() as conn:
        transaction = await service.get_transaction(
            conn, principal.tenant_id, parse_id(transaction_id, "transaction")
        )
    if principal.customer_id is not None:
        try:
            if transaction.wallet_id is None:
                raise NotFound()
            await lookup.check_owned(state.db, principal, transaction.wallet_id)
        except NotFound:
            raise NotFound(f"transaction {transaction_id} not found") from None
    return json_response(transaction)
