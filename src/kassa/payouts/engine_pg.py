"""The PostgreSQL engine of a payout's creation and status changes.

``kassa_create_payout`` and ``kassa_change_payout`` (their one sources are in
``kassa/migrations/sql``) hold the rules of ``lifecycle`` and move the money in one statement
each; a change also writes its event and, with an Idempotency-Key, its stored answer: the payout
as ``kassa_payout_json`` renders it (the bytes ``lifecycle.shown`` renders, checked by
``tests/payouts/test_payout_json.py``), which is also what the route answers. The statement runs
on a pooled connection in autocommit, so a change is one round trip: no BEGIN, no COMMIT, no
second statement. A refusal writes nothing: without a key it raises; with one it is rendered
here and stored as ``idempotency.run`` stores it, in a transaction around a second call of the
function, which decides again. The payout worker's changes (a rail's final outcome, a payout's
expiry) go through the same function, in ``engine_pg_worker``.

On SQLite ``engine_sqlite`` applies the rules of ``lifecycle`` in one job of the process's
SQLite writer; ``payouts.engine`` chooses between the two, and ``tests/payouts/test_parity.py``
runs one table of cases through both.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from kassa.idempotency import service as idempotency
from kassa.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from kassa.kit import dberrors
from kassa.kit.clock import isoformat
from kassa.kit.db import Database
from kassa.kit.errors import KassaError, NotFound
from kassa.kit.http import JSON_MEDIA_TYPE
from kassa.kit.ids import new_id
from kassa.ledger.errors import HoldNotOpen, duplicate_reference
from kassa.payouts import lifecycle, options
from kassa.payouts.connectors import Submitted
from kassa.payouts.errors import InstrumentNotVerified
from kassa.payouts.repository import Payout
from kassa.payouts.schemas import NewPayout, PayoutStatus
from kassa.wallets import rules

CREATE_SQL = (
    "SELECT * FROM kassa_create_payout($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb,"
    " $11::jsonb, $12, $13, $14, $15, $16, $17)"
)
CHANGE_SQL = (
    "SELECT * FROM kassa_change_payout($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12,"
    " $13, $14, $15, $16, $17::jsonb, $18, $19)"
)
# A refusal's stored answer under an Idempotency-Key (a change stores its own).
REFUSAL_SQL = (
    "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status_code, media_type, body,"
    " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)

# ``repository.record_submission``, through the driver.
SUBMITTED_SQL = (
    "UPDATE payouts SET connector_reference = $2, next_check_at = $3"
    " WHERE id = $1 AND status = 'PROCESSING'"
)

_PAYOUT_FIELDS = tuple(Payout.__dataclass_fields__)
_JSON_FIELDS = frozenset({"fees", "metadata", "history"})


@dataclass(frozen=True)
class Done:
    """A change's answer, and the payout as it is after it (None: refused or replayed)."""

    answer: idempotency.Answer
    payout: Payout | None = None


# What a refusal the function reported is: its code, its details, the payout if there is one.
Refusal = Callable[[str, str | None, Payout | None], KassaError]


async def create(
    db: Database,
    key: idempotency.Key | None,
    tenant_id: uuid.UUID,
    body: NewPayout,
    now: datetime,
    preview_ttl: timedelta,
    ttl: timedelta,
) -> Done:
    """A PREVIEW (see ``lifecycle.check_preview``), answered as ``idempotency.run`` would."""
    arguments = (
        tenant_id,
        uuid.uuid4(),
        body.wallet_id,
        body.amount,
        body.currency,
        body.payment_option,
        body.instrument_id,
        body.reference,
        body.description,
        orjson.dumps(body.metadata).decode(),
        orjson.dumps(lifecycle.history_entry("PREVIEW", now)).decode(),
        now + preview_ttl,
        now,
        *_key(key),
        new_id(),  # the event's
        now + ttl,  # when the stored answer expires
    )

    def refused(code: str, info: str | None, _: Payout | None) -> KassaError:
        return creation_refusal(code, info, body)

    return await _run(db, key, CREATE_SQL, arguments, 201, refused, now, now + ttl)


