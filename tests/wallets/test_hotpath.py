"""The hot path's front answers exactly as the FastAPI routes it stands in for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit.db import Database
from tests.helpers import TenantKey, make_tenant

VOLATILE = {"id", "created_at"}


@dataclass(frozen=True)
class Clients:
    hot: httpx.AsyncClient  # the whole app: HotPath in front of FastAPI
    framework: httpx.AsyncClient  # the FastAPI app alone
    tenant: TenantKey
    read_only: TenantKey


@pytest.fixture
async def clients(database_url: str, db: Database) -> AsyncIterator[Clients]:
    app = create_app(Settings(database_url=database_url, auth_cache_seconds=0, worker="off"))
    tenant = await make_tenant(db)
    read_only = await make_tenant(db, scopes=["wallets:read"])
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kassa.test"
        ) as hot,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app.app), base_url="http://kassa.test"
        ) as framework,
    ):
        yield Clients(hot, framework, tenant, read_only)


def summary(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return {
        "status": response.status_code,
        "content-type": response.headers["content-type"],
        "www-authenticate": response.headers.get("www-authenticate"),
        "body": {k: v for k, v in body.items() if k not in VOLATILE},
    }


async def both(
    clients: Clients, path: str, *, key: str | None, content: bytes, **headers: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    headers.setdefault("Content-Type", "application/json")
    hot = await clients.hot.post(path, content=content, headers=headers)
    framework = await clients.framework.post(path, content=content, headers=headers)
    return summary(hot), summary(framework)


async def test_deposits_and_withdrawals_answer_alike(clients: Clients) -> None:
    key = clients.tenant.key
    created = await clients.hot.post(
        "/v1/wallets",
        json={"customer_id": "c-1", "currency": clients.tenant.currency},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 201, created.text
    wallet = created.json()["id"]
    deposits, withdrawals = f"/v1/wallets/{wallet}/deposits", f"/v1/wallets/{wallet}/withdrawals"

    hot, framework = await both(clients, deposits, key=key, content=b'{"amount": 1000}')
    assert hot["status"] == 201
    assert hot["body"]["balance_after"] == 1000
    assert framework["body"]["balance_after"] == 2000
    hot["body"].pop("balance_before"), hot["body"].pop("balance_after")
    framework["body"].pop("balance_before"), framework["body"].pop("balance_after")
    assert hot == framework

    cases: list[tuple[str, str | None, bytes, dict[str, str]]] = [
        (withdrawals, key, b'{"amount": 5000}', {}),  # insufficient funds
        (withdrawals, key, b'{"amount": "1e3"}', {}),
        (withdrawals, key, b'{"amount": 1, "amount": 2}', {}),
        (withdrawals, key, b"{not json", {}),
        (withdrawals, key, b"", {}),
        (withdrawals, key, b'{"amount": 1, "currency": "USD"}', {}),
        (withdrawals, key, b'{"amount": 1, "surprise": true}', {}),
        (withdrawals, key, b" " * (64 * 1024 + 1), {}),
        (withdrawals, None, b'{"amount": 1}', {}),
        (withdrawals, "ksk_nope_nope", b'{"amount": 1}', {}),
        (withdrawals, None, b'{"amount": 1}', {"Authorization": f"Basic {key}"}),
        (withdrawals, clients.read_only.key, b'{"amount": 1}', {}),
        (deposits, clients.read_only.key, b'{"amount": 1}', {}),
        (f"/v1/wallets/{uuid.uuid4()}/withdrawals", key, b'{"amount": 1}', {}),
        ("/v1/wallets/not-an-id/deposits", key, b'{"amount": 1}', {}),
    ]
    for path, case_key, content, headers in cases:
        hot, framework = await both(clients, path, key=case_key, content=content, **headers)
        assert hot["status"] >= 400, (content, hot)
        assert hot == framework, (path, content, headers)

    balance = await clients.hot.get(
        f"/v1/wallets/{wallet}", headers={"Authorization": f"Bearer {key}"}
    )
    assert balance.json()["balance"] == 2000
