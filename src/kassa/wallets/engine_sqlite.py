"""The SQLite engine of ``movements``.

:func:`move` hands each movement to the process's one SQLite writer (``sqlite_writer``): a
thread that owns one ``sqlite3`` connection and posts the movements that arrive together in one
``BEGIN IMMEDIATE`` transaction, each in its own SAVEPOINT (a refusal undoes only its own
writes), with one COMMIT for the batch. What a movement does there is below, in hand-written
statements prepared once, with no SQLAlchemy on the way: :func:`move_in`'s rules in its order
(a key used before, a reference used before, an unknown, closed or frozen wallet, another
currency, insufficient funds; the refusals of ``kassa_post_wallets`` on PostgreSQL), and the
same rows as the SQLAlchemy path writes, in its encodings (UUIDs as 32 hex digits, timestamps
as ``UtcDateTime`` stores them, JSON as SQLAlchemy's ``json.dumps``).

With an Idempotency-Key the movement's answer (``answer_for``, called in the writer) is stored
in the same transaction; a stored answer is replayed with ``Idempotent-Replayed: true``, a key
sent with another request is refused, and an expired one is free again.

:func:`move_in` runs a movement inside a caller's SQLAlchemy unit of work (a wallet's close
forfeiting its gift credit) through the ledger's services: the same rules, off the hot path.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
import weakref
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events import service as events
from kassa.idempotency import service as idempotency
from kassa.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from kassa.kit import dberrors
from kassa.kit.db import Database
from kassa.kit.errors import KassaError
from kassa.kit.http import JSON_MEDIA_TYPE
from kassa.kit.ids import new_id
from kassa.ledger import repository as ledger_repository
from kassa.ledger import service as ledger
from kassa.ledger.errors import DuplicateReference, Holder, InsufficientFunds
from kassa.references import service as references
from kassa.wallets import repository, rules
from kassa.wallets.money import (
    AnswerFor,
    MoneyRequest,
    Moved,
    Outcome,
    refusal,
    transaction_out,
)
from kassa.wallets.sqlite_writer import Writer

# -- the writer of each database (so of each process) --------------------------------------------
_writers: weakref.WeakKeyDictionary[Database, Writer] = weakref.WeakKeyDictionary()


def writer_of(db: Database) -> Writer:
    """The database's writer, started on first use (again after ``db.close()``, which stops
    it, or in a forked process); the database's other writes take turns with it."""
    found = _writers.get(db)
    if found is None or found.closed or found.pid != os.getpid():
        path = db.engine.url.database
        if not path or path == ":memory:":
            raise ValueError("the SQLite engine needs a database file, not an in-memory database")
        found = _writers[db] = Writer(path)
        db.take_write_turns(found.turn)
        db.on_close(found.close)
        weakref.finalize(db, found.stop)  # a database dropped without close()
    return found


async def move(
    db: Database,
    request: MoneyRequest,
    now: datetime,
    answer_for: AnswerFor,
    key: idempotency.Key | None,
    ttl: timedelta,
) -> idempotency.Answer:
    sent_at = time.monotonic()
    try:
        if key is None:
            moved = await writer_of(db).run(partial(_post, request=request, now=now))
        else:
            expires_at = now + ttl
            job = partial(
                _post_keyed,
                request=request,
                now=now,
                answer_for=answer_for,
                key=key,
                expires_at=expires_at,
            )
            answered = await writer_of(db).run(job)
    except (IdempotencyKeyInUse, IdempotencyKeyReused):
        raise
    except KassaError as error:
        if error.status >= 500:
            raise
        dberrors.database_answered(sent_at)
        return answer_for(error)  # refused without a key: nothing was written
    except sqlite3.Error as error:
        translated = dberrors.translate(error)  # a unique index's rule, or the database gone
        if translated is None:
            raise
        if isinstance(translated, IdempotencyKeyInUse | IdempotencyKeyReused):
            raise translated from error
        if translated.status >= 500:
            raise translated from error
        return answer_for(translated)
    dberrors.database_answered(sent_at)
    if key is not None:
        return answered
    given = answer_for(moved)
    return idempotency.Answer(given.status, JSON_MEDIA_TYPE, given.body)


