"""The PostgreSQL engine of ``movements``: the process's group commit (``batcher``) and the
batch function ``kassa_post_wallets``, which holds the rules (``kassa/migrations/sql``)."""

from __future__ import annotations

import uuid
import weakref
from datetime import datetime, timedelta
from typing import cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.idempotency import service as idempotency
from kassa.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from kassa.kit import dberrors
from kassa.kit.db import Database
from kassa.kit.ids import new_id
from kassa.wallets import batcher
from kassa.wallets.batcher import Batcher, Posted, Posting
from kassa.wallets.money import AnswerFor, MoneyRequest, Moved, Outcome, refusal, transaction_out

# One group commit per database (so per process) and its current pool.
_batchers: weakref.WeakKeyDictionary[Database, Batcher] = weakref.WeakKeyDictionary()


def batcher_of(db: Database) -> Batcher:
    found = _batchers.get(db)
    if found is None or found.pool is not db.pool:
        found = _batchers[db] = Batcher(db.pool, slots=db.pool_size)
    return found


async def move(
    db: Database,
    request: MoneyRequest,
    now: datetime,
    answer_for: AnswerFor,
    key: idempotency.Key | None,
    ttl: timedelta,
) -> idempotency.Answer:
    transaction_id = new_id()

    def outcome(posted: Posted) -> Outcome:
        return _outcome(request, transaction_id, posted, now)

    def answer(posted: Posted) -> batcher.Answer:
        given = answer_for(outcome(posted))
        return given.status, given.media_type, given.body

    posting = _posting(request, transaction_id, now)
    if key is not None:
        posting = Posting(
            **{
                **posting.__dict__,
                "idempotency_key": key.value,
                "fingerprint": key.fingerprint,
                "expires_at": now + ttl,
                "answer": answer,
            }
        )
    try:
        posted = await batcher_of(db).post(posting)
    except asyncpg.UniqueViolationError as error:
        # A unique index had the last word on a race the function's checks did not see.
        refused = dberrors.translate(error)
        if refused is None or isinstance(refused, IdempotencyKeyInUse):
            raise refused or error from None
        return answer_for(refused)
    if posted.error == "idempotency_key_in_use":
        assert key is not None
        raise IdempotencyKeyInUse(f"a request with key {key.value!r} is in flight")
    if posted.error == "idempotency_key_reused":
        assert key is not None
        raise IdempotencyKeyReused(f"the key {key.value!r} was used for a different request")
    stored = posted.stored
    if stored is not None:  # keyed: answered (or replayed) and stored in the batch
        headers = [idempotency.REPLAYED_HEADER] if posted.replayed else []
        return idempotency.Answer(*stored, headers)
    return answer_for(outcome(posted))


async def move_in(conn: AsyncConnection, request: MoneyRequest, now: datetime) -> Moved:
    """The same function inside the caller's transaction (no group commit)."""
    transaction_id = new_id()
    raw = await conn.get_raw_connection()
    posting = _posting(request, transaction_id, now)
    try:
        [posted] = await batcher.post_many(
            cast(asyncpg.Connection, raw.driver_connection), [posting]
        )
    except asyncpg.UniqueViolationError as error:
        dberrors.raise_translated(error)
    done = _outcome(request, transaction_id, posted, now)
    if not isinstance(done, Moved):
        raise done
    return done


def _outcome(
    request: MoneyRequest, transaction_id: uuid.UUID, posted: Posted, now: datetime
) -> Outcome:
    if posted.error is not None:
        holder = None
        if posted.existing_object is not None and posted.existing_id is not None:
            holder = (posted.existing_object, posted.existing_id)
        return refusal(posted.error, request, holder)
    assert posted.currency is not None
    assert posted.balance_after is not None
    assert posted.cash is not None
    assert posted.held is not None
    assert posted.gift is not None
    assert posted.wallet_status is not None
    assert posted.updated_at is not None
    transaction = transaction_out(
        request, transaction_id, posted.currency, posted.balance_after, now
    )
    return Moved(
        transaction,
        posted.cash,
        posted.held,
        posted.gift,
        posted.wallet_status,
        posted.frozen_until,
        posted.freeze_reason,
        posted.updated_at,
    )


def _posting(request: MoneyRequest, transaction_id: uuid.UUID, now: datetime) -> Posting:
    movement = request.movement
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
        event_id=new_id(),
        event_type=movement.event,
        # The currency and balances are the database's to fill in.
        event_data=transaction_out(request, transaction_id, "", 0, now).model_dump_json(),
    )
