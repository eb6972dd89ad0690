"""Reaching the leader through a libpq-style multi-host URL, and what Kassa answers while no
host is the writable leader (a failover in progress).

``KASSA_DATABASE_URL=postgresql://user@h1:5432,h2:5432,h3:5432/kassa?target_session_attrs=read-write``
is the form libpq and asyncpg take: try each host in turn, keep the first that accepts writes.
SQLAlchemy wants the hosts as query parameters, so ``kit.dburl`` rewrites it for SQLAlchemy and
hands it to asyncpg as it is. The shared PostgreSQL server stands in for the leader; a closed
port for a dead node; a database whose sessions are read-only for a cluster with no leader.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from kassa.kit import dberrors
from kassa.kit.clock import SystemClock
from kassa.kit.db import Database
from kassa.kit.dburl import DatabaseUrl
from kassa.kit.errors import ServiceUnavailable
from kassa.wallets.batcher import Batcher, Posting
from tests.conftest import PG_URL
from tests.helpers import create_pg_database, drop_pg_database, free_port


def with_hosts(url: str, *hosts: str, query: str = "target_session_attrs=read-write") -> str:
    """``url`` (one host) with ``hosts`` tried before its own."""
    scheme, rest = url.split("://", 1)
    userinfo, _, hostpart = rest.rpartition("@")
    host, _, database = hostpart.partition("/")
    return f"{scheme}://{userinfo}@{','.join([*hosts, host])}/{database}?{query}"


def test_a_multi_host_url_is_rewritten_for_sqlalchemy_and_kept_for_asyncpg() -> None:
    raw = "postgresql://kassa:pw@10.0.0.11:5432,10.0.0.12,pg3:6432/kassa?target_session_attrs=read-write"
    url = DatabaseUrl(raw)
    assert url.sqlalchemy_url == (
        "postgresql+asyncpg://kassa:pw@/kassa?host=10.0.0.11:5432&host=10.0.0.12:5432"
        "&host=pg3:6432&target_session_attrs=read-write"
    )
    assert url.asyncpg_dsn == raw
    assert url.redacted() == raw.replace("kassa:pw@", "kassa:***@")
    no_database = "postgresql://kassa@pg1,pg2?target_session_attrs=read-write"
    assert DatabaseUrl(no_database).sqlalchemy_url == (
        "postgresql+asyncpg://kassa@/?host=pg1:5432&host=pg2:5432&target_session_attrs=read-write"
    )
    single = "postgresql://postgres@127.0.0.1:5432/test"
    assert DatabaseUrl(single).sqlalchemy_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def test_both_pools_skip_a_dead_host_and_reach_the_leader() -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there: refused at once
    db = Database(with_hosts(PG_URL, dead))
    await db.open()
    try:
        async with db.read() as conn:
            assert await conn.scalar(text("SELECT NOT pg_is_in_recovery()")) is True
        assert await db.pool.fetchval("SELECT inet_server_port()") == int(
            PG_URL.rsplit(":", 1)[1].split("/", 1)[0]
        )
        await db.ping()
    finally:
        await db.close()


@pytest.fixture
async def read_only_database() -> AsyncIterator[str]:
    """A database every session of which is read-only, as on a replica."""
    name = f"kassa_test_{uuid.uuid4().hex[:10]}"
    url = await create_pg_database(PG_URL, name)
    connection = await asyncpg.connect(PG_URL)
    try:
        await connection.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    finally:
        await connection.close()
    yield url
    await drop_pg_database(PG_URL, name)


async def test_no_writable_host_is_a_503_on_both_paths(read_only_database: str) -> None:
    """Every host up, none the leader: not a bug (500) but ``service_unavailable``."""
    db = Database(with_hosts(read_only_database))  # every host up (one), none writable
    await db.open()
    try:
        with pytest.raises(ServiceUnavailable):
            async with db.write() as conn:
                await conn.execute(text("SELECT 1"))
        with pytest.raises(ServiceUnavailable):
            await Batcher(db.pool, slots=1).post(_posting())
    finally:
        await db.close()
    # And asyncpg's own error says so, for the code that talks to it directly.
    with pytest.raises(asyncpg.TargetServerAttributeNotMatched) as caught:
        await asyncpg.connect(with_hosts(read_only_database))
    assert isinstance(dberrors.translate(caught.value), ServiceUnavailable)
    # Another fault inside asyncpg is still a bug, not an outage.
    assert dberrors.translate(asyncpg.InternalClientError("some other fault")) is None
    # A leader answering again ends this process's outage (and leaves none to the next test).
    assert dberrors._outage.began is not None
    healthy = Database(PG_URL)
    try:
        async with healthy.read() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await healthy.close()
    assert dberrors._outage.began is None


def _posting() -> Posting:
    now = SystemClock().now()
    return Posting(
        tenant_id=uuid.uuid4(),
        wallet_id=uuid.uuid4(),
        account_kind="cash",
        sign=1,
        amount=1,
        currency=None,
        counter_kind="funding",
        transaction_id=uuid.uuid4(),
        transaction_kind="deposit",
        reference=None,
        description=None,
        metadata={},
        now=now,
        refuse_frozen=False,
        event_id=uuid.uuid4(),
        event_type="wallet.credited",
        event_data="{}",
    )