# -- in the writer: one movement, in the writer's transaction -------------------------------------

_STORED_ANSWER = (
    "SELECT fingerprint, status_code, media_type, body, sealed, expires_at"
    " FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2"
)
_FREE_KEY = "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2"
_STORE_ANSWER = (
    "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status_code, media_type, body,"
    " sealed, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)"
)
# references.service.holder: a reference is unique per tenant across transactions and payouts.
_REFERENCE_HOLDER = (
    "SELECT 'transaction', id FROM journal_transactions WHERE tenant_id = ?1 AND reference = ?2"
    " UNION ALL SELECT 'payout', id FROM payouts WHERE tenant_id = ?1 AND reference = ?2 LIMIT 1"
)
_JOURNAL_REFERENCE = (
    "SELECT 'transaction', id FROM journal_transactions WHERE tenant_id = ?1 AND reference = ?2"
)
# The wallet with its two accounts (repository.get_wallet and ledger's wallet_account in one).
_WALLET = (
    "SELECT w.status, w.frozen_until, w.currency, w.freeze_reason, w.updated_at,"
    " c.id, c.balance, c.held, g.id, g.balance"
    " FROM wallets w"
    " JOIN accounts c ON c.wallet_id = w.id AND c.kind = 'cash' AND c.tenant_id = w.tenant_id"
    " JOIN accounts g ON g.wallet_id = w.id AND g.kind = 'gift' AND g.tenant_id = w.tenant_id"
    " WHERE w.tenant_id = ?1 AND w.id = ?2"
)
_SYSTEM_ACCOUNT = (
    "SELECT id FROM accounts"
    " WHERE tenant_id = ?1 AND currency = ?2 AND kind = ?3 AND wallet_id IS NULL"
)
# ledger.repository.apply_wallet_leg: refused (no row) if less than nothing would be available.
_MOVE_BALANCE = (
    "UPDATE accounts SET balance = balance + ?1"
    " WHERE id = ?2 AND balance + ?1 - held >= 0 RETURNING balance"
)
_INSERT_TRANSACTION = (
    "INSERT INTO journal_transactions (id, tenant_id, wallet_id, kind, amount, currency,"
    " balance_before, balance_after, status, reference, description, metadata, hold_id,"
    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'completed', ?9, ?10, ?11, NULL, ?12)"
)
_INSERT_ENTRIES = (
    "INSERT INTO journal_entries (transaction_seq, account_id, currency, amount)"
    " VALUES (?1, ?2, ?4, ?5), (?1, ?3, ?4, -?5)"
)
_INSERT_EVENT = (
    "INSERT INTO events (id, tenant_id, type, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
)


def _stored_time(moment: datetime) -> str:
    """A timestamp as ``kit.db.UtcDateTime`` stores it on SQLite: UTC, without its zone."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database")
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}"
    )


def _read_time(stored: str) -> datetime:
    """A ``UtcDateTime`` as SQLAlchemy reads it back on SQLite."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _post_keyed(
    conn: sqlite3.Connection,
    *,
    request: MoneyRequest,
    now: datetime,
    answer_for: AnswerFor,
    key: idempotency.Key,
    expires_at: datetime,
) -> idempotency.Answer:
    """``idempotency.service.run`` with the movement as its work, in the writer."""
    tenant = request.tenant_id.hex
    stored = conn.execute(_STORED_ANSWER, (tenant, key.value)).fetchone()
    if stored is not None:
        fingerprint, status, media_type, body, sealed, stored_expiry = stored
        if _read_time(stored_expiry) > now:
            if fingerprint != key.fingerprint:
                raise IdempotencyKeyReused(
                    f"the key {key.value!r} was used for a different request"
                )
            if sealed:
                raise RuntimeError("a sealed idempotent answer needs the secret box")
            return idempotency.Answer(
                status, media_type, bytes(body), [idempotency.REPLAYED_HEADER]
            )
        conn.execute(_FREE_KEY, (tenant, key.value))  # expired: the key is free again
    conn.execute("SAVEPOINT work")
    outcome: Outcome
    try:
        outcome = _post(conn, request=request, now=now)
    except KassaError as error:
        if error.status >= 500:
            raise  # not the request's fault: nothing is stored, so a retry may do it
        conn.execute("ROLLBACK TO work")
        outcome = error
    conn.execute("RELEASE work")
    answer = answer_for(outcome)
    if isinstance(outcome, Moved):
        answer = idempotency.Answer(answer.status, JSON_MEDIA_TYPE, answer.body)
    conn.execute(
        _STORE_ANSWER,
        (
            tenant,
            key.value,
            key.fingerprint,
            answer.status,
            answer.media_type,
            answer.body,
            _stored_time(now),
            _stored_time(expires_at),
        ),
    )
    return answer


