"""Wallets: creation, reads, freezing, closing, and money in and out.

Deposits and immediate withdrawals are the hot path. On PostgreSQL they go through the
process's group commit (``kassa.wallets.batcher``): concurrent requests share one statement
(``kassa_post_wallets``, migration 0003) and one commit, and each succeeds or fails on its own.
On SQLite each is one ``BEGIN IMMEDIATE`` transaction running the same rules through the ledger
service. The same test suite runs against both.
"""

from __future__ import annotations

import secrets
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events import service as events
from kassa.idempotency import service as idempotency
from kassa.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from kassa.kit import dberrors
from kassa.kit.db import Backend, Database
from kassa.kit.errors import KassaError, NotFound, ValidationFailed
from kassa.kit.http import JSON_MEDIA_TYPE
from kassa.kit.pagination import Page, split_page
from kassa.kit.problem import PROBLEM_MEDIA_TYPE, problem_json
from kassa.ledger import repository as ledger_repository
from kassa.ledger import service as ledger
from kassa.ledger.errors import (
    CurrencyMismatch,
    DuplicateReference,
    InsufficientFunds,
    duplicate_reference,
)
from kassa.ledger.schemas import TransactionOut
from kassa.references import service as references
from kassa.wallets import repository
from kassa.wallets.batcher import Batcher, Posted, Posting
from kassa.wallets.errors import WalletClosed, WalletExists, WalletFrozen, WalletNotEmpty
from kassa.wallets.schemas import FreezeIn, NewWallet, WalletOut, effective_status

ALIAS_ATTEMPTS = 8


def _new_alias() -> str:
    return str(10**9 + secrets.randbelow(9 * 10**9))


