"""Errors reach clients as answers and the log as one line each, with no request's values:
a bug is a 500 on a connection that keeps serving, a database out of reach is a 503 with
``Retry-After``, and what cannot reach the database is told apart from what can."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import insert, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit import dberrors
from kassa.kit.clock import SystemClock
from kassa.kit.db import Database
from kassa.kit.errors import InternalError, KassaError, NotFound, ServiceUnavailable
from kassa.kit.logging import configure_logging, format_exc_info_safely, format_exception
from kassa.kit.problem import BUG_DETAIL, Rendered, register_error_renderer
from kassa.wallets.schemas import WalletOut
from kassa.wallets.tables import wallets
from tests.helpers import KassaServer, TenantKey, create_wallet, free_port

# A bug through a real route, on the real server: a wallet whose stored metadata is not
# what Kassa writes (a list where a string belongs) fails to render.


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request and its answer on an open (keep-alive) connection."""
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    status_line, *lines = head.decode("latin-1").strip().split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 30)
    return int(status_line.split()[1]), headers, body


def get(path: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: kassa.test\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()


async def test_a_bug_answers_500_and_the_same_connection_serves_the_next_request(
    server: KassaServer, db: Database, api: httpx.AsyncClient, tenant: TenantKey
) -> None:
    wallet = await create_wallet(api)
    secret = f"private-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(
            update(wallets)
            .where(wallets.c.id == uuid.UUID(wallet["id"]))
            .values(metadata={"note": [secret]})
        )
    logged_before = server.log_path.stat().st_size
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        broken = get(f"/v1/wallets/{wallet['id']}", tenant.key)
        status, headers, body = await exchange(reader, writer, broken)
        assert status == 500
        assert headers["content-type"] == "application/problem+json"
        problem = orjson.loads(body)
        assert (problem["code"], problem["detail"]) == ("internal_error", BUG_DETAIL)
        # The connection is still open and serves the next request, and the one after.
        status, _, body = await exchange(reader, writer, get("/healthz", tenant.key))
        assert (status, body) == (200, b'{"status":"ok"}')
        status, _, _ = await exchange(reader, writer, broken)
        assert status == 500
    finally:
        writer.close()

    with server.log_path.open("rb") as log_file:
        log_file.seek(logged_before)
        logged = log_file.read().decode()
    assert logged.count("unhandled_error") == 2, logged  # each bug once, with its traceback
    assert logged.count("Traceback (most recent call last)") == 2, logged
    assert "validation error(s) for WalletOut: metadata.note: string_type" in logged, logged
    assert "Exception in ASGI application" not in logged, logged
    assert secret not in logged, "a stored value reached the log"


# The app's own answers, in-process: routes added for the test raise what a route could.

TEST_DIALECT = "/kassa-test-dialect"


def render_test_dialect(error: KassaError) -> Rendered:
    body = orjson.dumps({"failure": error.code})
    return error.status, "application/vnd.kassa-test+json", body, [("X-Test-Dialect", "yes")]


async def refused_connection() -> None:
    """What the driver raises for a database that is not listening."""
    await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/kassa")


@pytest.fixture
async def raising_app() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url="sqlite:///unused.db", worker="off"))
    register_error_renderer(TEST_DIALECT, render_test_dialect)

    async def bug() -> None:
        raise RuntimeError("a bug")

    async def outage() -> None:
        raise ServiceUnavailable()

    for prefix in (TEST_DIALECT, "/v1/kassa-test"):
        app.app.add_api_route(f"{prefix}/bug", bug)
        app.app.add_api_route(f"{prefix}/outage", outage)
        app.app.add_api_route(f"{prefix}/refused", refused_connection)
    # raise_app_exceptions (the default): an exception that left the app would fail the test.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kassa.test") as client:
        yield client


async def test_a_bug_and_an_outage_are_native_problems_under_v1(
    raising_app: httpx.AsyncClient,
) -> None:
    bug = await raising_app.get("/v1/kassa-test/bug")
    assert bug.status_code == 500
    assert bug.headers["content-type"] == "application/problem+json"
    assert bug.json()["code"] == "internal_error"
    assert "retry-after" not in bug.headers
    for path in ("/v1/kassa-test/outage", "/v1/kassa-test/refused"):
        outage = await raising_app.get(path)
        assert outage.status_code == 503, outage.text
        assert outage.headers["content-type"] == "application/problem+json"
        assert outage.headers["retry-after"] == str(ServiceUnavailable.retry_after)
        assert outage.json()["code"] == "service_unavailable"


