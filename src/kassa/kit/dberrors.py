"""Database errors, translated once.

Two kinds of database error are not bugs, and this module is the one place that says what
they mean to a client:

- A unique constraint that backs a business rule, lost in a race between the rule's check and
  the insert (two requests with one new reference, say), is that rule's own ``KassaError``:
  each domain registers its constraints with :func:`register_unique`.
- A connection that is lost or refused is ``ServiceUnavailable`` (503 with ``Retry-After``).

``Database.write()`` and ``Database.read()`` pass every error through :func:`translate`; code
that talks to asyncpg directly (the hot path) does the same.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import asyncpg
from sqlalchemy.exc import DBAPIError

from kassa.kit.errors import KassaError

ErrorFactory = Callable[[], KassaError]
_UNIQUE: dict[str, ErrorFactory] = {}


def register_unique(constraint: str, factory: ErrorFactory) -> None:
    """Say which error a violation of the unique constraint (or index) ``constraint`` is."""
    _UNIQUE[constraint] = factory


@cache
def _sqlite_names() -> dict[str, str]:
    """SQLite names no constraint in its message (``UNIQUE constraint failed: t.a, t.b``):
    map that column list back to the constraint's name from the schema."""
    from sqlalchemy import Index, UniqueConstraint

    from kassa.kit.db import metadata

    names: dict[str, str] = {}
    for table in metadata.tables.values():
        uniques: list[UniqueConstraint | Index] = [
            item for item in table.constraints if isinstance(item, UniqueConstraint)
        ]
        uniques += [index for index in table.indexes if index.unique]
        for item in uniques:
            if isinstance(item.name, str):
                columns = ", ".join(f"{table.name}.{column.name}" for column in item.columns)
                names.setdefault(columns, item.name)
    return names


def unique_constraint(error: BaseException) -> str | None:
    """The name of the unique constraint ``error`` violated, or None if it is not that."""
    original = error.orig if isinstance(error, DBAPIError) else error
    cause = getattr(original, "__cause__", None)
    for candidate in (original, cause):
        if isinstance(candidate, asyncpg.UniqueViolationError):
            return candidate.constraint_name
    message = str(original)
    if "UNIQUE constraint failed: " in message:
        columns = message.split("UNIQUE constraint failed: ", 1)[1].strip()
        return _sqlite_names().get(columns)
    return None


def translate(error: BaseException) -> KassaError | None:
    """The client's error that ``error`` stands for, or None if it is a bug."""
    constraint = unique_constraint(error)
    if constraint is not None and constraint in _UNIQUE:
        return _UNIQUE[constraint]()
    return None
