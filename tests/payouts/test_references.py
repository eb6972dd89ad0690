"""A reference is unique per tenant across everything that moves money: immediate deposits and
withdrawals (every route that takes one) and payouts, whichever came first; completing a payout
can never be refused for a reference. Over HTTP against the real server, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from kassa.kit.db import Database
from kassa.ledger.errors import DuplicateReference
from kassa.payouts.tables import payouts
from kassa.wallets.errors import WalletExists
from kassa.wallets.tables import wallets
from tests.helpers import KassaServer, TenantKey, get_wallet, verify_tenant
from tests.payouts.conftest import BANK_TRANSFER, Setup, move, preview, ready


async def _complete(api: httpx.AsyncClient, payout: dict[str, Any]) -> dict[str, Any]:
    for status in ("PENDING", "PROCESSING", "COMPLETED"):
        response = await move(api, payout["id"], status)
        assert response.status_code == 200, response.text
    completed: dict[str, Any] = response.json()
    return completed


async def _withdraw(
    api: httpx.AsyncClient, setup: Setup, reference: str, **headers: str
) -> httpx.Response:
    return await api.post(
        f"/v1/wallets/{setup.wallet['id']}/withdrawals",
        json={"amount": 100, "reference": reference},
        headers=headers,
    )


async def test_a_payout_cannot_take_a_transactions_reference(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    setup = await ready(api)
    withdrawn = await _withdraw(api, setup, "R-1")
    assert withdrawn.status_code == 201
    refused = await api.post(
        "/v1/payouts",
        json={
            "wallet_id": setup.wallet["id"],
            "amount": 1_000,
            "payment_option": "BANK_TRANSFER",
            "instrument_id": setup.instrument["id"],
            "reference": "R-1",
        },
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "duplicate_reference"
    assert refused.json()["transaction_id"] == withdrawn.json()["id"]
    listed = await api.get("/v1/payouts", params={"customer_id": setup.wallet["customer_id"]})
    assert listed.json()["data"] == []
    await verify_tenant(server, tenant)


async def test_no_movement_can_take_a_payouts_reference_and_the_payout_completes(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    setup = await ready(api)
    payout = await preview(api, setup, 1_000, reference="P-1")
    # Every route that books a movement with a reference: the hot path, a keyed request (the
    # idempotent path), a deposit, and a dialect.
    for response in (
        await _withdraw(api, setup, "P-1"),
        await _withdraw(api, setup, "P-1", **{"Idempotency-Key": "key-P-1"}),
        await api.post(
            f"/v1/wallets/{setup.wallet['id']}/deposits", json={"amount": 5, "reference": "P-1"}
        ),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "duplicate_reference"
        assert response.json()["payout_id"] == payout["id"]
    autional = await api.post(
        f"/compat/autional/wallets/{setup.wallet['customer_id']}/withdraw",
        json={"amount": "1.00", "currency": "EUR", "reference_id": "P-1"},
    )
    assert autional.status_code == 409, autional.text
    assert (await get_wallet(api, setup.wallet["id"]))["balance"] == 10_000

    completed = await _complete(api, payout)
    assert completed["status"] == "COMPLETED"
    wallet = await get_wallet(api, setup.wallet["id"])
    assert (wallet["balance"], wallet["held_balance"]) == (10_000 - 1_060, 0)
    await verify_tenant(server, tenant)


async def test_concurrent_payouts_with_one_new_reference_one_wins_the_rest_409(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    setup = await ready(api)
    body = {
        "wallet_id": setup.wallet["id"],
        "amount": 1_000,
        "payment_option": "BANK_TRANSFER",
        "instrument_id": setup.instrument["id"],
        "reference": "race-1",
    }
    answers = await asyncio.gather(*(api.post("/v1/payouts", json=body) for _ in range(12)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 11, [answer.text for answer in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"duplicate_reference"}
    await verify_tenant(server, tenant)


async def test_concurrent_movements_and_payouts_with_one_reference_one_wins(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    setup = await ready(api)
    payout_body = {
        "wallet_id": setup.wallet["id"],
        "amount": 1_000,
        "payment_option": "BANK_TRANSFER",
        "instrument_id": setup.instrument["id"],
        "reference": "race-2",
    }
    requests = [api.post("/v1/payouts", json=payout_body) for _ in range(6)]
    requests += [_withdraw(api, setup, "race-2") for _ in range(6)]
    answers = await asyncio.gather(*requests)
    assert sorted(a.status_code for a in answers).count(409) == 11, [a.text for a in answers]
    assert [a.status_code for a in answers if a.status_code not in (201, 409)] == []
    await verify_tenant(server, tenant)


async def test_concurrent_wallet_creation_for_one_customer_one_wins_the_rest_409(
    api: httpx.AsyncClient,
) -> None:
    body = {"customer_id": "race-customer", "currency": "EUR"}
    answers = await asyncio.gather(*(api.post("/v1/wallets", json=body) for _ in range(12)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 11
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"wallet_exists"}


async def test_a_unique_constraint_lost_in_a_race_is_the_rules_own_error(
    db: Database, api: httpx.AsyncClient, tenant: TenantKey
) -> None:
    """Below every check: the constraint itself, violated inside a unit of work, leaves it as
    the domain's error (what a request that lost a race between check and insert meets)."""
    setup = await ready(api)
    first = await preview(api, setup, 100, reference="constraint-1")
    at = datetime.fromisoformat(first["created_at"].replace("Z", "+00:00"))
    twin = {
        "id": uuid.uuid4(),
        "tenant_id": tenant.tenant_id,
        "wallet_id": uuid.UUID(setup.wallet["id"]),
        "customer_id": setup.wallet["customer_id"],
        "instrument_id": uuid.UUID(setup.instrument["id"]),
        "payment_option": "BANK_TRANSFER",
        "connector": "manual",
        "amount": 100,
        "currency": "EUR",
        "fees": [],
        "fee_total": 0,
        "status": "PREVIEW",
        "reference": "constraint-1",
        "metadata": {},
        "history": [],
        "expires_at": at,
        "created_at": at,
        "updated_at": at,
    }
    with pytest.raises(DuplicateReference):
        async with db.write() as conn:
            await conn.execute(insert(payouts).values(twin))

    second_wallet = {
        "id": uuid.uuid4(),
        "tenant_id": tenant.tenant_id,
        "customer_id": setup.wallet["customer_id"],
        "currency": "EUR",
        "alias": "0000000001",
        "status": "active",
        "metadata": {},
        "created_at": at,
        "updated_at": at,
    }
    with pytest.raises(WalletExists):
        async with db.write() as conn:
            await conn.execute(insert(wallets).values(second_wallet))


async def test_concurrent_first_payment_options_all_succeed(api: httpx.AsyncClient) -> None:
    """The first PUT of a tenant's payment options, sent many times at once: each is a whole
    replacement, so every one succeeds and the last one stands (no lost insert race)."""
    body = {"options": [BANK_TRANSFER], "pending_ttl_seconds": 3_600}
    answers = await asyncio.gather(*(api.put("/v1/payment-options", json=body) for _ in range(12)))
    assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers]
    assert (await api.get("/v1/payment-options")).json()["pending_ttl_seconds"] == 3_600