async def test_a_bug_and_an_outage_take_a_dialects_own_shape(
    raising_app: httpx.AsyncClient,
) -> None:
    bug = await raising_app.get(f"{TEST_DIALECT}/bug")
    assert (bug.status_code, bug.json()) == (500, {"failure": "internal_error"})
    assert bug.headers["content-type"] == "application/vnd.kassa-test+json"
    assert bug.headers["x-test-dialect"] == "yes"
    for path in (f"{TEST_DIALECT}/outage", f"{TEST_DIALECT}/refused"):
        outage = await raising_app.get(path)
        assert (outage.status_code, outage.json()) == (503, {"failure": "service_unavailable"})
        assert outage.headers["x-test-dialect"] == "yes"
        # The dialect's renderer gave none: a 503 always says when to come back.
        assert outage.headers["retry-after"] == str(ServiceUnavailable.retry_after)


async def test_a_database_out_of_reach_answers_503_on_the_hot_path_and_off_it() -> None:
    """A PostgreSQL URL where nothing listens: Kassa starts, and answers every request that
    needs the database with a 503 (the hot path's deposits too), /readyz included."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/kassa"
    app = create_app(Settings(database_url=url, worker="off", auth_cache_seconds=0))
    key = f"ksk_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}"
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://kassa.test",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        wallet = uuid.uuid4()
        for method, path in (
            ("POST", f"/v1/wallets/{wallet}/deposits"),
            ("POST", f"/v1/wallets/{wallet}/withdrawals"),
            ("GET", "/v1/wallets"),
            ("GET", f"/v1/wallets/{wallet}"),
        ):
            answer = await client.request(method, path, json={"amount": 1})
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["retry-after"] == "1", path
            assert answer.json()["code"] == "service_unavailable", path
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200


# What counts as a lost connection: only what cannot mean anything else.


async def test_a_refused_connection_is_lost_and_translates_to_service_unavailable() -> None:
    with pytest.raises(ConnectionRefusedError) as refused:
        await refused_connection()
    assert dberrors.connection_lost(refused.value)
    translated = dberrors.translate(refused.value)
    assert isinstance(translated, ServiceUnavailable)
    assert translated.__cause__ is refused.value
    dberrors.database_answered(time.monotonic())  # this test's outage ends here


def test_an_outage_ends_with_an_answer_to_a_statement_sent_after_its_last_refusal() -> None:
    in_flight = time.monotonic()  # sent before the refusal: its answer proves nothing now
    refused = raised(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert isinstance(dberrors.translate(refused), ServiceUnavailable)
    dberrors.database_answered(in_flight)
    assert dberrors._outage.began is not None, "one outage, not two"
    dberrors.database_answered(time.monotonic())
    assert dberrors._outage.began is None


def raised(error: BaseException) -> BaseException:
    """``error`` as it is once raised by Kassa's own code (with a traceback)."""
    try:
        raise error
    except BaseException as caught:  # noqa: BLE001
        return caught


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CrashShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.IdleSessionTimeoutError("idle-session timeout"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.InternalClientError('cannot switch to state 12; protocol is in the "failed" state'),
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
    ],
    ids=lambda error: type(error).__name__,
)
def test_what_the_driver_says_of_a_lost_connection_counts(error: BaseException) -> None:
    assert dberrors.connection_lost(raised(error))


