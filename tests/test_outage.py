"""A database outage: every request answers 503 with Retry-After, the log says so once, and
service resumes by itself with nothing acknowledged lost.

PostgreSQL only: SQLite is a file in the process, with no server to lose. The outage tests stop
and start a real PostgreSQL server of their own (``initdb`` into a temporary folder, on a free
port), never the shared one the rest of the suite uses, and always leave it stopped and removed.
The last test loses one connection of its own (``pg_terminate_backend``) on the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from kassa import migrations
from kassa.kit.clock import SystemClock
from kassa.kit.db import Database
from kassa.kit.errors import ServiceUnavailable
from kassa.ledger.tables import journal_transactions
from kassa.wallets import service
from kassa.wallets.batcher import Batcher, Posting
from kassa.wallets.schemas import NewWallet
from tests.conftest import PG_URL
from tests.helpers import (
    KassaServer,
    TenantKey,
    create_pg_database,
    drop_pg_database,
    free_port,
    make_tenant,
    start_server,
    verify_tenant,
)

PG_BIN = Path(os.environ.get("KASSA_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OPENING_BALANCE = 1_000_000_000


class PrivatePostgres:
    """A throwaway PostgreSQL server: a data folder of its own, a free port, trust auth.

    As root (the test container) its commands run as the ``postgres`` user, which owns the
    folder; as anyone else they run as that user."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="kassa-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{program} {args[0]} failed:\n{result.stdout}{result.stderr}")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "postgres.log")
        self._run("pg_ctl", action, "-D", str(self.data), "-l", log, "-w", "-t", "60", *extra,
                  "-o", options)  # fmt: skip

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()


@dataclass
class Setup:
    server: KassaServer
    tenant: TenantKey
    wallet_id: str


@pytest.fixture
async def kassa_on_private_pg(private_pg: PrivatePostgres, tmp_path: Path) -> AsyncIterator[Setup]:
    """``kassa serve`` (one worker, JSON log) on a migrated database of the private server,
    with a tenant and a well-funded wallet."""
    url = await create_pg_database(private_pg.url("postgres"), "kassa")
    await asyncio.to_thread(migrations.upgrade, url)
    db = Database(url)
    try:
        tenant = await make_tenant(db)
    finally:
        await db.close()
    with start_server(url, tmp_path, workers=1, KASSA_LOG_FORMAT="json") as server:
        async with client_for(server, tenant) as api:
            created = await api.post(
                "/v1/wallets", json={"customer_id": "outage", "currency": tenant.currency}
            )
            assert created.status_code == 201, created.text
            wallet_id = created.json()["id"]
            funded = await api.post(
                f"/v1/wallets/{wallet_id}/deposits", json={"amount": OPENING_BALANCE}
            )
            assert funded.status_code == 201, funded.text
        yield Setup(server, tenant, wallet_id)


def client_for(server: KassaServer, tenant: TenantKey) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {tenant.key}"},
        timeout=30,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
    )


@dataclass(frozen=True)
class Answer:
    path: str
    sent_at: float
    received_at: float
    status: int | None  # None: no HTTP answer at all
    retry_after: str | None = None
    content_type: str | None = None
    code: str | None = None
    transport_error: str | None = None
    body: dict[str, Any] | None = None  # a deposit's or withdrawal's request body
    key: str | None = None  # its Idempotency-Key, if it had one


@dataclass
class Traffic:
    """Deposits and withdrawals with references (and reads, and /readyz) sent without pause
    over keep-alive connections until stopped; every answer is kept."""

    api: httpx.AsyncClient
    wallet_id: str
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None
    ) -> None:
        sent_at = time.monotonic()
        headers = {"Idempotency-Key": key} if key is not None else None
        try:
            response = await self.api.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:
            answer = Answer(path, sent_at, time.monotonic(), None, transport_error=repr(error))
        else:
            is_problem = response.headers.get("content-type") == "application/problem+json"
            answer = Answer(
                path,
                sent_at,
                time.monotonic(),
                response.status_code,
                response.headers.get("retry-after"),
                response.headers.get("content-type"),
                response.json().get("code") if is_problem else None,
                body=body,
                key=key,
            )
        self.answers.append(answer)

    async def _move_money(self, kind: str) -> None:
        keyed = False
        while not self.stop.is_set():
            reference = f"outage-{uuid.uuid4().hex}"
            body = {"amount": 1, "reference": reference, "description": f"private {reference}"}
            key = f"key-{reference}" if keyed else None  # every other one has a key too
            await self._send("POST", f"/v1/wallets/{self.wallet_id}/{kind}", body, key)
            keyed = not keyed

    async def _read(self) -> None:
        while not self.stop.is_set():
            await self._send("GET", f"/v1/wallets/{self.wallet_id}")
            await self._send("GET", "/readyz")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Traffic]:
        senders = [self._move_money(kind) for kind in ("deposits", "withdrawals") * 2]
        tasks = [asyncio.create_task(job) for job in (*senders, self._read())]
        try:
            yield self
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)

    def money(self) -> list[Answer]:
        return [a for a in self.answers if a.body is not None]


