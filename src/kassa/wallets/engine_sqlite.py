"""The SQLite engine of ``movements``: each movement is one ``BEGIN IMMEDIATE`` unit of work
(SQLite serialises writers), its rules in Python (``rules``, the ledger's ``post``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events import service as events
from kassa.idempotency import service as idempotency
from kassa.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from kassa.kit.db import Database
from kassa.kit.errors import KassaError
from kassa.ledger import repository as ledger_repository
from kassa.ledger import service as ledger
from kassa.ledger.errors import DuplicateReference, InsufficientFunds
from kassa.references import service as references
from kassa.wallets import repository, rules
from kassa.wallets.money import AnswerFor, MoneyRequest, Moved, refusal, transaction_out


async def move(
    db: Database,
    request: MoneyRequest,
    now: datetime,
    answer_for: AnswerFor,
    key: idempotency.Key | None,
    ttl: timedelta,
) -> idempotency.Answer:
    async def work(conn: AsyncConnection) -> tuple[int, bytes]:
        answer = answer_for(await move_in(conn, request, now))
        return answer.status, answer.body

    try:
        return await idempotency.run(db, key, work, now, ttl, render_error=answer_for)
    except (IdempotencyKeyInUse, IdempotencyKeyReused):
        raise
    except KassaError as error:
        if error.status >= 500:
            raise
        return answer_for(error)  # refused without a key: nothing was written


async def move_in(conn: AsyncConnection, request: MoneyRequest, now: datetime) -> Moved:
    movement = request.movement
    # The reference first, as the batch function checks it (so the same refusal wins).
    await references.claim(conn, request.tenant_id, request.reference)
    wallet = await repository.get_wallet(conn, request.tenant_id, request.wallet_id)
    if wallet is None:
        raise refusal("not_found", request)
    code = rules.refusal(
        status=wallet.status,
        frozen_until=wallet.frozen_until,
        wallet_currency=wallet.currency,
        currency=request.currency,
        refuse_frozen=movement.refuse_frozen,
        now=now,
    )
    if code is not None:
        raise refusal(code, request)
    account = await ledger_repository.wallet_account(
        conn, request.tenant_id, request.wallet_id, movement.account_kind
    )
    counter = await ledger_repository.system_account_id(
        conn, request.tenant_id, wallet.currency, movement.counter_kind
    )
    assert account is not None
    signed = movement.sign * request.amount
    transaction_id = uuid.uuid4()
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
        raise refusal("insufficient_funds", request) from None
    except DuplicateReference:
        raise refusal("duplicate_reference", request) from None
    assert posted.balance_after is not None
    transaction = transaction_out(
        request, transaction_id, wallet.currency, posted.balance_after, now
    )
    await events.record(conn, request.tenant_id, movement.event, transaction, now)
    cash, gift = wallet.balance, wallet.gift_balance
    if movement.account_kind == "cash":
        cash = posted.balance_after
    else:
        gift = posted.balance_after
    return Moved(
        transaction,
        cash,
        wallet.held,
        gift,
        wallet.status,
        wallet.frozen_until,
        wallet.freeze_reason,
        wallet.updated_at,
    )
