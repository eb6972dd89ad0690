"""Database plumbing: URLs, engines, the unit of work, and the PostgreSQL hot-path pool.

Two backends share one schema. SQLite (the embedded default) runs every write as one
``BEGIN IMMEDIATE`` transaction so concurrent writers queue instead of failing; PostgreSQL runs
everything off the hot path through SQLAlchemy Core and the hot path (deposits, immediate
withdrawals) as one prepared statement sent through asyncpg itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import JSON, BigInteger, DateTime, Integer, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from kassa.kit import dberrors
from kassa.kit.dburl import DEFAULT_DATABASE_URL, Backend, DatabaseUrl
from kassa.kit.metadata import metadata

__all__ = ["DEFAULT_DATABASE_URL", "Backend", "Database", "DatabaseUrl", "metadata"]


class FairPool:
    """asyncpg's pool, with connections handed out in the order they were asked for.

    asyncpg keeps its idle connections in an ``asyncio.Queue``. When a connection comes back,
    the first waiter is woken, but a request that asks in the meantime takes the connection
    first, and the waiter that was woken queues again at the back. Under load (64 clients on
    two workers of four connections each) that left about one payout change in seven a round
    or two behind the rest, two or three times the median latency. Here each acquisition
    first takes a turn (``asyncio.Semaphore``, first come first served, of the pool's size),
    so asyncpg's own queue never has a waiter and nobody overtakes anybody.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.inner = pool
        self._turns = asyncio.Semaphore(pool.get_max_size())

    def acquire(self) -> _Turn:
        """``async with pool.acquire() as conn``: the turn first, then asyncpg's connection,
        which goes back to asyncpg before the turn passes on."""
        return _Turn(self._turns, self.inner)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.acquire() as conn:
            return await conn.execute(query, *args)

    async def close(self) -> None:
        await self.inner.close()


class _Turn:
    __slots__ = ("_acquired", "_pool", "_turns")

    def __init__(self, turns: asyncio.Semaphore, pool: asyncpg.Pool) -> None:
        self._turns, self._pool = turns, pool
        self._acquired: Any = None

    async def __aenter__(self) -> asyncpg.pool.PoolConnectionProxy:
        await self._turns.acquire()
        try:
            self._acquired = self._pool.acquire()
            conn: asyncpg.pool.PoolConnectionProxy = await self._acquired.__aenter__()
        except BaseException:
            self._turns.release()
            raise
        return conn

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._acquired.__aexit__(*exc)
        finally:
            self._turns.release()


# A 64-bit key that is SQLite's rowid there (so it autoincrements) and bigint on PostgreSQL.
SeqKey = BigInteger().with_variant(Integer(), "sqlite")
JsonObject = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release: our statements leave no session state behind."""


# A unit of work's turn to write (see ``Database.take_write_turns``).
WriteTurn = Callable[[], AbstractAsyncContextManager[None]]


class Database:
    """One per process: the SQLAlchemy engine and, on PostgreSQL, the hot-path asyncpg pool."""

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url = DatabaseUrl(url)
        self.backend = self.url.backend
        self.pool_size = pool_size
        self.pg_pool: FairPool | None = None
        # hide_parameters: an error's text never quotes the values a statement was given
        # (references, descriptions, metadata), so no log line can carry them.
        self.engine: AsyncEngine = create_async_engine(
            self.url.sqlalchemy_url,
            pool_size=pool_size,
            max_overflow=pool_size,
            hide_parameters=True,
        )
        if self.backend is Backend.SQLITE:
            _configure_sqlite(self.engine)
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        self._write_turn: WriteTurn | None = None

    def on_close(self, stop: Callable[[], Awaitable[None]]) -> None:
        """Have :meth:`close` await ``stop`` first: a part that keeps a connection of its own
        (the SQLite writer of ``wallets.engine_sqlite``) closes with the database."""
        self._on_close.append(stop)

    def take_write_turns(
        self, turn: Callable[[], AbstractAsyncContextManager[None]] | None
    ) -> None:
        """Have each :meth:`write` unit of work wait for ``turn()`` first, and hold it until it
        ends: on SQLite, the turn of ``wallets.sqlite_writer``, the thread that holds the write
        lock between its own batches (None: no turns)."""
        self._write_turn = turn

    async def open(self) -> None:
        if self.backend is Backend.POSTGRESQL and self.pg_pool is None:
            # No floor of idle connections (min_size=0): asyncpg would keep one by reconnecting
            # in the background, all through an outage, logging a traceback at each attempt.
            # Connections are made when requests need them, and kept while they are used.
            pool = await asyncpg.create_pool(
                self.url.asyncpg_dsn,
                min_size=0,
                max_size=self.pool_size,
                reset=_no_reset,
            )
            self.pg_pool = FairPool(pool)

    async def close(self) -> None:
        stops, self._on_close = self._on_close, []
        for stop in stops:
            await stop()
        if self.pg_pool is not None:
            await self.pg_pool.close()
            self.pg_pool = None
        await self.engine.dispose()

    @property
    def pool(self) -> FairPool:
        if self.pg_pool is None:
            raise RuntimeError("Database.open() was not awaited")
        return self.pg_pool

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """The unit of work for a change: commits when the block ends, rolls back on error.
        Database errors that mean something to a client leave as that ``KassaError`` (a lost
        connection as ``ServiceUnavailable``)."""
        began = time.monotonic()
        turn = self._write_turn
        try:
            async with turn() if turn is not None else nullcontext(), self.engine.connect() as conn:
                if self.backend is Backend.SQLITE:
                    conn = await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                async with conn.begin():
                    yield conn
        except Exception as error:  # noqa: BLE001 - raised again, translated or as it was
            dberrors.raise_translated(error)
        dberrors.database_answered(began)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit of work (one snapshot); never commits anything."""
        began = time.monotonic()
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
        except Exception as error:  # noqa: BLE001 - raised again, translated or as it was
            dberrors.raise_translated(error)
        dberrors.database_answered(began)

    async def ping(self) -> None:
        """Raises whatever keeps the database from answering (for ``/readyz``)."""
        began = time.monotonic()
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        dberrors.database_answered(began)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Let Kassa, not pysqlite, say when a transaction begins, and how.

    pysqlite's own transaction handling begins lazily with a deferred BEGIN, which turns two
    concurrent writers into a 'database is locked' failure instead of a queue.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",  # an answered write survives a power cut
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
