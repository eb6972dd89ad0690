"""Alembic migrations, run by ``kassa migrate`` (and on first start of the SQLite default)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from kassa.kit.db import Database

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; safe to run again (it does nothing at head)."""
    command.upgrade(alembic_config(database_url), revision)


async def current_revision(db: Database) -> str | None:
    def _read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_read)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def sql_source(name: str) -> str:
    """The text of a SQL function's one source file, ``sql/<name>.sql``."""
    return (HERE / "sql" / f"{name}.sql").read_text(encoding="utf-8")