async def change_status(
    db: Database,
    key: idempotency.Key | None,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    target: PayoutStatus,
    reason: str | None,
    now: datetime,
    ttl: timedelta,
    *,
    may_settle: bool,
    receipts: Mapping[str, Submitted],
) -> Done:
    """Move the payout (see ``lifecycle.check_move``) and answer it, or its refusal, as
    ``idempotency.run`` would: with a key, the answer is stored with the change or replayed."""
    if target == "FAILED":
        reason = reason or "FAILED"
    arguments = (
        tenant_id,
        payout_id,
        target,
        reason,
        orjson.dumps(lifecycle.history_entry(target, now, reason)).decode(),
        now,
        may_settle,
        *_key(key),
        new_id(),  # the hold's, if it places one
        new_id(),  # the capture's journal transaction, if it posts one
        lifecycle.RECOVER_AFTER,
        False,  # posted through the API, not by the rail
        None,
        None,  # nor the worker's expiry
        False,  # the worker's failures at it are the worker's to clear
        receipts_json(receipts),
        new_id(),  # the event's
        now + ttl,  # when the stored answer expires
    )

    def refused(code: str, info: str | None, payout: Payout | None) -> KassaError:
        return change_refusal(code, info, payout, payout_id, target)

    return await _run(db, key, CHANGE_SQL, arguments, 200, refused, now, now + ttl)


def receipts_json(receipts: Mapping[str, Submitted]) -> str | None:
    """The rails' receipts ahead (``rails.receipts_ahead``) as the function takes them."""
    if not receipts:
        return None
    shown = {
        name: {"reference": receipt.reference, "check_at": isoformat(receipt.check_at)}
        for name, receipt in receipts.items()
    }
    return orjson.dumps(shown).decode()


def _key(key: idempotency.Key | None) -> tuple[str | None, str | None]:
    return (None, None) if key is None else (key.value, key.fingerprint)


