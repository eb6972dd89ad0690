"""Payout tests: a tenant with one payment option, a funded wallet, a verified instrument."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.helpers import create_wallet, deposit

IBAN = "DE89 3704 0044 0532 0130 00"
CARD = "4111 1111 1111 1111"

BANK_TRANSFER: dict[str, Any] = {
    "code": "BANK_TRANSFER",
    "instrument_types": ["SEPA_BANK_ACCOUNT", "UK_BANK_ACCOUNT"],
    "currencies": ["EUR"],
    "min_amount": 100,
    "max_amount": 1_000_000,
    "fee": {"fixed": 50, "bps": 100, "min": 0, "max": 500},
    "connector": "manual",
}


@dataclass
class Setup:
    wallet: dict[str, Any]
    instrument: dict[str, Any]


async def set_options(api: httpx.AsyncClient, *options: dict[str, Any], ttl: int = 86_400) -> None:
    response = await api.put(
        "/v1/payment-options", json={"options": list(options), "pending_ttl_seconds": ttl}
    )
    assert response.status_code == 200, response.text


async def add_instrument(
    api: httpx.AsyncClient, customer_id: str, verify: bool = True, **body: Any
) -> dict[str, Any]:
    body = body or {"type": "SEPA_BANK_ACCOUNT", "iban": IBAN}
    response = await api.post(
        f"/v1/customers/{customer_id}/instruments", json={"holder_name": "Ada L.", **body}
    )
    assert response.status_code == 201, response.text
    instrument: dict[str, Any] = response.json()
    if verify:
        verified = await api.post(
            f"/v1/customers/{customer_id}/instruments/{instrument['id']}/verify"
        )
        assert verified.status_code == 200, verified.text
        instrument = verified.json()
    return instrument


async def ready(api: httpx.AsyncClient, funds: int = 10_000, *options: dict[str, Any]) -> Setup:
    await set_options(api, *(options or (BANK_TRANSFER,)))
    wallet = await create_wallet(api, "EUR")
    if funds:
        await deposit(api, wallet["id"], funds)
    instrument = await add_instrument(api, wallet["customer_id"])
    return Setup(wallet, instrument)


async def preview(
    api: httpx.AsyncClient, setup: Setup, amount: int, **extra: Any
) -> dict[str, Any]:
    response = await api.post(
        "/v1/payouts",
        json={
            "wallet_id": setup.wallet["id"],
            "amount": amount,
            "payment_option": "BANK_TRANSFER",
            "instrument_id": setup.instrument["id"],
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    payout: dict[str, Any] = response.json()
    return payout


async def move(api: httpx.AsyncClient, payout_id: str, status: str, **extra: Any) -> httpx.Response:
    return await api.post(f"/v1/payouts/{payout_id}/status", json={"status": status, **extra})
