"""Group commit for the PostgreSQL engine of ``kassa.wallets.movements``.

Each process keeps at most ``slots`` statements in flight (one per pooled connection). A deposit
or immediate withdrawal that finds a slot free goes at once, alone; those that arrive while every
slot is busy wait in arrival order and go together in the next statement, as one batch and one
commit (``kassa_post_wallets``, whose one source is in ``kassa/migrations/sql``). An idle
service therefore answers as fast as before, and a busy one pays for one round trip, one
commit and one hold of a hot wallet's row lock per batch instead of per request.

Items succeed or fail on their own. If the database refuses the whole statement (a deadlock, a
reference taken by a concurrent request between check and insert, anything unexpected), nothing
of it was written, and each of its items is posted again alone, so its own error reaches only
it. A lost connection is different (``kit.dberrors.connection_lost``: a socket closed, refused or
reset, or the server shutting down, which PostgreSQL reports as an error too): whether the batch
committed is unknown, so it is never posted again, and each of its items fails as
``ServiceUnavailable``, a 503 whose client may send it again (its reference or Idempotency-Key
makes that safe).

A batch with items sent with an Idempotency-Key runs in one explicit transaction: the statement,
then the answers of those items (rendered by their routes from what the statement returned) in
one insert, then the commit; the work and its stored answer commit together or not at all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import asyncpg
import orjson

from kassa.kit import dberrors, metrics
from kassa.kit.db import FairPool

POST_WALLETS_SQL = (
    "SELECT o_error, o_currency, o_balance_after, o_cash, o_held, o_gift, o_wallet_status,"
    " o_frozen_until, o_freeze_reason, o_updated_at, o_status, o_media, o_body, o_replayed,"
    " o_existing_object, o_existing_id"
    " FROM kassa_post_wallets($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
    " $12, $13, $14, $15, $16, $17, $18, $19)"
)

STORE_ANSWERS_SQL = (
    "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status_code, media_type, body,"
    " created_at, expires_at)"
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[],"
    " $6::bytea[], $7::timestamptz[], $8::timestamptz[])"
)

# An answer as it is sent and stored: status, media type, body.
Answer = tuple[int, str, bytes]


@dataclass(frozen=True)
class Posting:
    """One deposit, gift, immediate withdrawal or forfeit, as the database function takes it."""

    tenant_id: uuid.UUID
    wallet_id: uuid.UUID
    account_kind: str
    sign: int
    amount: int
    currency: str | None
    counter_kind: str
    transaction_id: uuid.UUID
    transaction_kind: str
    reference: str | None
    description: str | None
    metadata: dict[str, str]
    now: datetime
    refuse_frozen: bool
    event_id: uuid.UUID
    event_type: str
    # The event's data as JSON, but for the currency and balances, which the database adds.
    event_data: str
    # With an Idempotency-Key: the key, the request's fingerprint, when the stored answer
    # expires, and how to answer what became of the posting (stored in the same transaction).
    idempotency_key: str | None = None
    fingerprint: str | None = None
    expires_at: datetime | None = None
    answer: Callable[[Posted], Answer] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Posted:
    """What became of one posting: an error code, or the wallet's currency, the moved account's
    new balance and the wallet's balances and status after it; with an Idempotency-Key also the
    answer (stored now, or ``replayed`` from before)."""

    error: str | None
    currency: str | None
    balance_after: int | None
    cash: int | None = None
    held: int | None = None
    gift: int | None = None
    wallet_status: str | None = None
    frozen_until: datetime | None = None
    freeze_reason: str | None = None
    updated_at: datetime | None = None
    status: int | None = None
    media_type: str | None = None
    body: bytes | None = None
    replayed: bool = False
    # A used reference: what holds it ("transaction" or "payout") and its id.
    existing_object: str | None = None
    existing_id: uuid.UUID | None = None

    @property
    def stored(self) -> Answer | None:
        if self.status is None or self.media_type is None or self.body is None:
            return None
        return self.status, self.media_type, self.body


# Errors that are answered without storing anything: the key belongs to another request.
KEY_REFUSALS = frozenset({"idempotency_key_in_use", "idempotency_key_reused"})


@dataclass
class _Waiting:
    posting: Posting
    future: asyncio.Future[Posted] = field(repr=False)


def _arguments(postings: Sequence[Posting]) -> list[object]:
    return [
        [p.tenant_id for p in postings],
        [p.wallet_id for p in postings],
        [p.account_kind for p in postings],
        [p.sign for p in postings],
        [p.amount for p in postings],
        [p.currency for p in postings],
        [p.counter_kind for p in postings],
        [p.transaction_id for p in postings],
        [p.transaction_kind for p in postings],
        [p.reference for p in postings],
        [p.description for p in postings],
        [orjson.dumps(p.metadata).decode() for p in postings],
        [p.now for p in postings],
        [p.refuse_frozen for p in postings],
        [p.event_id for p in postings],
        [p.event_type for p in postings],
        [p.event_data for p in postings],
        [p.idempotency_key for p in postings],
        [p.fingerprint for p in postings],
    ]


async def post_many(
    conn: FairPool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    postings: Sequence[Posting],
) -> list[Posted]:
    """Post ``postings`` in one statement; raises ``asyncpg.PostgresError`` if it was refused.

    Items with an Idempotency-Key have their answers stored in the same transaction: the
    statement and the answers' insert share one (the caller's, when ``conn`` is a connection
    already in a transaction)."""
    if not any(p.idempotency_key is not None for p in postings):
        rows = await conn.fetch(POST_WALLETS_SQL, *_arguments(postings))
        return [Posted(*row) for row in rows]
    if isinstance(conn, FairPool):
        async with conn.acquire() as one, one.transaction():
            return await _post_keyed(one, postings)
    return await _post_keyed(conn, postings)


async def _post_keyed(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, postings: Sequence[Posting]
) -> list[Posted]:
    rows = await conn.fetch(POST_WALLETS_SQL, *_arguments(postings))
    results: list[Posted] = []
    stored: list[tuple[Posting, Answer]] = []
    for posting, row in zip(postings, rows, strict=True):
        posted = Posted(*row)
        if (
            posting.idempotency_key is not None
            and posting.answer is not None
            and not posted.replayed
            and posted.error not in KEY_REFUSALS
        ):
            answer = posting.answer(posted)
            posted = replace(posted, status=answer[0], media_type=answer[1], body=answer[2])
            stored.append((posting, answer))
        results.append(posted)
    if stored:
        await conn.execute(
            STORE_ANSWERS_SQL,
            [p.tenant_id for p, _ in stored],
            [p.idempotency_key for p, _ in stored],
            [p.fingerprint for p, _ in stored],
            [a[0] for _, a in stored],
            [a[1] for _, a in stored],
            [a[2] for _, a in stored],
            [p.now for p, _ in stored],
            [p.expires_at for p, _ in stored],
        )
    return results


class Batcher:
    """Gathers concurrent postings of one process into batches; see the module's text."""

    def __init__(self, pool: FairPool, *, slots: int, max_batch: int = 128) -> None:
        self.pool = pool
        self._slots = slots
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._busy = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.statements = 0  # statements sent, retries included: fewer than postings when busy

    async def post(self, posting: Posting) -> Posted:
        """Post one deposit or withdrawal; its result once its batch has committed."""
        future: asyncio.Future[Posted] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(posting, future))
        if self._busy < self._slots:
            self._send_next()
        # If this request is cancelled (its client went away) the future is cancelled but the
        # posting still goes: money that moved is recorded, and a retry with the same reference
        # is refused, never doubled.
        return await future

    def _send_next(self) -> None:
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        self._busy += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            # One lock order for every batch: by wallet, then in arrival order (sort is stable).
            batch.sort(key=lambda w: w.posting.wallet_id.bytes)
            await self._post(batch)
        except BaseException as error:
            # Whatever went wrong, no request may wait forever: settle those still waiting.
            for waiting in batch:
                _settle(waiting.future, error=error)
            if not isinstance(error, Exception):
                raise
        finally:
            self._busy -= 1
            if self._waiting and self._busy < self._slots:
                self._send_next()

    async def _post(self, batch: list[_Waiting]) -> None:
        self.statements += 1
        metrics.BATCH_SIZE.observe(len(batch))
        sent_at = time.monotonic()
        try:
            results = await post_many(self.pool, [w.posting for w in batch])
        except Exception as error:  # noqa: BLE001 - each kind is told apart below
            if dberrors.connection_lost(error):  # the outcome is unknown: never post it again
                for waiting in batch:
                    _settle(waiting.future, error=dberrors.translate(error) or error)
            elif isinstance(error, asyncpg.PostgresError) and len(batch) > 1:
                # The statement was refused and rolled back as a whole: post each item alone.
                for waiting in batch:
                    await self._post([waiting])
            else:
                for waiting in batch:
                    _settle(waiting.future, error=error)
            return
        dberrors.database_answered(sent_at)
        for waiting, result in zip(batch, results, strict=True):
            _settle(waiting.future, result=result)


def _settle(
    future: asyncio.Future[Posted],
    *,
    result: Posted | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)
