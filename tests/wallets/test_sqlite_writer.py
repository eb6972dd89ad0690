"""The SQLite engine's writer (``kassa.wallets.sqlite_writer``) and what it writes.

Movements through the writer (``engine_sqlite.move``) must leave the same rows, byte for byte
in SQLite's own encoding, as the SQLAlchemy path (``engine_sqlite.move_in`` in a unit of work,
and ``idempotency.service.run`` around it for a keyed request): compared here on twin wallets
at one frozen instant, ids masked. The writer's batches: jobs queued together share one
commit, a job that raises (a refusal) rolls back only its own writes, a batch whose COMMIT
fails commits nothing and fails every job in it, the writer waits for the write lock held by
another connection, and ``Database.close`` stops its thread.

SQLite only: PostgreSQL's engine is ``engine_pg`` (``test_group_commit.py``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kassa import migrations
from kassa.idempotency import service as idempotency
from kassa.idempotency.errors import IdempotencyKeyReused
from kassa.kit import dberrors
from kassa.kit.db import Database
from kassa.kit.errors import KassaError, ServiceUnavailable
from kassa.ledger.verify import verify
from kassa.wallets import engine_sqlite, movements, service
from kassa.wallets.endpoints import answer_v1
from kassa.wallets.money import MoneyRequest, Movement
from kassa.wallets.schemas import NewWallet
from kassa.wallets.sqlite_writer import Writer, WriterClosed
from tests.helpers import TenantKey, make_tenant

NOW = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC)
TTL = timedelta(hours=24)


@pytest.fixture(scope="module")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite_writer') / 'kassa.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    return url


@pytest.fixture(scope="module")
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def tenant(sqlite_db: Database) -> TenantKey:
    return await make_tenant(sqlite_db)


async def new_wallet(db: Database, tenant: TenantKey, customer_id: str) -> uuid.UUID:
    async with db.write() as conn:
        wallet = await service.create_wallet(
            conn, tenant.tenant_id, NewWallet(customer_id=customer_id, currency="EUR"), NOW
        )
    return wallet.id


def raw_rows(path: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(row) for row in conn.execute(sql, args)]
    finally:
        conn.close()


def db_path(db: Database) -> str:
    path = db.engine.url.database
    assert path
    return path


def masked(rows: list[tuple[Any, ...]], ids: dict[str, str]) -> list[tuple[Any, ...]]:
    """Rows with each id of ``ids`` (hex or dashed) replaced by its name."""
    swaps = {**ids, **{str(uuid.UUID(k)): v for k, v in ids.items()}}

    def mask(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for found, name in swaps.items():
            value = value.replace(found, name)
        return value

    return [tuple(mask(value) for value in row) for row in rows]


async def through_writer(
    db: Database, request: MoneyRequest, key: idempotency.Key | None = None
) -> idempotency.Answer:
    return await engine_sqlite.move(db, request, NOW, answer_v1, key, TTL)


async def through_sqlalchemy(
    db: Database, request: MoneyRequest, key: idempotency.Key | None = None
) -> idempotency.Answer:
    """The SQLite engine before the writer: one SQLAlchemy unit of work per movement."""

    async def work(conn: Any) -> tuple[int, bytes]:
        answer = answer_v1(await engine_sqlite.move_in(conn, request, NOW))
        return answer.status, answer.body

    try:
        return await idempotency.run(db, key, work, NOW, TTL, render_error=answer_v1)
    except KassaError as error:
        if error.status >= 500 or key is not None:
            raise
        return answer_v1(error)


def steps(wallet_id: uuid.UUID, tenant: TenantKey, tag: str) -> list[MoneyRequest]:
    """Every kind of movement, with and without the optional fields, and refusals."""

    def request(movement: Movement, amount: int, **extra: Any) -> MoneyRequest:
        return MoneyRequest(tenant.tenant_id, wallet_id, movement, amount, **extra)

    return [
        request(
            movements.DEPOSIT,
            10_000,
            reference=f"{tag}-dep",
            description="dépôt ☕",
            metadata={"order": "42", "ü": "\u2603"},
        ),
        request(movements.GIFT, 700, currency="EUR"),
        request(movements.WITHDRAWAL, 2_500, reference=f"{tag}-wd"),
        request(movements.WITHDRAWAL, 1, reference=f"{tag}-wd"),  # the reference again
        request(movements.WITHDRAWAL, 7_501),  # one more than the cash
        request(movements.WITHDRAWAL, 5, currency="USD"),
        request(movements.GIFT_FORFEIT, 700, description="forfeit"),
        request(movements.WITHDRAWAL, 7_500),
    ]


async def test_sqlite_writer_writes_what_the_sqlalchemy_path_writes(
    sqlite_db: Database, tenant: TenantKey
) -> None:
    fast = await new_wallet(sqlite_db, tenant, f"fast-{uuid.uuid4().hex[:6]}")
    slow = await new_wallet(sqlite_db, tenant, f"slow-{uuid.uuid4().hex[:6]}")
    path = db_path(sqlite_db)
    for n, (one, other) in enumerate(
        zip(steps(fast, tenant, "f"), steps(slow, tenant, "s"), strict=True)
    ):
        key_fast = idempotency.key_for(tenant.tenant_id, f"f-{n}", "POST", "/x", b"{}")
        key_slow = idempotency.key_for(tenant.tenant_id, f"s-{n}", "POST", "/x", b"{}")
        # Unkeyed and keyed (the keyed one refused or moving the same again: twice the step).
        answers = [
            (await through_writer(sqlite_db, one), await through_sqlalchemy(sqlite_db, other)),
            (
                await through_writer(sqlite_db, one, key_fast),
                await through_sqlalchemy(sqlite_db, other, key_slow),
            ),
        ]
        for fast_answer, slow_answer in answers:
            assert (fast_answer.status, fast_answer.media_type, fast_answer.headers) == (
                slow_answer.status,
                slow_answer.media_type,
                slow_answer.headers,
            ), n
            bodies = [
                json.loads(fast_answer.body.replace(str(fast).encode(), b"W")),
                json.loads(slow_answer.body.replace(str(slow).encode(), b"W")),
            ]
            for body in bodies:
                body.pop("id", None)
                if body.get("reference"):
                    body["reference"] = body["reference"][1:]
                # A used reference is named by what holds it: each path's own transaction.
                holder = body.pop("transaction_id", None)
                if "detail" in body:
                    if holder is not None:
                        body["detail"] = body["detail"].replace(holder, "H")
                    body["detail"] = body["detail"].replace("f-", "").replace("s-", "")
            assert bodies[0] == bodies[1], n

    ids = {fast.hex: "W", slow.hex: "W"}
    columns = (
        "kind, amount, currency, balance_before, balance_after, status, substr(reference, 2),"
        " description, metadata, hold_id, created_at, typeof(created_at), typeof(id), length(id)"
    )
    journal = [
        masked(
            raw_rows(
                path,
                f"SELECT {columns} FROM journal_transactions WHERE wallet_id = ? ORDER BY seq",
                wallet.hex,
            ),
            ids,
        )
        for wallet in (fast, slow)
    ]
    assert journal[0] == journal[1]
    # Went through: the deposit and the first withdrawal once (their keyed twins reuse the
    # reference), the gift and the forfeit twice, the last withdrawal once (then too little).
    assert len(journal[0]) == 7

    entries = [
        raw_rows(
            path,
            "SELECT e.currency, e.amount, a.kind, a.wallet_id IS NULL"
            " FROM journal_entries e JOIN journal_transactions t ON t.seq = e.transaction_seq"
            " JOIN accounts a ON a.id = e.account_id WHERE t.wallet_id = ? ORDER BY e.id",
            wallet.hex,
        )
        for wallet in (fast, slow)
    ]
    assert entries[0] == entries[1]
    assert len(entries[0]) == 14

    def event_rows(wallet: uuid.UUID, tag: str) -> list[tuple[Any, ...]]:
        """Each event as stored, its data's text byte for byte but for the ids and the
        reference's first letter (SQLAlchemy's JSON type writes ``json.dumps`` of it)."""
        rows = raw_rows(
            path,
            "SELECT type, data, created_at, typeof(id), length(id) FROM events"
            " WHERE tenant_id = ? AND json_extract(data, '$.wallet_id') = ? ORDER BY seq",
            tenant.tenant_id.hex,
            str(wallet),
        )
        out = []
        for type_, data, created_at, id_type, id_length in rows:
            text = data.replace(json.loads(data)["id"], "T").replace(str(wallet), "W")
            out.append((type_, text.replace(f'"{tag}-', '"R-'), created_at, id_type, id_length))
        return out

    fast_events = event_rows(fast, "f")
    assert len(fast_events) == 7
    assert fast_events == event_rows(slow, "s")

    def account_rows(wallet: uuid.UUID) -> list[tuple[Any, ...]]:
        return raw_rows(
            path,
            "SELECT kind, balance, held FROM accounts WHERE wallet_id = ? ORDER BY kind",
            wallet.hex,
        )

    assert account_rows(fast) == account_rows(slow) == [("cash", 0, 0), ("gift", 0, 0)]

    keys = [
        raw_rows(
            path,
            "SELECT status_code, media_type, body, sealed, created_at, expires_at,"
            " typeof(body), typeof(tenant_id) FROM idempotency_keys"
            " WHERE tenant_id = ? AND key LIKE ? ORDER BY key",
            tenant.tenant_id.hex,
            f"{prefix}-%",
        )
        for prefix in ("f", "s")
    ]
    assert len(keys[0]) == len(keys[1]) == 8
    for fast_key, slow_key in zip(*keys, strict=True):
        assert fast_key[:2] == slow_key[:2]
        assert fast_key[3:] == slow_key[3:]
    async with sqlite_db.read() as conn:
        report = await verify(conn, tenant.tenant_id)
    assert report.ok, report.problems


async def test_sqlite_writer_replays_refuses_and_frees_keys(
    sqlite_db: Database, tenant: TenantKey
) -> None:
    wallet = await new_wallet(sqlite_db, tenant, f"keys-{uuid.uuid4().hex[:6]}")
    await through_writer(
        sqlite_db, MoneyRequest(tenant.tenant_id, wallet, movements.DEPOSIT, 1_000)
    )
    withdraw = MoneyRequest(tenant.tenant_id, wallet, movements.WITHDRAWAL, 100)
    key = idempotency.key_for(tenant.tenant_id, "k", "POST", "/w", b"{}")
    assert key is not None
    first = await through_writer(sqlite_db, withdraw, key)
    again = await through_writer(sqlite_db, withdraw, key)
    assert first.status == 201
    assert first.headers == []
    assert (again.status, again.body) == (first.status, first.body)
    assert again.headers == [idempotency.REPLAYED_HEADER]

    other = idempotency.key_for(tenant.tenant_id, "k", "POST", "/w", b"{other}")
    assert other is not None
    with pytest.raises(IdempotencyKeyReused):
        await through_writer(sqlite_db, withdraw, other)

    later = await engine_sqlite.move(
        sqlite_db, withdraw, NOW + TTL + timedelta(seconds=1), answer_v1, other, TTL
    )
    assert later.status == 201
    assert later.headers == []
    assert later.body != first.body
    async with sqlite_db.read() as conn:
        wallet_out = await service.get_wallet(conn, tenant.tenant_id, wallet, NOW)
    assert wallet_out.balance == 800


async def test_sqlite_writer_batches_and_a_refusal_fails_only_itself(
    sqlite_db: Database, tenant: TenantKey
) -> None:
    wallet = await new_wallet(sqlite_db, tenant, f"batch-{uuid.uuid4().hex[:6]}")
    await through_writer(
        sqlite_db, MoneyRequest(tenant.tenant_id, wallet, movements.DEPOSIT, 1_000)
    )
    writer = engine_sqlite.writer_of(sqlite_db)
    before = writer.batches
    # Hold the write lock, so that every movement below queues behind the first batch.
    blocker = sqlite3.connect(db_path(sqlite_db), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    requests = [
        MoneyRequest(tenant.tenant_id, wallet, movements.WITHDRAWAL, 30, reference=f"b-{n}")
        for n in range(50)
    ]
    requests.insert(10, MoneyRequest(tenant.tenant_id, uuid.uuid4(), movements.WITHDRAWAL, 1))
    moving = asyncio.gather(*(through_writer(sqlite_db, request) for request in requests))
    await asyncio.sleep(0.3)
    assert not moving.done()  # waiting for the lock, not failed
    blocker.execute("ROLLBACK")
    blocker.close()
    answers = await moving
    assert writer.batches - before <= 2  # 51 movements, at most two commits
    statuses = [answer.status for answer in answers]
    assert statuses[10] == 404
    assert statuses.count(201) == 33
    assert statuses.count(409) == 17
    afters = sorted(json.loads(a.body)["balance_after"] for a in answers if a.status == 201)
    assert afters == list(range(10, 1000, 30))  # each saw the one before it
    async with sqlite_db.read() as conn:
        report = await verify(conn, tenant.tenant_id)
    assert report.ok, report.problems


async def test_sqlite_writer_job_that_raises_rolls_back_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.db")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    setup.execute(
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER"
        " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    setup.close()
    writer = Writer(path)

    def insert(n: int, *, fail: bool = False) -> Any:
        def job(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO parent (id) VALUES (?)", (n,))
            if fail:
                raise ValueError(n)
            return n

        return job

    def orphan(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO child (parent_id) VALUES (999)")  # refused at COMMIT

    try:
        outcomes = await asyncio.gather(
            writer.run(insert(1)),
            writer.run(insert(2, fail=True)),
            writer.run(insert(3)),
            return_exceptions=True,
        )
        assert outcomes[0] == 1
        assert outcomes[2] == 3
        assert isinstance(outcomes[1], ValueError)
        assert raw_rows(path, "SELECT id FROM parent ORDER BY id") == [(1,), (3,)]

        # A batch whose COMMIT fails: nothing of it is written, every job in it hears why.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        held = asyncio.gather(writer.run(insert(4)), return_exceptions=True)
        await asyncio.sleep(0.2)  # the first job's batch is waiting for the lock
        queued = asyncio.gather(
            writer.run(insert(5)), writer.run(orphan), writer.run(insert(6)), return_exceptions=True
        )
        await asyncio.sleep(0.1)
        blocker.execute("ROLLBACK")
        blocker.close()
        assert list(await held) == [4]
        failed = await queued
        assert all(isinstance(outcome, sqlite3.IntegrityError) for outcome in failed), failed
        assert raw_rows(path, "SELECT id FROM parent ORDER BY id") == [(1,), (3,), (4,)]
        assert await writer.run(insert(7)) == 7  # the writer goes on
    finally:
        await writer.close()
    with pytest.raises(WriterClosed):
        await writer.run(insert(8))


async def test_sqlite_writer_stops_when_the_database_closes(
    sqlite_url: str, tenant: TenantKey
) -> None:
    def writer_threads() -> int:
        names = ("kassa-sqlite-writer", "kassa-sqlite-checkpointer")
        return sum(thread.name in names for thread in threading.enumerate())

    baseline = writer_threads()
    for _ in range(5):
        database = Database(sqlite_url)
        await database.open()
        wallet = await new_wallet(database, tenant, f"close-{uuid.uuid4().hex[:6]}")
        answer = await through_writer(
            database, MoneyRequest(tenant.tenant_id, wallet, movements.DEPOSIT, 5)
        )
        assert answer.status == 201
        writer = engine_sqlite.writer_of(database)
        assert writer_threads() == baseline + 2  # the writer and its checkpointer
        await database.close()
        assert writer.closed
        assert writer_threads() == baseline
        # Used again after close, as SQLAlchemy's engine may be: a new writer.
        again = await through_writer(
            database, MoneyRequest(tenant.tenant_id, wallet, movements.DEPOSIT, 5)
        )
        assert again.status == 201
        assert engine_sqlite.writer_of(database) is not writer
        await database.close()
    assert writer_threads() == baseline


async def test_sqlite_writer_on_a_missing_file_is_unavailable(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'no-such-folder' / 'kassa.db'}")
    request = MoneyRequest(uuid.uuid4(), uuid.uuid4(), movements.DEPOSIT, 1)
    try:
        with pytest.raises(ServiceUnavailable):
            await through_writer(database, request)
    finally:
        await database.close()
    dberrors.database_answered(time.monotonic())  # the outage this test began is over


async def test_sqlite_writer_answers_a_cancelled_caller_s_movement_anyway(
    sqlite_db: Database, tenant: TenantKey
) -> None:
    wallet = await new_wallet(sqlite_db, tenant, f"cancel-{uuid.uuid4().hex[:6]}")
    blocker = sqlite3.connect(db_path(sqlite_db), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(
        through_writer(sqlite_db, MoneyRequest(tenant.tenant_id, wallet, movements.DEPOSIT, 9))
    )
    await asyncio.sleep(0.1)
    task.cancel()
    blocker.execute("ROLLBACK")
    blocker.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The money moved all the same (a retry with its reference would be refused, not doubled).
    moved = await through_writer(
        sqlite_db, MoneyRequest(tenant.tenant_id, wallet, movements.WITHDRAWAL, 9)
    )
    assert moved.status == 201
    assert json.loads(moved.body)["balance_after"] == 0


async def test_sqlite_writer_gives_other_writes_their_turn_in_order(tmp_path: Path) -> None:
    """A turn (what ``Database.write`` takes first) is granted once what was queued before it
    committed, with the lock free (a connection that will not wait gets it), and the writer
    takes nothing queued after it until the turn ends."""
    path = str(tmp_path / "turns.db")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE log (n INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL)")
    setup.close()
    writer = Writer(path)
    release = threading.Event()
    turn_over = threading.Event()
    seen_by_later: list[bool] = []

    def blocking(conn: sqlite3.Connection) -> None:
        assert release.wait(10)
        conn.execute("INSERT INTO log (who) VALUES ('before')")

    def later(conn: sqlite3.Connection) -> None:
        seen_by_later.append(turn_over.is_set())
        conn.execute("INSERT INTO log (who) VALUES ('after')")

    async def take_turn() -> asyncio.Future[None]:
        async with writer.turn():
            other = sqlite3.connect(path, isolation_level=None, timeout=0)  # never waits
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO log (who) VALUES ('turn')")
            queued = asyncio.ensure_future(writer.run(later))
            other.execute("COMMIT")
            other.close()
            turn_over.set()
        return queued

    try:
        first = asyncio.ensure_future(writer.run(blocking))
        turning = asyncio.ensure_future(take_turn())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not turning.done()  # the writer is still in the batch before it
        release.set()
        await first
        await (await turning)
        assert seen_by_later == [True]
        check = sqlite3.connect(path)
        order = [who for (who,) in check.execute("SELECT who FROM log ORDER BY n")]
        check.close()
        assert order == ["before", "turn", "after"]
    finally:
        release.set()
        await writer.close()


async def test_sqlite_writer_a_turn_cancelled_while_waiting_lets_the_writer_go_on(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "cancel.db")
    writer = Writer(path)
    release = threading.Event()
    try:
        busy = asyncio.ensure_future(writer.run(lambda conn: release.wait(10)))

        async def hold_turn() -> None:
            async with writer.turn():
                raise AssertionError("cancelled before its turn")

        waiting = asyncio.ensure_future(hold_turn())
        for _ in range(5):
            await asyncio.sleep(0)
        waiting.cancel()
        release.set()
        assert await busy is True
        # The writer goes on: it does not wait TURN_LIMIT_S for the cancelled turn.
        assert await writer.run(lambda conn: conn.execute("SELECT 1").fetchone()[0]) == 1
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        release.set()
        await writer.close()
