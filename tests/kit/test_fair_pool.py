"""The PostgreSQL pool hands connections out in the order they were asked for (``FairPool``).

A real server, one connection: three requests wait for it; then, as it goes back, a fourth
request arrives in the same pass of the event loop, ahead of the first waiter's wake-up (the
pool's ``reset`` hook, which asyncpg awaits just before it puts the connection back, starts
it). asyncpg's own pool gives the connection to the newcomer (the second test shows that it
still does: if a release of asyncpg changes that, ``FairPool`` can go); Kassa's must give it to
the first waiter. Breaking ``FairPool`` so that it asks asyncpg first and takes its turn
afterwards makes the first test fail: tried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from kassa.kit.db import FairPool
from tests.conftest import PG_URL


class Newcomer:
    """Starts a request from the pool's ``reset`` hook, once armed."""

    def __init__(self) -> None:
        self.start: Callable[[], object] | None = None

    async def reset(self, conn: asyncpg.Connection) -> None:
        if self.start is not None:
            self.start()
            self.start = None


@pytest.fixture
def newcomer() -> Newcomer:
    return Newcomer()


@pytest.fixture
async def one_connection(newcomer: Newcomer) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(PG_URL, min_size=0, max_size=1, reset=newcomer.reset)
    try:
        yield pool
    finally:
        await pool.close()


async def _order_served(pool: Any, newcomer: Newcomer) -> list[str]:
    served: list[str] = []

    async def use(name: str) -> None:
        async with pool.acquire() as conn:
            served.append(name)
            await conn.fetchval("SELECT 1")

    first = pool.acquire()
    await first.__aenter__()
    waiting = [asyncio.create_task(use(name)) for name in ("a", "b", "c")]
    await asyncio.sleep(0)  # one pass of the loop: each of them now waits for the connection
    assert served == []
    newcomer.start = lambda: waiting.append(asyncio.create_task(use("newcomer")))
    await first.__aexit__(None, None, None)
    await asyncio.gather(*waiting)
    return served


async def test_connections_go_to_the_waiters_in_the_order_they_asked(
    one_connection: asyncpg.Pool, newcomer: Newcomer
) -> None:
    served = await _order_served(FairPool(one_connection), newcomer)
    assert served == ["a", "b", "c", "newcomer"]


async def test_asyncpg_alone_lets_a_newcomer_overtake_the_waiters(
    one_connection: asyncpg.Pool, newcomer: Newcomer
) -> None:
    served = await _order_served(one_connection, newcomer)
    assert served[0] == "newcomer"
    assert sorted(served) == ["a", "b", "c", "newcomer"]
