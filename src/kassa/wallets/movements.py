"""Every change of a wallet's balance by a deposit, gift, immediate withdrawal or gift forfeit
goes through :func:`move` (or, inside a caller's unit of work, :func:`move_in`): ``/v1`` and its
ASGI hot path, every dialect, and the forfeit when a wallet closes.

The backend is chosen here, once: on PostgreSQL ``engine_pg`` (the group commit and the batch
function ``kassa_post_wallets``), on SQLite ``engine_sqlite`` (the process's one writer thread,
``sqlite_writer``, which posts the movements that arrive together in one ``BEGIN IMMEDIATE``
transaction). Both apply the same rules in the same order (a key in use or reused, a reference used
before, an unknown, closed or frozen wallet, another currency, insufficient funds) and give the
same refusals (``money.refusal``); ``tests/wallets/test_parity.py`` proves it on every route.

A route says how it answers (``AnswerFor``); the answer is the same bytes with or without an
Idempotency-Key, and with one it is stored in the movement's own transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.idempotency import service as idempotency
from kassa.kit.db import Backend, Database
from kassa.wallets import engine_pg, engine_sqlite
from kassa.wallets.money import (
    DEPOSIT,
    GIFT,
    GIFT_FORFEIT,
    WITHDRAWAL,
    AnswerFor,
    MoneyRequest,
    Moved,
    Movement,
    Outcome,
)

__all__ = [
    "DEPOSIT",
    "GIFT",
    "GIFT_FORFEIT",
    "WITHDRAWAL",
    "AnswerFor",
    "MoneyRequest",
    "Moved",
    "Movement",
    "Outcome",
    "move",
    "move_in",
]


async def move(
    db: Database,
    request: MoneyRequest,
    now: datetime,
    answer_for: AnswerFor,
    *,
    key: idempotency.Key | None = None,
    ttl: timedelta = timedelta(hours=24),
) -> idempotency.Answer:
    """Move the money as one atomic unit of work with its ``wallet.credited`` or
    ``wallet.debited`` event, and answer it (or its refusal) as ``answer_for`` says. With
    ``key`` a retry replays the stored answer; a key in use or reused raises."""
    if db.backend is Backend.POSTGRESQL:
        return await engine_pg.move(db, request, now, answer_for, key, ttl)
    return await engine_sqlite.move(db, request, now, answer_for, key, ttl)


async def move_in(conn: AsyncConnection, request: MoneyRequest, now: datetime) -> Moved:
    """The same inside the caller's unit of work; a refusal raises."""
    if conn.dialect.name == "postgresql":
        return await engine_pg.move_in(conn, request, now)
    return await engine_sqlite.move_in(conn, request, now)
