"""Fixtures: every database test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from KASSA_TEST_POSTGRES_URL (default: the local server's ``test`` database);
the suite creates its own throwaway database there and fails, never skips, if it cannot.
Isolation between tests is by tenant: each test gets a tenant of its own, and every query in
Kassa is scoped by tenant.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from kassa import migrations
from kassa.kit.db import Database
from tests.helpers import (
    KassaServer,
    TenantKey,
    create_pg_database,
    drop_pg_database,
    make_tenant,
    start_server,
)

PG_URL = os.environ.get("KASSA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _fresh_database(backend: str, folder: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'kassa.db'}", None
    name = f"kassa_test_{uuid.uuid4().hex[:10]}"
    url = await create_pg_database(PG_URL, name)
    return url, name


@pytest.fixture(scope="session")
async def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    url, pg_name = await _fresh_database(backend, tmp_path_factory.mktemp(backend))
    await asyncio.to_thread(migrations.upgrade, url)
    yield url
    if pg_name is not None:
        await drop_pg_database(PG_URL, pg_name)


@pytest.fixture
async def fresh_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of its own, for tests that break things on purpose."""
    url, pg_name = await _fresh_database(backend, tmp_path)
    await asyncio.to_thread(migrations.upgrade, url)
    yield url
    if pg_name is not None:
        await drop_pg_database(PG_URL, pg_name)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.open()
    yield database
    await database.close()


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KassaServer]:
    with start_server(database_url, tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture
async def tenant(db: Database) -> TenantKey:
    return await make_tenant(db)


@pytest.fixture
async def api(server: KassaServer, tenant: TenantKey) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {tenant.key}"},
        timeout=60,
    ) as client:
        yield client