async def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        await asyncio.sleep(0.02)


def ok_sent_after(traffic: Traffic, moment: float) -> Callable[[], bool]:
    return lambda: any(
        a.sent_at >= moment and a.status is not None and a.status < 300 for a in traffic.answers
    )


def assert_every_answer_is_2xx_or_503(traffic: Traffic) -> None:
    assert [a for a in traffic.answers if a.status is None] == [], "no request may lose its answer"
    statuses = Counter(a.status for a in traffic.answers)
    assert set(statuses) <= {200, 201, 503}, statuses
    for answer in traffic.answers:
        if answer.status == 503 and answer.path != "/readyz":
            assert answer.retry_after == str(ServiceUnavailable.retry_after), answer
            assert answer.content_type == "application/problem+json", answer
            assert answer.code == "service_unavailable", answer


def log_events(server: KassaServer) -> tuple[str, list[dict[str, Any]]]:
    text = server.log_path.read_text()
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return text, events


def assert_log_is_quiet(server: KassaServer, traffic: Traffic) -> list[dict[str, Any]]:
    """No traceback and no request's values in the log; the outage lines, paired."""
    text, events = log_events(server)
    assert "Traceback" not in text, text[-5000:]
    assert "unhandled_error" not in text, text[-5000:]
    for answer in traffic.money():
        assert answer.body is not None
        assert answer.body["reference"] not in text, "a request's values reached the log"
    began = [e for e in events if e["event"] == "database_unavailable"]
    ended = [e for e in events if e["event"] == "database_available_again"]
    assert len(began) == len(ended) <= 1, events
    refused = sum(1 for a in traffic.answers if a.status == 503 and a.path != "/readyz")
    assert sum(e["refused"] for e in ended) == refused
    assert len(text.splitlines()) < 50, "the outage flooded the log"
    return ended


async def assert_nothing_acknowledged_is_lost(setup: Setup, traffic: Traffic) -> None:
    """Each refused request, sent again with its reference (and key), is done now or was done
    then; after that every reference is in the ledger exactly once, and the ledger verifies."""
    async with client_for(setup.server, setup.tenant) as api:
        for answer in traffic.money():
            if answer.status == 503:
                headers = {"Idempotency-Key": answer.key} if answer.key is not None else None
                again = await api.post(answer.path, json=answer.body, headers=headers)
                assert again.status_code in (201, 409), again.text
                if again.status_code == 409:
                    assert again.json()["code"] == "duplicate_reference", again.text
    db = Database(setup.server.database_url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                select(journal_transactions.c.reference, func.count())
                .where(journal_transactions.c.tenant_id == setup.tenant.tenant_id)
                .where(journal_transactions.c.reference.is_not(None))
                .group_by(journal_transactions.c.reference)
            )
            in_ledger = {reference: count for reference, count in rows}
    finally:
        await db.close()
    sent = {a.body["reference"] for a in traffic.money() if a.body is not None}
    assert in_ledger == dict.fromkeys(sent, 1)
    await verify_tenant(setup.server, setup.tenant)
    async with client_for(setup.server, setup.tenant) as api:
        wallet = (await api.get(f"/v1/wallets/{setup.wallet_id}")).json()
    deposits = sum(1 for a in traffic.money() if a.path.endswith("/deposits"))
    assert wallet["balance"] == OPENING_BALANCE + deposits - (len(traffic.money()) - deposits)


async def test_a_stopped_database_answers_503_and_service_resumes_by_itself(
    kassa_on_private_pg: Setup, private_pg: PrivatePostgres
) -> None:
    setup = kassa_on_private_pg
    async with client_for(setup.server, setup.tenant) as api:
        traffic = Traffic(api, setup.wallet_id)
        async with traffic.running():
            await wait_until(ok_sent_after(traffic, 0), "deposits before the outage")
            await asyncio.to_thread(private_pg.stop)
            down_at = time.monotonic()

            def while_down() -> list[Answer]:
                return [a for a in traffic.answers if a.sent_at >= down_at]

            # Keep sending into the outage for a couple of seconds (and at least 20 requests).
            await wait_until(
                lambda: time.monotonic() - down_at >= 2 and len(while_down()) >= 20,
                "requests during the outage",
            )
            up_at = time.monotonic()
            await asyncio.to_thread(private_pg.start)
            started_at = time.monotonic()
            await wait_until(ok_sent_after(traffic, started_at), "a 2xx once PostgreSQL is back")

    outage = [a for a in traffic.answers if a.sent_at >= down_at and a.received_at <= up_at]
    assert len(outage) >= 20
    assert {a.status for a in outage} == {503}, Counter(a.status for a in outage)
    assert any(a.path == "/readyz" for a in outage)
    assert_every_answer_is_2xx_or_503(traffic)
    ended = assert_log_is_quiet(setup.server, traffic)
    assert len(ended) == 1, "one outage, logged once when it began and once when it ended"
    assert ended[0]["down_seconds"] >= 2
    await assert_nothing_acknowledged_is_lost(setup, traffic)


