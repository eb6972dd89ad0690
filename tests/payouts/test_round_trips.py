"""What one payout change costs the database, seen from the driver: on PostgreSQL a creation and
each status change through the API are one statement on the pool in autocommit (no BEGIN, no
COMMIT, no second statement), the change with its event and its stored answer, and for a move
to PROCESSING on the manual rail its receipt; on SQLite each is one transaction of the writer.
A refusal under a key costs a transaction around a second call, which stores its answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from kassa.app import create_app
from kassa.config import Settings
from kassa.events.tables import events
from kassa.kit.clock import FrozenClock
from kassa.kit.db import Backend, FairPool
from kassa.payouts.connectors import Manual
from kassa.payouts.tables import payouts
from kassa.wallets.engine_sqlite import writer_of
from kassa.wallets.hotpath import HotPath
from tests.helpers import TenantKey
from tests.payouts.conftest import add_instrument, preview, ready


class Statements:
    """What the app's hot-path pool (PostgreSQL) or SQLite writer did since ``mark``."""

    def __init__(self, app: HotPath) -> None:
        self.db = app.state.db
        self.sent: list[str] = []
        self.batches = 0

    def mark(self) -> None:
        self.sent.clear()
        if self.db.backend is Backend.SQLITE:
            self.batches = writer_of(self.db).batches

    def committed(self) -> int:
        """SQLite: the writer's transactions since ``mark``."""
        return writer_of(self.db).batches - self.batches

    def log(self, record: Any) -> None:
        self.sent.append(" ".join(record.query.split()))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def app(database_url: str, clock: FrozenClock) -> AsyncIterator[HotPath]:
    settings = Settings(database_url=database_url, worker="off")
    made = create_app(settings, clock=clock)
    async with made.lifespan():
        yield made


@pytest.fixture
async def statements(app: HotPath) -> Statements:
    seen = Statements(app)
    db = app.state.db
    if db.backend is Backend.POSTGRESQL:
        # The app's pool again, with every connection reporting what it sends.
        await db.pool.close()

        async def report(conn: asyncpg.Connection) -> None:
            conn.add_query_logger(seen.log)

        async def no_reset(conn: asyncpg.Connection) -> None:
            """As the app's pool: no reset query when a connection is released."""

        db.pg_pool = FairPool(
            await asyncpg.create_pool(
                db.url.asyncpg_dsn, min_size=0, max_size=2, init=report, reset=no_reset
            )
        )
    return seen


@pytest.fixture
async def local(app: HotPath, tenant: TenantKey) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://kassa.test",
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as client:
        yield client


async def _events(app: HotPath, tenant: TenantKey) -> list[str]:
    async with app.state.db.read() as conn:
        found = await conn.execute(
            select(events.c.type, events.c.data)
            .where(events.c.tenant_id == tenant.tenant_id, events.c.type.like("payout.%"))
            .order_by(events.c.seq)
        )
        return [f"{row.type} {row.data['status']}" for row in found]


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_a_payout_from_preview_to_completed_one_statement_a_change(
    app: HotPath,
    statements: Statements,
    local: httpx.AsyncClient,
    tenant: TenantKey,
    clock: FrozenClock,
) -> None:
    setup = await ready(local)
    statements.mark()
    created = await local.post(
        "/v1/payouts",
        json={
            "wallet_id": setup.wallet["id"],
            "amount": 500,
            "payment_option": "BANK_TRANSFER",
            "instrument_id": setup.instrument["id"],
        },
        headers=_key(),
    )
    assert created.status_code == 201, created.text
    payout = created.json()
    _check(statements, "kassa_create_payout")
    for status in ("PENDING", "PROCESSING", "COMPLETED"):
        statements.mark()
        moved = await local.post(
            f"/v1/payouts/{payout['id']}/status", json={"status": status}, headers=_key()
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == status
        _check(statements, "kassa_change_payout")
        if status == "PROCESSING":  # the manual rail's receipt, kept with the move
            async with app.state.db.read() as conn:
                kept = (
                    await conn.execute(
                        select(payouts.c.connector_reference, payouts.c.next_check_at).where(
                            payouts.c.id == uuid.UUID(payout["id"])
                        )
                    )
                ).one()
            assert kept.connector_reference == f"manual_{uuid.UUID(payout['id']).hex}"
            assert kept.next_check_at == clock.now() + Manual.NEVER
    # Each change wrote its event with it, the payout as it was after the change.
    assert await _events(app, tenant) == [
        "payout.created PREVIEW",
        "payout.pending PENDING",
        "payout.processing PROCESSING",
        "payout.completed COMPLETED",
    ]


async def test_a_refusal_under_a_key_is_stored_with_a_second_call(
    statements: Statements, local: httpx.AsyncClient
) -> None:
    setup = await ready(local)
    other = await add_instrument(local, setup.wallet["customer_id"], verify=False)
    payout = await preview(local, setup, 500, instrument_id=other["id"])
    key = _key()
    statements.mark()
    refused = await local.post(
        f"/v1/payouts/{payout['id']}/status", json={"status": "PENDING"}, headers=key
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "instrument_not_verified"
    if statements.db.backend is Backend.POSTGRESQL:
        sent = statements.sent
        assert len(sent) == 5, sent
        assert "kassa_change_payout" in sent[0]
        assert sent[1].startswith("BEGIN")
        assert "kassa_change_payout" in sent[2]
        assert sent[3].startswith("INSERT INTO idempotency_keys")
        assert sent[4].startswith("COMMIT")
    else:
        assert statements.committed() == 1
    again = await local.post(
        f"/v1/payouts/{payout['id']}/status", json={"status": "PENDING"}, headers=key
    )
    assert (again.status_code, again.content) == (refused.status_code, refused.content)
    assert again.headers["idempotent-replayed"] == "true"


def _check(statements: Statements, function: str) -> None:
    if statements.db.backend is Backend.POSTGRESQL:
        sent = statements.sent
        assert len(sent) == 1, sent
        assert f"FROM {function}(" in sent[0]
    else:
        assert statements.committed() == 1
