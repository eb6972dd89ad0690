"""``Location`` on every 201 that creates an object, first answer and keyed replay alike, and it
names a URL that reads that object."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.helpers import create_wallet, deposit
from tests.payouts.conftest import BANK_TRANSFER, IBAN, add_instrument, set_options

Created = Callable[[httpx.AsyncClient], Awaitable[tuple[str, dict[str, Any], str]]]


async def wallet(api: httpx.AsyncClient) -> tuple[str, dict[str, Any], str]:
    body = {"customer_id": f"cust-{uuid.uuid4().hex[:8]}", "currency": "EUR"}
    return "/v1/wallets", body, "/v1/wallets/{id}"


async def deposit_into(api: httpx.AsyncClient) -> tuple[str, dict[str, Any], str]:
    created = await create_wallet(api)
    return f"/v1/wallets/{created['id']}/deposits", {"amount": 500}, "/v1/transactions/{id}"


async def withdrawal(api: httpx.AsyncClient) -> tuple[str, dict[str, Any], str]:
    created = await create_wallet(api)
    await deposit(api, created["id"], 1000)
    return f"/v1/wallets/{created['id']}/withdrawals", {"amount": 300}, "/v1/transactions/{id}"


async def instrument(api: httpx.AsyncClient) -> tuple[str, dict[str, Any], str]:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    collection = f"/v1/customers/{customer}/instruments"
    body = {"holder_name": "Ada L.", "type": "SEPA_BANK_ACCOUNT", "iban": IBAN}
    return collection, body, collection + "/{id}"


async def payout(api: httpx.AsyncClient) -> tuple[str, dict[str, Any], str]:
    await set_options(api, BANK_TRANSFER)
    created = await create_wallet(api)
    await deposit(api, created["id"], 10_000)
    paid_to = await add_instrument(api, created["customer_id"])
    body = {
        "wallet_id": created["id"],
        "amount": 1000,
        "payment_option": "BANK_TRANSFER",
        "instrument_id": paid_to["id"],
    }
    return "/v1/payouts", body, "/v1/payouts/{id}"


async def webhook_endpoint(api: httpx.AsyncClient) -> tuple[str, dict[str, Any], str]:
    body = {"url": "http://127.0.0.1:9/kassa", "event_types": ["*"]}
    return "/v1/webhook-endpoints", body, "/v1/webhook-endpoints/{id}"


@pytest.mark.parametrize(
    "make",
    [wallet, deposit_into, withdrawal, instrument, payout, webhook_endpoint],
    ids=lambda make: make.__name__,
)
async def test_a_created_object_is_located_first_time_and_on_replay(
    api: httpx.AsyncClient, make: Created
) -> None:
    path, body, template = await make(api)
    key = {"Idempotency-Key": f"loc-{uuid.uuid4().hex}"}
    first = await api.post(path, json=body, headers=key)
    assert first.status_code == 201, first.text
    expected = template.format(id=first.json()["id"])
    assert first.headers["location"] == expected

    replayed = await api.post(path, json=body, headers=key)
    assert replayed.status_code == 201, replayed.text
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["location"] == expected

    unkeyed = await api.post(path, json=body) if make is deposit_into else None
    if unkeyed is not None:  # a deposit moves money again: unkeyed, a new transaction
        assert unkeyed.headers["location"] == template.format(id=unkeyed.json()["id"])

    found = await api.get(expected)
    assert found.status_code == 200, found.text
    assert found.json()["id"] == first.json()["id"]


async def test_a_refusal_has_no_location(api: httpx.AsyncClient) -> None:
    created = await create_wallet(api)
    refused = await api.post(f"/v1/wallets/{created['id']}/withdrawals", json={"amount": 5})
    assert refused.status_code == 409, refused.text
    assert "location" not in refused.headers
    twin = await api.post(
        "/v1/wallets", json={"customer_id": created["customer_id"], "currency": "EUR"}
    )
    assert twin.status_code == 409
    assert "location" not in twin.headers
