"""``kassa_payout_json`` (the payout a change answers and its event carries, on PostgreSQL) is
byte for byte what ``lifecycle.shown`` renders in Python (what a GET answers, and every answer
on SQLite): for payouts of every status and rail, fees or none, timestamps with and without
microseconds, and metadata, references, reasons and customer ids of any text. PostgreSQL only:
SQLite has no stored functions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kassa import migrations
from kassa.kit.clock import isoformat
from kassa.payouts import lifecycle
from kassa.payouts.engine_pg import payout_of
from tests.conftest import PG_URL
from tests.helpers import create_pg_database, drop_pg_database

ROW_SQL = (
    "SELECT kassa_payout_json(r) AS o_body, r.*"
    " FROM jsonb_populate_record(NULL::payouts, $1::jsonb) AS r"
)


class Postgres:
    def __init__(self, runner: asyncio.Runner, conn: asyncpg.Connection) -> None:
        self.runner = runner
        self.conn = conn

    def render(self, fields: dict[str, Any]) -> tuple[bytes, bytes]:
        """The payout rendered by the function and by ``lifecycle.shown``, from one row."""
        row = self.runner.run(self.conn.fetchrow(ROW_SQL, orjson.dumps(fields).decode()))
        assert row is not None
        payout = payout_of(row)
        return row["o_body"].encode(), lifecycle.shown(payout).model_dump_json().encode()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A migrated database of its own, on an event loop of its own (Hypothesis is
    synchronous)."""
    with asyncio.Runner() as runner:
        name = f"kassa_test_{uuid.uuid4().hex[:10]}"
        url = runner.run(create_pg_database(PG_URL, name))
        try:
            migrations.upgrade(url)
            conn = runner.run(asyncpg.connect("postgresql://" + url.split("://", 1)[1]))
            try:
                yield Postgres(runner, conn)
            finally:
                runner.run(conn.close())
        finally:
            runner.run(drop_pg_database(PG_URL, name))


# Any text PostgreSQL can keep: quotes, backslashes, control characters, any script, emoji.
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
STATUSES = ["PREVIEW", "PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]
MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@st.composite
def payouts(draw: st.DrawFn) -> dict[str, Any]:
    amount = draw(st.integers(1, 10**15 - 1))
    fees = draw(st.lists(st.integers(0, 10**6), max_size=2))
    currency = draw(st.sampled_from(["EUR", "JPY", "KWD", "USD"]))
    history = [
        lifecycle.history_entry(
            draw(st.sampled_from(STATUSES)), draw(MOMENTS), draw(TEXT | st.none())
        )
        for _ in range(draw(st.integers(1, 4)))
    ]
    return {
        "id": str(uuid.uuid4()),
        "tenant_id": str(uuid.uuid4()),
        "wallet_id": str(uuid.uuid4()),
        "customer_id": draw(TEXT),
        "instrument_id": str(uuid.uuid4()),
        "payment_option": draw(st.sampled_from(["BANK_TRANSFER", "CARD", "RAPID_TRANSFER"])),
        "connector": draw(st.sampled_from(["manual", "sandbox"])),
        "amount": amount,
        "currency": currency,
        "fees": [{"amount": fee, "currency": currency, "reason": "WITHDRAWAL_FEE"} for fee in fees],
        "fee_total": sum(fees),
        "status": draw(st.sampled_from(STATUSES)),
        "status_reason": draw(TEXT | st.none()),
        "reference": draw(TEXT | st.none()),
        "description": draw(TEXT | st.none()),
        "metadata": draw(st.dictionaries(TEXT, TEXT, max_size=4)),
        "transaction_id": draw(st.none() | st.uuids().map(str)),
        "expires_at": isoformat(draw(MOMENTS)),
        "history": history,
        "created_at": isoformat(draw(MOMENTS)),
        "updated_at": isoformat(draw(MOMENTS)),
        "worker_failures": 0,
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payouts())
def test_the_function_renders_a_payout_as_the_api_does(
    postgres: Postgres, fields: dict[str, Any]
) -> None:
    in_sql, in_python = postgres.render(fields)
    assert in_sql == in_python


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("connector", ["manual", "sandbox"])
def test_next_status_and_whole_seconds(postgres: Postgres, status: str, connector: str) -> None:
    """Each status's next_status, on either rail, and a timestamp without microseconds."""
    moment = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
    fields = {
        "id": str(uuid.uuid4()),
        "tenant_id": str(uuid.uuid4()),
        "wallet_id": str(uuid.uuid4()),
        "customer_id": "cus_1",
        "instrument_id": str(uuid.uuid4()),
        "payment_option": "BANK_TRANSFER",
        "connector": connector,
        "amount": 500,
        "currency": "EUR",
        "fees": [],
        "fee_total": 0,
        "status": status,
        "metadata": {"order": "A-1", "note": 'say "hi"\n'},
        "expires_at": isoformat(moment),
        "history": [lifecycle.history_entry(status, moment)],
        "created_at": isoformat(moment),
        "updated_at": isoformat(moment.replace(microsecond=120)),
        "worker_failures": 0,
    }
    in_sql, in_python = postgres.render(fields)
    assert in_sql == in_python
    shown = orjson.loads(in_sql)
    assert shown["expires_at"] == "2026-12-05T12:00:00Z"
    assert shown["updated_at"] == "2026-12-05T12:00:00.000120Z"
