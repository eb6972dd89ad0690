import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from kassa.kit.db import Database
from kassa.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await db.engine.dispose()


asyncio.run(_migrate(config.attributes["database_url"]))