def _holder(row: tuple[str, str]) -> Holder:
    """What holds a reference, from a row of ``_REFERENCE_HOLDER`` (ids as 32 hex digits)."""
    kind, stored_id = row
    return kind, uuid.UUID(stored_id)


def _post(conn: sqlite3.Connection, *, request: MoneyRequest, now: datetime) -> Moved:
    """The movement (:func:`move_in`'s rules, in its order); a refusal raises, and the writer
    rolls back what this wrote."""
    movement = request.movement
    tenant = request.tenant_id.hex
    wallet_id = request.wallet_id.hex
    if request.reference is not None:
        taken = conn.execute(_REFERENCE_HOLDER, (tenant, request.reference)).fetchone()
        if taken is not None:
            raise refusal("duplicate_reference", request, _holder(taken))
    wallet = conn.execute(_WALLET, (tenant, wallet_id)).fetchone()
    if wallet is None:
        raise refusal("not_found", request)
    status, frozen_text, currency, freeze_reason, updated_text = wallet[:5]
    cash_account, cash, held, gift_account, gift = wallet[5:]
    frozen_until = None if frozen_text is None else _read_time(frozen_text)
    code = rules.refusal(
        status=status,
        frozen_until=frozen_until,
        wallet_currency=currency,
        currency=request.currency,
        refuse_frozen=movement.refuse_frozen,
        now=now,
    )
    if code is not None:
        raise refusal(code, request)
    account = cash_account if movement.account_kind == "cash" else gift_account
    counter = conn.execute(_SYSTEM_ACCOUNT, (tenant, currency, movement.counter_kind)).fetchone()
    if counter is None:
        raise LookupError(f"no {movement.counter_kind} account for tenant {tenant} in {currency}")
    signed = movement.sign * request.amount
    moved = conn.execute(_MOVE_BALANCE, (signed, account)).fetchone()
    if moved is None:
        raise refusal("insufficient_funds", request)
    balance_after: int = moved[0]
    transaction_id = new_id()
    created_at = _stored_time(now)
    try:
        seq = conn.execute(
            _INSERT_TRANSACTION,
            (
                transaction_id.hex,
                tenant,
                wallet_id,
                movement.kind,
                request.amount,
                currency,
                balance_after - signed,
                balance_after,
                request.reference,
                request.description,
                json.dumps(request.metadata),
                created_at,
            ),
        ).lastrowid
    except sqlite3.IntegrityError:
        # A twin that won the reference's unique index (ledger.repository.insert_transaction).
        if request.reference is not None:
            taken = conn.execute(_JOURNAL_REFERENCE, (tenant, request.reference)).fetchone()
            if taken is not None:
                raise refusal("duplicate_reference", request, _holder(taken)) from None
        raise
    conn.execute(_INSERT_ENTRIES, (seq, account, counter[0], currency, signed))
    transaction = transaction_out(request, transaction_id, currency, balance_after, now)
    conn.execute(
        _INSERT_EVENT,
        (
            new_id().hex,
            tenant,
            movement.event,
            json.dumps(transaction.model_dump(mode="json")),
            created_at,
        ),
    )
    if movement.account_kind == "cash":
        cash = balance_after
    else:
        gift = balance_after
    updated_at = _read_time(updated_text)
    return Moved(transaction, cash, held, gift, status, frozen_until, freeze_reason, updated_at)


# -- inside a caller's unit of work ----------------------------------------------------------------


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
    transaction_id = new_id()
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