async def _run(
    db: Database,
    key: idempotency.Key | None,
    sql: str,
    arguments: tuple[object, ...],
    success: int,
    refused: Refusal,
    now: datetime,
    expires: datetime,
) -> Done:
    """One call of the function, on a connection in autocommit: a change commits with its
    event and stored answer, in one round trip. A refusal wrote nothing; under a key its
    answer is stored, in a transaction around a second call that decides again (the payout
    may have moved since), so that the key answers whatever that call answered."""
    began = time.monotonic()
    try:
        async with db.pool.acquire() as conn:
            done, store = _answer(await conn.fetchrow(sql, *arguments), key, success, refused)
            if store:
                async with conn.transaction():
                    row = await conn.fetchrow(sql, *arguments)
                    done, store = _answer(row, key, success, refused)
                    if store:
                        assert key is not None
                        answer = done.answer
                        await conn.execute(
                            REFUSAL_SQL,
                            arguments[0],  # the tenant
                            key.value,
                            key.fingerprint,
                            answer.status,
                            answer.media_type,
                            answer.body,
                            now,
                            expires,
                        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        dberrors.raise_translated(error)
    dberrors.database_answered(began)
    return done


def _answer(
    row: Any, key: idempotency.Key | None, success: int, refused: Refusal
) -> tuple[Done, bool]:
    """The answer to what the function returned, and whether it is a refusal still to be
    stored under the key; a refusal without a key raises."""
    error = row["o_error"]
    if error == "idempotency_key_in_use":
        assert key is not None
        raise IdempotencyKeyInUse(f"a request with key {key.value!r} is in flight")
    if error == "idempotency_key_reused":
        assert key is not None
        raise IdempotencyKeyReused(f"the key {key.value!r} was used for a different request")
    if row["o_replay_status"] is not None:
        body = bytes(row["o_replay_body"])
        replayed = idempotency.Answer(
            row["o_replay_status"], row["o_replay_media"], body, [idempotency.REPLAYED_HEADER]
        )
        return Done(replayed), False
    payout = payout_of(row) if row["o_found"] else None
    if error is None:
        assert payout is not None
        answer = idempotency.Answer(success, JSON_MEDIA_TYPE, row["o_body"].encode())
        return Done(answer, payout), False
    refusal = refused(error, row["o_info"], payout)
    if key is None or refusal.status >= 500:
        raise refusal
    return Done(idempotency.problem_answer(refusal)), True


async def record_submission(
    db: Database, payout_id: uuid.UUID, reference: str, check_at: datetime
) -> None:
    """Keep the rail's reference and when to ask it first, while the payout is PROCESSING."""
    began = time.monotonic()
    try:
        await db.pool.execute(SUBMITTED_SQL, payout_id, reference, check_at)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        dberrors.raise_translated(error)
    dberrors.database_answered(began)


def payout_of(row: Any) -> Payout:
    """The payout a function returned (its columns among the row's)."""
    # JSON comes as text from the pool, decoded from a connection of SQLAlchemy's.
    values = {
        name: orjson.loads(row[name])
        if name in _JSON_FIELDS and isinstance(row[name], str)
        else row[name]
        for name in _PAYOUT_FIELDS
    }
    return Payout(**values)


def creation_refusal(code: str, info: str | None, body: NewPayout) -> KassaError:
    """The error of a refusal ``kassa_create_payout`` reported, in the words of ``lifecycle``."""
    if code == "wallet_not_found":
        return NotFound(f"wallet {body.wallet_id} not found")
    if code in ("wallet_closed", "wallet_frozen"):
        return rules.wallet_error(code, body.wallet_id)
    if code == "currency_mismatch":
        return lifecycle.currency_mismatch(str(info), str(body.currency))
    if code == "instrument_not_found":
        return lifecycle.no_instrument(body.instrument_id)
    if code == "unknown_payment_option":
        return options.unknown_option(body.payment_option)
    if code == "option_currency":
        return options.currency_refused(body.payment_option, str(info))
    if code == "option_amount":
        low, high = (info or "").split(" ")
        return options.amount_refused(body.payment_option, int(low), int(high))
    if code == "option_instrument":
        return options.instrument_refused(body.payment_option, str(info))
    if code == "fee_too_large":
        return options.fee_too_large()
    if code == "duplicate_reference":
        kind, holder_id = (info or "").split(" ")
        return duplicate_reference(body.reference, (kind, uuid.UUID(holder_id)))
    raise RuntimeError(f"kassa_create_payout answered an unknown refusal {code!r}")


def change_refusal(
    code: str, info: str | None, payout: Payout | None, payout_id: object, target: str
) -> KassaError:
    """The error of a refusal ``kassa_change_payout`` reported, in the words of ``lifecycle``."""
    if code == "not_found" or payout is None:
        return NotFound(f"payout {payout_id} not found")
    if code == "forbidden":
        return lifecycle.settle_refused()
    if code == "invalid_status_transition":
        return lifecycle.invalid_transition(payout, target)
    if code == "payout_expired":
        return lifecycle.expired(payout)
    if code == "wallet_not_found":
        return NotFound(f"wallet {payout.wallet_id} not found")
    if code in ("wallet_closed", "wallet_frozen", "currency_mismatch"):
        return rules.wallet_error(code, payout.wallet_id, payout.currency)
    if code == "instrument_deleted":
        return NotFound(f"payment instrument {payout.instrument_id} was deleted")
    if code == "instrument_not_verified":
        return InstrumentNotVerified(f"payment instrument {payout.instrument_id} is not verified")
    if code == "unknown_payment_option":
        return options.unknown_option(payout.payment_option)
    if code == "option_currency":
        return options.currency_refused(payout.payment_option, payout.currency)
    if code == "option_amount":
        low, high = (info or "").split(" ")
        return options.amount_refused(payout.payment_option, int(low), int(high))
    if code == "option_instrument":
        return options.instrument_refused(payout.payment_option, str(info))
    if code == "insufficient_funds":
        return lifecycle.insufficient_funds(payout)
    if code == "hold_not_found":
        return NotFound("hold not found")
    if code == "hold_not_open":
        return HoldNotOpen()
    raise RuntimeError(f"kassa_change_payout answered an unknown refusal {code!r}")
