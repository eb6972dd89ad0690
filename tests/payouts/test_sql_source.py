"""The live ``kassa_create_payout``, ``kassa_change_payout`` and ``kassa_payout_json`` are their
source files, and migrations 0026, 0024 and 0015 go down and up again cleanly (down past each,
the functions are the frozen copies of the migration before, one of each name). PostgreSQL
only: SQLite has no stored functions (its engine is ``payouts.lifecycle`` in Python)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from alembic import command

from kassa import migrations
from tests.conftest import PG_URL
from tests.helpers import create_pg_database, drop_pg_database


def _body(source: str) -> str:
    _, marker, rest = source.partition("AS $function$")
    assert marker, "the source must quote its body with $function$"
    body, marker, _ = rest.partition("$function$")
    assert marker
    return body


FUNCTIONS = ["kassa_create_payout", "kassa_change_payout", "kassa_payout_json"]


async def _live(url: str) -> list[str | None]:
    conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
    try:
        return [
            await conn.fetchval(
                "SELECT string_agg(prosrc, '') FROM pg_proc WHERE proname = $1", name
            )
            for name in FUNCTIONS
        ]
    finally:
        await conn.close()


async def test_the_live_function_is_its_source_file_down_and_up() -> None:
    name = f"kassa_test_{uuid.uuid4().hex[:10]}"
    url = await create_pg_database(PG_URL, name)
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        sources = [_body(migrations.sql_source(name)) for name in FUNCTIONS]
        assert await _live(url) == sources
        config = migrations.alembic_config(url)
        frozen = {
            name: _body(migrations.sql_source(name))
            for name in (
                "0017_kassa_create_payout",
                "0024_kassa_change_payout",
                "0015_kassa_change_payout",
            )
        }
        assert all(body not in sources for body in frozen.values())
        await asyncio.to_thread(command.downgrade, config, "0025")
        assert await _live(url) == [
            frozen["0017_kassa_create_payout"],
            frozen["0024_kassa_change_payout"],
            None,
        ]
        await asyncio.to_thread(command.downgrade, config, "0023")
        assert await _live(url) == [
            frozen["0017_kassa_create_payout"],
            frozen["0015_kassa_change_payout"],
            None,
        ]
        await asyncio.to_thread(command.downgrade, config, "0014")
        assert await _live(url) == [None, None, None]
        await asyncio.to_thread(migrations.upgrade, url)
        assert await _live(url) == sources
    finally:
        await drop_pg_database(PG_URL, name)
