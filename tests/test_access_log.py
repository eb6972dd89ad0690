"""``kassa serve --access-log``: one line per request in Kassa's own log format, with the
request's ``Request-Id``, its route's template, status and time, and none of the client's
values (no ids from the path, no query, no body). Real server, both backends, both formats."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from kassa.kit.db import Database
from tests.helpers import make_tenant, start_server


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_access_log_lines_carry_the_request_id_and_no_values(
    database_url: str, db: Database, tmp_path: Path, log_format: str
) -> None:
    tenant = await make_tenant(db)
    with start_server(
        database_url, tmp_path, workers=1, args=("--access-log",), KASSA_LOG_FORMAT=log_format
    ) as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {tenant.key}"}
        ) as api:
            created = await api.post(
                "/v1/wallets", json={"customer_id": "secret-customer-7", "currency": "EUR"}
            )
            wallet_id = created.json()["id"]
            deposited = await api.post(
                f"/v1/wallets/{wallet_id}/deposits",
                json={"amount": 5, "reference": "ref-private-9"},
            )
            listed = await api.get("/v1/wallets", params={"customer_id": "secret-customer-7"})
        ids = [a.headers["request-id"] for a in (created, deposited, listed)]
        # A request's line is written once its answer has gone: wait for the last one.
        deadline = time.monotonic() + 30
        text = server.log_path.read_text()
        while not all(rid in text for rid in ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            text = server.log_path.read_text()
    for rid in ids:
        assert text.count(rid) == 1, text
    for value in ("secret-customer-7", "ref-private-9", wallet_id, tenant.key):
        assert value not in text
    # The test's own readiness polls are logged too; these are the three requests above.
    lines = [line for line in text.splitlines() if any(rid in line for rid in ids)]
    assert len(lines) == 3, text
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert [(r["method"], r["route"], r["status"]) for r in records] == [
            ("POST", "/v1/wallets", 201),
            ("POST", "/v1/wallets/{wallet_id}/deposits", 201),
            ("GET", "/v1/wallets", 200),
        ]
        assert [r["request_id"] for r in records] == ids
    else:
        assert "route=/v1/wallets/{wallet_id}/deposits" in lines[1]
