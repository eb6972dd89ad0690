"""Group commit for the SQLite engine of ``kassa.wallets.movements``: one writer per process.

SQLite lets one connection write at a time. Before this module every movement was its own
``BEGIN IMMEDIATE`` unit of work on one of SQLAlchemy's pooled aiosqlite connections, and the
pool's connections queued for the write lock in SQLite's busy handler, which sleeps and polls:
under load a request spent most of its time asleep there, often while the lock was free.

Here one thread per process owns one ``sqlite3.Connection`` and is the only one that posts
movements. Jobs (functions of that connection) queue in arrival order; the thread takes every
job waiting, up to ``max_batch``, and runs them in one ``BEGIN IMMEDIATE`` transaction, each in
its own SAVEPOINT: a job that raises has what it wrote rolled back and its error goes to its
caller alone; its neighbours go on. One COMMIT, one fsync, serves the batch, and only after it
does any caller hear of its job. If the batch as a whole fails (BEGIN after the busy timeout, a
disk error, the COMMIT), none of it was committed and every job of it gets that error. An idle
service posts a batch of one at once; a busy one pays for one commit per batch.

The connection is set up as ``kit.db`` sets up SQLAlchemy's (WAL, foreign keys, a 30 s busy
timeout, so it waits its turn beside the connections that do every other write), except that
it commits with ``synchronous=FULL``: a movement that was answered survives a power cut.
Statements are prepared once and kept in the connection's statement cache.

Copying the write-ahead log back into the database (a checkpoint) is kept off the commit path:
SQLite runs one in the COMMIT that finds the log past 1,000 pages, and a movement adds about
seven (its random-keyed index pages), so every 130-odd movements one batch would wait for a
checkpoint. A second thread with its own connection (:class:`_Checkpointer`) runs a PASSIVE
checkpoint (which waits for no reader or writer) after commits, at most every
``CHECKPOINT_EVERY_S``; the commit-time checkpoint is left as SQLite's backstop and then finds
little or nothing to copy, after which the log starts again from its beginning.

Callers await an ``asyncio`` future of their own event loop; the thread settles it with
``call_soon_threadsafe``, once per loop per batch. :meth:`Writer.close` posts what is queued,
then stops both threads and closes their connections (``Database.close`` calls it).

Every other write of the process (a SQLAlchemy unit of work: a payout's status change, a
wallet's creation, a webhook's delivery) takes a turn from the writer first (:meth:`Writer.turn`,
which ``Database.write`` awaits): the turn waits in the same queue as the movements, the writer
commits what came before it, hands the lock over and waits until that unit of work ends (at
most ``TURN_LIMIT_S``). Without turns such a unit of work would wait for the lock in SQLite's
busy handler, which sleeps and polls, and under a steady stream of batches it rarely found the
lock free: a payout's status change waited up to seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

from kassa.kit import dberrors

T = TypeVar("T")
log = structlog.get_logger("kassa.sqlite_writer")

# As kit.db's SQLite connections, but durable at each commit (see the module's text).
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)
# The writer's statements, each prepared once per connection (sqlite3's cache is by text).
STATEMENT_CACHE = 64
# How long the writer waits for a unit of work it gave a turn to (``Writer.turn``) before it
# takes the lock again (SQLite's busy timeout, then, makes one of the two wait).
TURN_LIMIT_S = 30.0
# The least time between two background checkpoints, and after one that failed.
CHECKPOINT_EVERY_S = 0.05
CHECKPOINT_RETRY_S = 1.0


def connect(path: str) -> sqlite3.Connection:
    """A connection for the writer: transactions begun and ended by Kassa, not by sqlite3."""
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=STATEMENT_CACHE)
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass
class _Job(Generic[T]):
    work: Callable[[sqlite3.Connection], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T] = field(repr=False)


@dataclass
class _Turn:
    """Another connection's turn to write: granted on ``loop``, ended by ``done``."""

    loop: asyncio.AbstractEventLoop
    granted: asyncio.Future[None] = field(repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)


# What became of one job: its result, or the error it (or its batch) raised.
_Settled = tuple["asyncio.Future[Any]", Any, BaseException | None]


class WriterClosed(RuntimeError):
    """A job was given to a writer that was closed."""