async def test_a_restarted_database_answers_503_meanwhile_and_loses_nothing(
    kassa_on_private_pg: Setup, private_pg: PrivatePostgres
) -> None:
    setup = kassa_on_private_pg
    async with client_for(setup.server, setup.tenant) as api:
        traffic = Traffic(api, setup.wallet_id)
        async with traffic.running():
            await wait_until(ok_sent_after(traffic, 0), "deposits before the restart")
            await asyncio.to_thread(private_pg.restart)
            restarted_at = time.monotonic()
            await wait_until(ok_sent_after(traffic, restarted_at), "a 2xx after the restart")

    assert_every_answer_is_2xx_or_503(traffic)
    assert_log_is_quiet(setup.server, traffic)
    await assert_nothing_acknowledged_is_lost(setup, traffic)


# A batch whose connection is lost after it was sent: the shared server suffices (the test
# ends only its own connection), in a database of this module's own.


@pytest.fixture(scope="module")
async def pg_url() -> AsyncIterator[str]:
    name = f"kassa_test_{uuid.uuid4().hex[:10]}"
    url = await create_pg_database(PG_URL, name)
    await asyncio.to_thread(migrations.upgrade, url)
    yield url
    await drop_pg_database(PG_URL, name)


async def test_a_batch_lost_in_flight_is_503_for_each_item_and_never_sent_again(
    pg_url: str,
) -> None:
    db = Database(pg_url, pool_size=1)
    await db.open()
    locker = await asyncpg.connect(pg_url)  # holds the lock
    watcher = await asyncpg.connect(pg_url)  # sees pg_stat_activity afresh each time
    try:
        tenant = await make_tenant(db)
        async with db.write() as conn:
            wallet = await service.create_wallet(
                conn,
                tenant.tenant_id,
                NewWallet(customer_id="in-flight", currency=tenant.currency),
                SystemClock().now(),
            )
        batcher = Batcher(db.pool, slots=1)

        def deposit(amount: int) -> Posting:
            return Posting(
                tenant_id=tenant.tenant_id,
                wallet_id=wallet.id,
                account_kind="cash",
                sign=1,
                amount=amount,
                currency=None,
                counter_kind="funding",
                transaction_id=uuid.uuid4(),
                transaction_kind="deposit",
                reference=None,
                description=None,
                metadata={},
                now=SystemClock().now(),
                refuse_frozen=False,
                event_id=uuid.uuid4(),
                event_type="wallet.credited",
                event_data="{}",
            )

        async def blocked_statement(other_than: int | None = None) -> int:
            """The backend of the batch statement waiting for the wallet's row lock."""
            deadline = time.monotonic() + 30
            while True:
                pid = await watcher.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%kassa_post_wallets%' AND pid IS DISTINCT FROM $1",
                    other_than,
                )
                if pid is not None:
                    return int(pid)
                assert time.monotonic() < deadline, "the batch statement never blocked"
                await asyncio.sleep(0.02)

        # Hold the wallet's account row: the first deposit goes alone and waits for it; the next
        # two wait for the slot and then go together as one statement, which waits too.
        lock = locker.transaction()
        await lock.start()
        await locker.execute("SELECT 1 FROM accounts WHERE wallet_id = $1 FOR UPDATE", wallet.id)
        first = asyncio.create_task(batcher.post(deposit(1)))
        alone = await blocked_statement()
        together = [asyncio.create_task(batcher.post(deposit(amount))) for amount in (2, 3)]
        await asyncio.sleep(0)  # both join the queue behind the first
        await watcher.execute("SELECT pg_terminate_backend($1)", alone)
        batch = await blocked_statement(other_than=alone)
        await watcher.execute("SELECT pg_terminate_backend($1)", batch)

        # Whether a lost statement committed is unknown: each of its items is a 503 (its client
        # may retry with its reference), and none is ever posted again behind its back.
        results = await asyncio.wait_for(
            asyncio.gather(first, *together, return_exceptions=True), timeout=30
        )
        assert [type(result) for result in results] == [ServiceUnavailable] * 3, results
        assert batcher.statements == 2
        await lock.rollback()
        posted = await watcher.fetchval(
            "SELECT count(*) FROM journal_transactions WHERE tenant_id = $1", tenant.tenant_id
        )
        assert posted == 0
    finally:
        for connection in (locker, watcher):
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                await connection.close()
        await db.close()
