"""Database errors, translated once.

Two kinds of database error are not bugs, and this module is the one place that says what
they mean to a client:

- A unique constraint that backs a business rule, lost in a race between the rule's check and
  the insert (two requests with one new reference, say), is that rule's own ``KassaError``:
  each domain registers its constraints with :func:`register_unique`.
- A connection that is lost or refused, or that finds no writable leader among the hosts of a
  multi-host URL (a failover in progress), is ``ServiceUnavailable`` (503 with ``Retry-After``):
  nothing about the request is wrong, and its client may send it again. Only errors that can
  mean nothing else count (see :func:`connection_lost`): a bug never becomes a 503.
- A database too busy to take the request (SQLite's write lock still held when its busy
  timeout ran out, or no pooled connection free in time) is a 503 with ``Retry-After`` too
  (see :func:`busy`): the statement never ran, so nothing was done. It is no outage and is not
  logged as one.

``Database.write()`` and ``Database.read()`` pass every error through :func:`translate`; code
that talks to asyncpg directly (the hot path's group commit) does the same.

An outage is logged by this module, twice: ``database_unavailable`` when the first request is
refused, and ``database_available_again`` (with how many were refused, and for how long) when
the database next answers; never once per request, and never with a traceback.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from types import TracebackType
from typing import NoReturn

import asyncpg
import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from kassa.kit.errors import KassaError, ServiceUnavailable

ErrorFactory = Callable[[], KassaError]
_UNIQUE: dict[str, ErrorFactory] = {}


def register_unique(constraint: str, factory: ErrorFactory) -> None:
    """Say which error a violation of the unique constraint (or index) ``constraint`` is."""
    _UNIQUE[constraint] = factory


def _sqlite_names() -> dict[str, str]:
    """SQLite names no constraint in its message (``UNIQUE constraint failed: t.a, t.b``):
    map that column list back to the constraint's name from the schema (made on each call:
    errors are rare, and every table is known by the time one is written)."""
    from sqlalchemy import Index, PrimaryKeyConstraint, UniqueConstraint

    from kassa.kit.metadata import metadata

    names: dict[str, str] = {}
    for table in metadata.tables.values():
        uniques: list[UniqueConstraint | PrimaryKeyConstraint | Index] = [
            item
            for item in table.constraints
            if isinstance(item, UniqueConstraint | PrimaryKeyConstraint)
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
    """The client's error that ``error`` stands for, or None if it is a bug. A lost connection
    is also counted as one request refused in the current outage (see the module's text)."""
    constraint = unique_constraint(error)
    if constraint is not None and constraint in _UNIQUE:
        return _UNIQUE[constraint]()
    if connection_lost(error):
        _outage.refused(error)
        unavailable = ServiceUnavailable()
        unavailable.__cause__ = error
        return unavailable
    if busy(error):
        refused = ServiceUnavailable("the database is busy: nothing was done; try again shortly")
        refused.__cause__ = error
        return refused
    return None


# SQLSTATEs that say the connection is gone or was refused: class 08 (connection exception),
# the server shutting down, crashing, starting up, or ending an idle session (57P01, 57P02,
# 57P03, 57P05), and too many connections (53300). 57014 (a cancelled query) and 57P04 (the
# database was dropped) are not among them: trying again would not help.
_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P05", "53300"})

_IDLE_CONNECTION_ENDED = re.compile(
    r'protocol is in the "failed" state|another operation \(2\) is in progress'
)

# SQLite's primary result codes for a database file it cannot read, write or open, and for a
# lock another connection holds.
_SQLITE_IOERR = 10
_SQLITE_CANTOPEN = 14
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


def busy(error: BaseException) -> bool:
    """Whether ``error`` says the database could not take the statement yet: SQLite's lock
    held by another connection past the busy timeout, or SQLAlchemy's pool without a free
    connection in time. Either way the statement did not run."""
    if isinstance(error, PoolTimeout):
        return True
    original = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(original, sqlite3.OperationalError):
        code = getattr(original, "sqlite_errorcode", None)
        return isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return False


def connection_lost(error: BaseException) -> bool:
    """Whether ``error`` means the database could not be reached: a connection lost, refused
    or timed out, or a server shutting down or starting up. Whether a statement sent just
    before committed is then unknown; a client retries with its reference or Idempotency-Key.

    Precise on purpose: an ``OSError`` counts only when it was raised inside the driver (a
    refused or reset socket, a connect timeout), never one from Kassa's own code, and asyncpg
    errors count by SQLSTATE, so a bug or a refused statement stays what it is."""
    if isinstance(error, DBAPIError):
        original = error.orig
        if isinstance(original, sqlite3.Error):
            return _sqlite_unreachable(original)
        if error.connection_invalidated:  # SQLAlchemy's dialect recognised a disconnect
            return True
        return original is not None and (_driver_lost(original) or _driver_lost(original.__cause__))
    if isinstance(error, sqlite3.Error):
        return _sqlite_unreachable(error)
    return _driver_lost(error)


def _driver_lost(error: BaseException | None) -> bool:
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = str(error.sqlstate or "")
        return sqlstate.startswith("08") or sqlstate in _LOST_SQLSTATES
    if isinstance(error, asyncpg.InterfaceError):
        # asyncpg's word for using a connection that the server or network closed.
        return "connection is closed" in str(error)
    if isinstance(error, asyncpg.TargetServerAttributeNotMatched):
        # A multi-host URL with target_session_attrs=read-write found every host up but none
        # of them the writable leader: a failover in progress. Nothing was sent.
        return True
    if type(error) is asyncpg.InternalClientError:
        # A connection the server ended while it was idle (PostgreSQL shutting down sends a
        # FATAL error, then closes), taken from the pool before asyncpg saw the socket close:
        # the unexpected error left its protocol "failed" or discarding input until a sync
        # (state 2) that never comes. Nothing was sent. (Another state in progress would be
        # Kassa using one connection twice at once: a bug.)
        return _IDLE_CONNECTION_ENDED.search(str(error)) is not None
    if isinstance(error, OSError):  # refused, reset, unreachable, a connect timeout
        return _raised_in_driver(error.__traceback__)
    return False


def _raised_in_driver(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        if module == "asyncpg" or module.startswith("asyncpg."):
            return True
        traceback = traceback.tb_next
    return False


def _sqlite_unreachable(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_IOERR, _SQLITE_CANTOPEN)


def describe(error: BaseException) -> str:
    """``error`` for a log line: its class, the driver's error beneath it and its SQLSTATE,
    never a message, which for a statement's error may quote the values it was given (a
    reference, a description)."""
    names = [type(error).__name__]
    driver: BaseException | None = error.orig if isinstance(error, DBAPIError) else None
    if driver is not None and not isinstance(driver, sqlite3.Error):
        driver = driver.__cause__ or driver  # the adapter's error wraps asyncpg's own
    if driver is not None:
        names.append(type(driver).__name__)
    sqlstate = getattr(driver if driver is not None else error, "sqlstate", None)
    return ": ".join(names) + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


def database_answered(sent_at: float) -> None:
    """Say that the database answered a statement sent at ``sent_at`` (``time.monotonic()``):
    that ends an outage, if the statement was sent after the last request the outage refused.
    (One sent earlier says nothing of the database now: while PostgreSQL shuts down, a
    statement already in flight may still succeed after another was refused.) Called after
    every unit of work, so it costs one attribute check."""
    if _outage.began is not None and sent_at > _outage.last_refused:
        _outage.ended()


class _Outage:
    """This process's current outage: when its first and last requests were refused, and how
    many were."""

    log = structlog.get_logger("kassa.db")

    def __init__(self) -> None:
        self.began: float | None = None
        self.last_refused = 0.0
        self.refused_requests = 0

    def refused(self, error: BaseException) -> None:
        self.last_refused = time.monotonic()
        if self.began is None:
            self.began = self.last_refused
            self.refused_requests = 0
            self.log.warning("database_unavailable", error=describe(error))
        self.refused_requests += 1

    def ended(self) -> None:
        assert self.began is not None
        down_seconds = round(time.monotonic() - self.began, 3)
        self.log.warning(
            "database_available_again", refused=self.refused_requests, down_seconds=down_seconds
        )
        self.began = None
        self.refused_requests = 0


_outage = _Outage()


def raise_translated(error: Exception) -> NoReturn:
    """Raise the client's error ``error`` stands for, or ``error`` itself if it is a bug."""
    translated = translate(error)
    if translated is None:
        raise error
    raise translated from error


ERROR_CHARS = 200


def error_summary(step: str, error: BaseException | str) -> str:
    """``step: kind`` of a failure inside Kassa, for a worker's log and its stuck list: the
    error's class, a ``KassaError``'s code, a database error's driver class or unique
    constraint; never its message, which may quote values."""
    if isinstance(error, str):
        kind = error
    elif isinstance(error, KassaError):
        kind = f"{type(error).__name__} ({error.code})"
    elif isinstance(error, DBAPIError):
        kind = f"{type(error).__name__} ({unique_constraint(error) or type(error.orig).__name__})"
    else:
        package = type(error).__module__.split(".")[0]
        name = type(error).__qualname__
        kind = name if package == "builtins" else f"{package}.{name}"
    return f"{step}: {kind}"[:ERROR_CHARS]