class Writer:
    """One thread, one connection, jobs posted in batches; see the module's text."""

    def __init__(self, path: str, *, max_batch: int = 128) -> None:
        self.path = path
        self.pid = os.getpid()  # a forked child has no thread: it starts its own writer
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job[Any] | _Turn | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # orders submit against close, whichever thread calls
        self._closed = False
        self.batches = 0  # committed transactions: fewer than jobs when requests queue
        self._checkpointer = _Checkpointer(path)
        self._thread = threading.Thread(target=self._serve, name="kassa-sqlite-writer", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in the writer's next transaction; its result once that committed.

        If the caller is cancelled (its client went away) the job still runs: money that moved
        is recorded, and a retry with the same reference or key is refused or replayed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise WriterClosed("the SQLite writer is closed")
            self._queue.put(_Job(work, loop, future))
        return await future

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait until the writer holds no lock and will take none before the block ends (or
        ``TURN_LIMIT_S`` passed): the turn of a unit of work on another connection. Turns and
        movements are served in the order they came."""
        loop = asyncio.get_running_loop()
        given = _Turn(loop, loop.create_future())
        with self._lock:
            queued = not self._closed
            if queued:
                self._queue.put(given)
        try:
            if queued:
                await given.granted
            yield
        finally:
            given.done.set()  # also if cancelled while waiting: the writer goes on at once

    def stop(self) -> None:
        """Ask the thread to stop once it has posted what is queued; does not wait."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)

    async def close(self) -> None:
        """Post what is queued, then stop the threads and close their connections."""
        self.stop()
        await asyncio.to_thread(self._thread.join)
        await self._checkpointer.close()

    # -- the thread ----------------------------------------------------------------------------

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch: list[_Job[Any]] = []
                turn: _Turn | None = None
                job: _Job[Any] | _Turn | None = first
                while job is not None:
                    if isinstance(job, _Turn):  # what came before it first, then the turn
                        turn = job
                        break
                    batch.append(job)
                    if len(batch) >= self._max_batch:
                        break
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                if batch:
                    conn = self._post(conn, batch)
                if turn is not None:
                    _give(turn)
        finally:
            if conn is not None:
                conn.close()
            self._refuse_the_rest()
            self._checkpointer.stop()

    def _refuse_the_rest(self) -> None:
        """The thread is ending (closed, or killed by an error that is not a job's): no job
        given after this waits forever, and a turn asked for is granted at once."""
        with self._lock:
            self._closed = True
        left: list[_Job[Any]] = []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, _Turn):
                _grant(job)
            elif job is not None:
                left.append(job)
        stopped = WriterClosed("the SQLite writer stopped")
        _settle(left, [(job.future, None, stopped) for job in left])

    def _post(
        self, conn: sqlite3.Connection | None, batch: list[_Job[Any]]
    ) -> sqlite3.Connection | None:
        """Run ``batch`` in one transaction; the connection to use next (None: open anew)."""
        settled: list[_Settled] = []
        try:
            if conn is None:
                conn = connect(self.path)
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    result = job.work(conn)
                except Exception as error:  # noqa: BLE001 - the job's own: it goes to its caller
                    conn.execute("ROLLBACK TO job")
                    settled.append((job.future, None, error))
                else:
                    settled.append((job.future, result, None))
                conn.execute("RELEASE job")
            conn.execute("COMMIT")
        except Exception as error:  # noqa: BLE001 - the batch's: it goes to every caller in it
            # Nothing of the batch committed, so no job's result may be told: each gets this.
            conn = _abandon(conn)
            _settle(batch, [(job.future, None, error) for job in batch])
            return conn
        except BaseException as error:
            conn = _abandon(conn)
            _settle(batch, [(job.future, None, error) for job in batch])
            raise
        self.batches += 1
        self._checkpointer.wake()
        _settle(batch, settled)
        return conn


class _Checkpointer:
    """A thread that copies the write-ahead log into the database after the writer's commits
    (see the module's text). Started on the first commit; a failed checkpoint is logged and
    tried again later, and meanwhile SQLite's own commit-time checkpoint does the work."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name="kassa-sqlite-checkpointer", daemon=True
            )
            self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()

    async def close(self) -> None:
        self.stop()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wanted.wait()
                if self._stopping.is_set():
                    return
                self._wanted.clear()
                pause = CHECKPOINT_EVERY_S
                try:
                    if conn is None:
                        conn = connect(self.path)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:
                    log.warning("sqlite_checkpoint_failed", error=dberrors.describe(error))
                    if conn is not None:
                        conn.close()
                        conn = None
                    pause = CHECKPOINT_RETRY_S
                self._stopping.wait(pause)
        finally:
            if conn is not None:
                conn.close()


def _grant(turn: _Turn) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for the turn
        turn.loop.call_soon_threadsafe(_set_granted, turn.granted)


def _set_granted(granted: asyncio.Future[None]) -> None:
    if not granted.done():  # cancelled: its unit of work went away (and set ``done``)
        granted.set_result(None)


def _give(turn: _Turn) -> None:
    """Let the turn's unit of work write, and wait until it is done (or the limit passed)."""
    _grant(turn)
    if not turn.done.wait(TURN_LIMIT_S):
        log.warning("sqlite_turn_overran", limit_s=TURN_LIMIT_S)


def _abandon(conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
    """Roll back what is left of a failed batch; a connection that cannot is closed."""
    if conn is None or not conn.in_transaction:
        return conn
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        conn.close()
        return None
    return conn


def _settle(batch: list[_Job[Any]], settled: list[_Settled]) -> None:
    """Hand each caller its outcome on its own event loop (one wake-up per loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
    for job, outcome in zip(batch, settled, strict=True):
        by_loop.setdefault(job.loop, []).append(outcome)
    for loop, outcomes in by_loop.items():
        # A closed loop (RuntimeError) has nobody waiting on it any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_on_loop, outcomes)


def _settle_on_loop(outcomes: list[_Settled]) -> None:
    for future, result, error in outcomes:
        if future.done():  # cancelled: its caller went away
            continue
        if isinstance(error, asyncio.CancelledError):
            future.cancel()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
