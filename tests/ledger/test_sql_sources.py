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


async def test_live_functions_are_their_source_files_down_and_up() -> None:
    """At head each function is its source file; down to 0024, ``kassa_post_wallets`` is the
    function migration 0016 made (its frozen copy), and up again it is the source file."""
    name = f"kassa_test_{uuid.uuid4().hex[:10]}"
    url = await create_pg_database(PG_URL, name)
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])

        async def live(function: str) -> str | None:
            found = await conn.fetchval("SELECT prosrc FROM pg_proc WHERE proname = $1", function)
            return None if found is None else str(found)

        try:
            sources = {f: _body(migrations.sql_source(f)) for f in FUNCTIONS}
            for function in FUNCTIONS:
                assert await live(function) == sources[function], function
            config = migrations.alembic_config(url)
            await asyncio.to_thread(command.downgrade, config, "0024")
            before = _body(migrations.sql_source("0016_kassa_post_wallets"))
            assert before != sources["kassa_post_wallets"]
            assert await live("kassa_post_wallets") == before
            await asyncio.to_thread(migrations.upgrade, url)
            for function in FUNCTIONS:
                assert await live(function) == sources[function], function
        finally:
            await conn.close()
    finally:
        await drop_pg_database(PG_URL, name)