@pytest.mark.parametrize(
    "error",
    [
        # A refused statement or the database's own verdicts: not an outage.
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.CheckViolationError("check constraint"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.QueryCanceledError("canceling statement"),
        asyncpg.exceptions.DatabaseDroppedError("database dropped"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (11) is in progress"
        ),
        # Kassa's own errors, even those whose class a lost connection shares.
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        FileNotFoundError(2, "no such file"),
        ValueError("a bug"),
        KeyError("a bug"),
        NotFound("a client's error"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_bug_or_a_refused_statement_is_never_a_lost_connection(error: BaseException) -> None:
    assert not dberrors.connection_lost(raised(error))
    assert not isinstance(dberrors.translate(raised(error)), ServiceUnavailable)


async def test_sqlite_that_cannot_open_its_file_is_unavailable(tmp_path: Path) -> None:
    missing = Database(f"sqlite:///{tmp_path / 'no-such-folder' / 'kassa.db'}")
    try:
        with pytest.raises(ServiceUnavailable):
            async with missing.read():
                pass
    finally:
        await missing.close()
    dberrors.database_answered(time.monotonic())
    present = Database(f"sqlite:///{tmp_path / 'kassa.db'}")
    try:
        with pytest.raises(DBAPIError) as bug:
            async with present.read() as conn:
                await conn.execute(text("SELECT * FROM no_such_table"))
        assert not dberrors.connection_lost(bug.value)
    finally:
        await present.close()


# Logging: no request's values, ever; no traceback for a lost connection.


async def test_a_statements_error_is_logged_without_its_values(db: Database) -> None:
    """A CHECK violation quotes the failing row on PostgreSQL (``DETAIL: Failing row
    contains (...)``): neither the error's text nor its traceback, as logged, holds it."""
    secret = f"private-{uuid.uuid4().hex}"
    now = SystemClock().now()
    with pytest.raises(IntegrityError) as refused:
        async with db.write() as conn:
            await conn.execute(
                insert(wallets).values(
                    id=uuid.uuid4(),
                    tenant_id=uuid.uuid4(),
                    customer_id=secret,
                    currency="EUR",
                    alias="too-short",  # breaks the CHECK on its length
                    status="active",
                    metadata={},
                    created_at=now,
                    updated_at=now,
                )
            )
    error = refused.value
    assert "parameters hidden" in str(error)  # hide_parameters on the engine
    try:
        raise RuntimeError("a bug") from error
    except RuntimeError as bug:
        logged = format_exception(bug)
    assert secret not in logged
    assert secret not in dberrors.describe(error)
    assert "IntegrityError" in logged
    assert "The above exception was the direct cause of the following exception" in logged
    assert logged.endswith("RuntimeError: a bug")


def test_a_database_errors_detail_and_a_validation_errors_input_are_withheld() -> None:
    secret = f"private-{uuid.uuid4().hex}"
    duplicate = asyncpg.exceptions.UniqueViolationError.new(
        {
            "M": 'duplicate key value violates unique constraint "uq_x"',
            "D": f"Key (reference)=({secret}) already exists.",
            "C": "23505",
            "n": "uq_x",
            "t": "journal_transactions",
        }
    )
    assert secret in str(duplicate)  # what asyncpg itself would print
    logged = format_exception(raised(duplicate))
    assert secret not in logged
    assert "UniqueViolationError: (SQLSTATE 23505, constraint uq_x" in logged
    with pytest.raises(ValidationError) as invalid:
        WalletOut.model_validate({"metadata": {"note": [secret]}})
    assert secret in str(invalid.value)
    assert secret not in format_exception(invalid.value)


def test_a_lost_connection_is_logged_without_a_traceback() -> None:
    lost = raised(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    event = format_exc_info_safely(None, "warning", {"event": "x", "exc_info": lost})
    assert event == {"event": "x", "error": "AdminShutdownError (SQLSTATE 57P01)"}
    unavailable = ServiceUnavailable()
    unavailable.__cause__ = lost
    event = format_exc_info_safely(None, "error", {"event": "y", "exc_info": unavailable})
    assert event == {"event": "y", "error": "AdminShutdownError (SQLSTATE 57P01)"}
    bug = raised(InternalError("a bug"))
    assert "Traceback" in format_exc_info_safely(None, "error", {"exc_info": bug})["exception"]


def test_libraries_records_go_through_the_same_care() -> None:
    """asyncpg's pool and SQLAlchemy's log through the standard library, with tracebacks."""
    configure_logging(fmt="json")
    handler = next(h for h in logging.getLogger().handlers if type(h).__name__ == "_LibraryHandler")
    lost = raised(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"))
    record = logging.LogRecord(
        "asyncpg.pool", logging.WARNING, __file__, 1, "retrying", (), (type(lost), lost, None)
    )
    line = orjson.loads(handler.format(record))
    assert line["event"] == "retrying"
    assert line["logger"] == "asyncpg.pool"
    assert line["error"] == "ConnectionDoesNotExistError (SQLSTATE 08003)"
    assert "exception" not in line
