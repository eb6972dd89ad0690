"""Each PostgreSQL function Kassa runs has one source file, and the live function is that file:
a migrated database's ``prosrc`` (the body PostgreSQL stores verbatim) equals the body in
``kassa/migrations/sql/<name>.sql``. PostgreSQL only: SQLite has no stored functions."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from alembic import command

from kassa import migrations
from tests.conftest import PG_URL
from tests.helpers import create_pg_database, drop_pg_database

FUNCTIONS = ["kassa_post_wallets"]


def _body(source: str) -> str:
    _, marker, rest = source.partition("AS $function$")
    assert marker, "the source must quote its body with $function$"
    body, marker, _ = rest.partition("$function$")
    assert marker
    return body


async def test_live_functions_are_their_source_files() -> None:
    name = f"kassa_test_{uuid.uuid4().hex[:10]}"
    url = await create_pg_database(PG_URL, name)
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
        try:
            for function in FUNCTIONS:
                live = await conn.fetchval(
                    "SELECT prosrc FROM pg_proc WHERE proname = $1", function
                )
                assert live == _body(migrations.sql_source(function)), function
        finally:
            await conn.close()
    finally:
        await drop_pg_database(PG_URL, name)


async def test_post_wallets_down_to_0024_is_0016s_function_and_up_again() -> None:
    name = f"kassa_test_{uuid.uuid4().hex[:10]}"
    url = await create_pg_database(PG_URL, name)
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
        try:

            async def live() -> str:
                return str(
                    await conn.fetchval(
                        "SELECT prosrc FROM pg_proc WHERE proname = 'kassa_post_wallets'"
                    )
                )

            source = _body(migrations.sql_source("kassa_post_wallets"))
            assert await live() == source
            config = migrations.alembic_config(url)
            await asyncio.to_thread(command.downgrade, config, "0024")
            assert await live() == _body(migrations.sql_source("0016_kassa_post_wallets"))
            assert await live() != source
            await asyncio.to_thread(migrations.upgrade, url)
            assert await live() == source
        finally:
            await conn.close()
    finally:
        await drop_pg_database(PG_URL, name)
