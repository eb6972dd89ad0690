"""``kit.dberrors``: a database too busy to take a statement is a 503 with ``Retry-After``,
never a 500, and no outage; a bug stays a bug. Real SQLite locks, real SQLAlchemy pools."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool

from kassa.kit import dberrors
from kassa.kit.errors import ServiceUnavailable


def _locked(path: Path) -> sqlite3.Connection:
    """A connection that holds the database's write lock until it is closed."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_sqlites_lock_held_past_the_busy_timeout_is_a_503(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    holder = _locked(path)
    try:
        waiting = sqlite3.connect(path, isolation_level=None, timeout=0)
        with pytest.raises(sqlite3.OperationalError) as caught:
            waiting.execute("BEGIN IMMEDIATE")
        waiting.close()
    finally:
        holder.close()
    refused = dberrors.translate(caught.value)
    assert isinstance(refused, ServiceUnavailable)
    assert (refused.status, refused.retry_after) == (503, 1)
    assert "busy" in refused.detail
    assert dberrors._outage.began is None  # busy is not an outage


def test_the_same_through_sqlalchemy(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    holder = _locked(path)
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with engine.connect() as conn, pytest.raises(OperationalError) as caught:
            conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
        holder.close()
    assert isinstance(dberrors.translate(caught.value), ServiceUnavailable)


def test_no_pooled_connection_free_in_time_is_a_503(tmp_path: Path) -> None:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}",
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.01,
    )
    try:
        with engine.connect(), pytest.raises(PoolTimeout) as caught, engine.connect():
            pass
    finally:
        engine.dispose()
    assert isinstance(dberrors.translate(caught.value), ServiceUnavailable)


def test_other_sqlite_errors_stay_bugs(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "bug.db")
    with pytest.raises(sqlite3.OperationalError) as caught:
        conn.execute("SELECT * FROM no_such_table")
    conn.close()
    assert dberrors.translate(caught.value) is None
    assert not dberrors.busy(caught.value)