async def create_wallet(
    conn: AsyncConnection, tenant_id: uuid.UUID, body: NewWallet, now: datetime
) -> WalletOut:
    await _refuse_existing(conn, tenant_id, body)
    await ledger_repository.ensure_system_accounts(conn, tenant_id, body.currency, now)
    wallet_id = uuid.uuid4()
    for attempt in range(ALIAS_ATTEMPTS):
        try:
            async with conn.begin_nested():
                await repository.insert_wallet(
                    conn,
                    {
                        "id": wallet_id,
                        "tenant_id": tenant_id,
                        "customer_id": body.customer_id,
                        "currency": body.currency,
                        "name": body.name,
                        "alias": _new_alias(),
                        "status": "active",
                        "metadata": body.metadata,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            break
        except IntegrityError:
            # Either a concurrent twin took (customer, currency), or the random alias collided.
            await _refuse_existing(conn, tenant_id, body)
            if attempt == ALIAS_ATTEMPTS - 1:
                raise
    await ledger_repository.create_wallet_accounts(conn, tenant_id, wallet_id, body.currency, now)
    return await _changed(conn, tenant_id, wallet_id, "wallet.created", now)


async def _refuse_existing(conn: AsyncConnection, tenant_id: uuid.UUID, body: NewWallet) -> None:
    """One wallet per customer and currency, ever: a closed one still counts (and says so)."""
    existing = await repository.existing_wallet_for(
        conn, tenant_id, body.customer_id, body.currency
    )
    if existing is None:
        return
    closed = (
        " (closed: a customer's wallet is not made again)" if existing.status == "closed" else ""
    )
    raise WalletExists(
        f"customer {body.customer_id!r} already has a {body.currency} wallet{closed}",
        wallet_id=str(existing.id),
    )


async def _changed(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, event: str, now: datetime
) -> WalletOut:
    """The wallet after a change, with the change's event written in the same transaction."""
    wallet = await get_wallet(conn, tenant_id, wallet_id, now)
    await events.record(conn, tenant_id, event, wallet, now)
    return wallet


async def get_wallet(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, now: datetime
) -> WalletOut:
    row = await repository.get_wallet(conn, tenant_id, wallet_id)
    if row is None:
        raise NotFound(f"wallet {wallet_id} not found")
    return WalletOut.from_row(row, now)


async def lock_for_change(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, now: datetime
) -> WalletOut:
    """The wallet, with its accounts locked until the unit of work ends (on PostgreSQL; SQLite
    serialises writers already), so a concurrent freeze or close is seen or waits."""
    await ledger_repository.lock_wallet_accounts(conn, tenant_id, wallet_id)
    return await get_wallet(conn, tenant_id, wallet_id, now)


async def list_wallets(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    customer_id: str | None,
    currency: str | None,
    starting_after: uuid.UUID | None,
    limit: int,
    now: datetime,
) -> Page[WalletOut]:
    before_seq = None
    if starting_after is not None:
        before_seq = await repository.wallet_seq(conn, tenant_id, starting_after)
        if before_seq is None:
            raise NotFound(f"wallet {starting_after} not found")
    rows = await repository.list_wallets(
        conn,
        tenant_id,
        customer_id=customer_id,
        currency=currency,
        before_seq=before_seq,
        limit=limit + 1,
    )
    page, has_more = split_page(list(rows), limit)
    return Page[WalletOut](data=[WalletOut.from_row(row, now) for row in page], has_more=has_more)


async def freeze(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, body: FreezeIn, now: datetime
) -> WalletOut:
    wallet = await get_wallet(conn, tenant_id, wallet_id, now)
    if wallet.status == "closed":
        raise WalletClosed(f"wallet {wallet_id} is closed")
    if body.until is not None and body.until <= now:
        raise ValidationFailed(
            "until must be in the future",
            errors=[{"field": "until", "code": "in_the_past", "message": "must be in the future"}],
        )
    if (wallet.status, wallet.frozen_until, wallet.freeze_reason) == (
        "frozen",
        body.until,
        body.reason,
    ):
        return wallet  # frozen just so already: nothing changes, no event
    await repository.set_status(
        conn,
        tenant_id,
        wallet_id,
        {
            "status": "frozen",
            "frozen_until": body.until,
            "freeze_reason": body.reason,
            "updated_at": now,
        },
    )
    return await _changed(conn, tenant_id, wallet_id, "wallet.frozen", now)


async def unfreeze(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, now: datetime
) -> WalletOut:
    wallet = await get_wallet(conn, tenant_id, wallet_id, now)
    if wallet.status == "closed":
        raise WalletClosed(f"wallet {wallet_id} is closed")
    if wallet.status == "active":
        return wallet  # active already (or its freeze ran out): nothing changes, no event
    await repository.set_status(
        conn,
        tenant_id,
        wallet_id,
        {"status": "active", "frozen_until": None, "freeze_reason": None, "updated_at": now},
    )
    return await _changed(conn, tenant_id, wallet_id, "wallet.unfrozen", now)


async def close(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    now: datetime,
    *,
    forfeit_gift: bool = False,
) -> WalletOut:
    """Close a wallet with nothing in it. Its accounts are locked first, so a deposit racing
    with the close either lands before it (and the close is refused) or finds it closed.

    Gift credit can be spent but never withdrawn, so a wallet holding some could never close:
    with ``forfeit_gift`` its gift balance goes back to ``funding`` (a ``reversal``
    transaction with its ``wallet.debited`` event) in the same unit of work as the close."""
    accounts = await ledger_repository.lock_wallet_accounts(conn, tenant_id, wallet_id)
    if not accounts:
        raise NotFound(f"wallet {wallet_id} not found")
    wallet = await get_wallet(conn, tenant_id, wallet_id, now)
    if wallet.status == "closed":
        return wallet
    if wallet.balance or wallet.held_balance:
        raise WalletNotEmpty(
            f"wallet {wallet_id} still holds {wallet.balance} minor units of cash "
            f"({wallet.held_balance} of them held); withdraw them first"
        )
    if wallet.gift_balance and not forfeit_gift:
        raise WalletNotEmpty(
            f"wallet {wallet_id} still holds {wallet.gift_balance} minor units of gift credit, "
            "which cannot be withdrawn; close it with forfeit_gift=true to give them up"
        )
    if wallet.gift_balance:
        forfeit = MoneyRequest(
            tenant_id,
            wallet_id,
            wallet.gift_balance,
            None,
            None,
            "gift credit forfeited when the wallet was closed",
            {},
        )
        await move_money_in(conn, GIFT_FORFEIT, forfeit, now)
    await repository.set_status(
        conn,
        tenant_id,
        wallet_id,
        {"status": "closed", "frozen_until": None, "updated_at": now},
    )
    return await _changed(conn, tenant_id, wallet_id, "wallet.closed", now)


@dataclass(frozen=True)
class Movement:
    """What a deposit, gift or immediate withdrawal does to the ledger."""

    kind: str
    account_kind: str
    sign: int
    counter_kind: str
    refuse_frozen: bool


DEPOSIT = Movement("deposit", "cash", 1, "funding", refuse_frozen=False)
GIFT = Movement("gift", "gift", 1, "funding", refuse_frozen=False)
WITHDRAWAL = Movement("withdrawal", "cash", -1, "payouts_clearing", refuse_frozen=True)
GIFT_FORFEIT = Movement("reversal", "gift", -1, "funding", refuse_frozen=False)


@dataclass(frozen=True)
class MoneyRequest:
    tenant_id: uuid.UUID
    wallet_id: uuid.UUID
    amount: int
    currency: str | None
    reference: str | None
    description: str | None
    metadata: dict[str, str]


_PG_ERRORS: dict[str, type[KassaError]] = {
    "not_found": NotFound,
    "wallet_closed": WalletClosed,
    "wallet_frozen": WalletFrozen,
    "currency_mismatch": CurrencyMismatch,
    "insufficient_funds": InsufficientFunds,
}


async def move_money(
    db: Database, movement: Movement, request: MoneyRequest, now: datetime
) -> TransactionOut:
    """Deposit into or withdraw from a wallet at once, as one atomic unit of work, with its
    ``wallet.credited`` or ``wallet.debited`` event. On PostgreSQL through the group commit."""
    if db.backend is Backend.POSTGRESQL:
        transaction_id = uuid.uuid4()
        currency, balance_after = await _move_money_pg(db, movement, request, transaction_id, now)
        return _transaction_out(movement, request, transaction_id, currency, balance_after, now)
    async with db.write() as conn:
        return await move_money_in(conn, movement, request, now)


async def move_money_in(
    conn: AsyncConnection, movement: Movement, request: MoneyRequest, now: datetime
) -> TransactionOut:
    """The same, inside the caller's unit of work (on any backend)."""
    # The reference first, in the same order as the batch function (no lock-order deadlock).
    await references.claim(conn, request.tenant_id, request.reference)
    if conn.dialect.name == "postgresql":
        # Lock the wallet's accounts before reading its status, so a concurrent close is
        # either seen or waits (SQLite's writers are serialised already).
        await ledger_repository.lock_wallet_accounts(conn, request.tenant_id, request.wallet_id)
    transaction_id = uuid.uuid4()
    currency, balance_after = await _move_money_core(conn, movement, request, transaction_id, now)
    transaction = _transaction_out(movement, request, transaction_id, currency, balance_after, now)
    await events.record(conn, request.tenant_id, _EVENTS[movement.sign], transaction, now)
    return transaction


_EVENTS = {1: "wallet.credited", -1: "wallet.debited"}


def _transaction_out(
    movement: Movement,
    request: MoneyRequest,
    transaction_id: uuid.UUID,
    currency: str,
    balance_after: int,
    now: datetime,
) -> TransactionOut:
    return TransactionOut(
        id=transaction_id,
        wallet_id=request.wallet_id,
        kind=movement.kind,
        amount=request.amount,
        currency=currency,
        balance_before=balance_after - movement.sign * request.amount,
        balance_after=balance_after,
        status="completed",
        reference=request.reference,
        description=request.description,
        metadata=request.metadata,
        created_at=now,
    )


# One group commit per database (so per process) and its current hot-path pool.
_batchers: weakref.WeakKeyDictionary[Database, Batcher] = weakref.WeakKeyDictionary()


def _batcher(db: Database) -> Batcher:
    batcher = _batchers.get(db)
    if batcher is None or batcher.pool is not db.pool:
        batcher = _batchers[db] = Batcher(db.pool, slots=db.pool_size)
    return batcher


def _posting(
    movement: Movement,
    request: MoneyRequest,
    transaction_id: uuid.UUID,
    now: datetime,
    **keyed: Any,
) -> Posting:
    return Posting(
        tenant_id=request.tenant_id,
        wallet_id=request.wallet_id,
        account_kind=movement.account_kind,
        sign=movement.sign,
        amount=request.amount,
        currency=request.currency,
        counter_kind=movement.counter_kind,
        transaction_id=transaction_id,
        transaction_kind=movement.kind,
        reference=request.reference,
        description=request.description,
        metadata=request.metadata,
        now=now,
        refuse_frozen=movement.refuse_frozen,
        event_id=uuid.uuid4(),
        event_type=_EVENTS[movement.sign],
        event_data=_transaction_out(
            movement, request, transaction_id, "", 0, now
        ).model_dump_json(),
        **keyed,
    )


async def _post_pg(db: Database, posting: Posting, request: MoneyRequest) -> Posted:
    try:
        return await _batcher(db).post(posting)
    except asyncpg.UniqueViolationError as error:
        # A concurrent request took the reference between the function's check and its insert.
        if dberrors.unique_constraint(error) == "uq_journal_transactions_tenant_id_reference":
            raise _duplicate(request.reference) from None
        raise


def _refusal(code: str, request: MoneyRequest) -> KassaError:
    if code == "duplicate_reference":
        return _duplicate(request.reference)
    return _PG_ERRORS[code](_detail(code, request))


async def _move_money_pg(
    db: Database,
    movement: Movement,
    request: MoneyRequest,
    transaction_id: uuid.UUID,
    now: datetime,
) -> tuple[str, int]:
    posted = await _post_pg(db, _posting(movement, request, transaction_id, now), request)
    if posted.error is not None:
        raise _refusal(posted.error, request)
    assert posted.currency is not None
    assert posted.balance_after is not None
    return posted.currency, posted.balance_after


async def move_money_keyed_pg(
    db: Database,
    movement: Movement,
    request: MoneyRequest,
    now: datetime,
    key: idempotency.Key,
    ttl: timedelta,
) -> idempotency.Answer:
    """A deposit or withdrawal with an Idempotency-Key on PostgreSQL, still in the group commit:
    the batch statement checks, replays or stores the answer (see migration 0006)."""
    refusals = {code: _refusal(code, request) for code in (*_PG_ERRORS, "duplicate_reference")}
    answers = {code: (error.status, problem_json(error)) for code, error in refusals.items()}
    posting = _posting(
        movement,
        request,
        uuid.uuid4(),
        now,
        idempotency_key=key.value,
        fingerprint=key.fingerprint,
        expires_at=now + ttl,
        error_answers=orjson.dumps(
            {code: [status, body.decode()] for code, (status, body) in answers.items()}
        ).decode(),
    )
    posted = await _post_pg(db, posting, request)
    if posted.error == "idempotency_key_in_use":
        raise IdempotencyKeyInUse(f"a request with key {key.value!r} is in flight")
    if posted.error == "idempotency_key_reused":
        raise IdempotencyKeyReused(f"the key {key.value!r} was used for a different request")
    if posted.replayed:
        assert posted.status is not None
        assert posted.media_type is not None
        assert posted.body is not None
        return idempotency.Answer(
            posted.status,
            posted.media_type,
            posted.body.encode(),
            [idempotency.REPLAYED_HEADER],
        )
    if posted.error is not None:
        status, body = answers[posted.error]
        return idempotency.Answer(status, PROBLEM_MEDIA_TYPE, body)
    assert posted.body is not None
    return idempotency.Answer(201, JSON_MEDIA_TYPE, posted.body.encode())


async def _move_money_core(
    conn: AsyncConnection,
    movement: Movement,
    request: MoneyRequest,
    transaction_id: uuid.UUID,
    now: datetime,
) -> tuple[str, int]:
    wallet = await repository.get_wallet(conn, request.tenant_id, request.wallet_id)
    if wallet is None:
        raise NotFound(_detail("not_found", request))
    status, _ = effective_status(wallet.status, wallet.frozen_until, now)
    if status == "closed":
        raise WalletClosed(_detail("wallet_closed", request))
    if movement.refuse_frozen and status == "frozen":
        raise WalletFrozen(_detail("wallet_frozen", request))
    if request.currency is not None and request.currency != wallet.currency:
        raise CurrencyMismatch(_detail("currency_mismatch", request))
    account = await ledger_repository.wallet_account(
        conn, request.tenant_id, request.wallet_id, movement.account_kind
    )
    counter = await ledger_repository.system_account_id(
        conn, request.tenant_id, wallet.currency, movement.counter_kind
    )
    assert account is not None
    signed = movement.sign * request.amount
    try:
        posted = await ledger.post(
            conn,
            ledger.Posting(
                tenant_id=request.tenant_id,
                kind=movement.kind,
                amount=request.amount,
                currency=wallet.currency,
                legs=[ledger.Leg(account.id, signed, wallet=True), ledger.Leg(counter, -signed)],
                created_at=now,
                wallet_id=request.wallet_id,
                reference=request.reference,
                description=request.description,
                metadata=request.metadata,
                transaction_id=transaction_id,
            ),
        )
    except InsufficientFunds:
        raise InsufficientFunds(_detail("insufficient_funds", request)) from None
    except DuplicateReference:
        raise _duplicate(request.reference) from None
    assert posted.balance_after is not None
    return wallet.currency, posted.balance_after


def _duplicate(reference: str | None) -> DuplicateReference:
    return duplicate_reference(reference)


def _detail(code: str, request: MoneyRequest) -> str:
    return {
        "not_found": f"wallet {request.wallet_id} not found",
        "wallet_closed": f"wallet {request.wallet_id} is closed",
        "wallet_frozen": f"wallet {request.wallet_id} is frozen; it takes no withdrawals",
        "currency_mismatch": f"wallet {request.wallet_id} does not hold {request.currency}",
        "insufficient_funds": (
            f"wallet {request.wallet_id} has less than {request.amount} minor units available"
        ),
    }[code]


async def list_transactions(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    *,
    kind: str | None,
    starting_after: uuid.UUID | None,
    limit: int,
) -> Page[TransactionOut]:
    if await repository.wallet_seq(conn, tenant_id, wallet_id) is None:
        raise NotFound(f"wallet {wallet_id} not found")
    before_seq = None
    if starting_after is not None:
        after = await ledger_repository.get_transaction(conn, tenant_id, starting_after)
        if after is None or after.wallet_id != wallet_id:
            raise NotFound(f"transaction {starting_after} not found")
        before_seq = after.seq
    rows = await ledger_repository.list_wallet_transactions(
        conn, tenant_id, wallet_id, kind=kind, before_seq=before_seq, limit=limit + 1
    )
    page, has_more = split_page(list(rows), limit)
    return Page[TransactionOut](
        data=[TransactionOut.from_row(row) for row in page], has_more=has_more
    )


async def get_transaction(
    conn: AsyncConnection, tenant_id: uuid.UUID, transaction_id: uuid.UUID
) -> TransactionOut:
    row = await ledger_repository.get_transaction(conn, tenant_id, transaction_id)
    if row is None:
        raise NotFound(f"transaction {transaction_id} not found")
    return TransactionOut.from_row(row)
