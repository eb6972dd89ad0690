"""What a payout is checked against, at PREVIEW and again at PENDING; time by a frozen clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit.clock import FrozenClock
from tests.helpers import TenantKey, create_wallet, deposit
from tests.payouts.conftest import BANK_TRANSFER, CARD, add_instrument, move, preview, ready


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def local(
    database_url: str, tenant: TenantKey, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, auth_cache_seconds=0, worker="off")
    app = create_app(settings, clock=clock)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://kassa.test",
            headers={"Authorization": f"Bearer {tenant.key}"},
        ) as client,
    ):
        yield client


async def test_a_preview_expires(local: httpx.AsyncClient, clock: FrozenClock) -> None:
    setup = await ready(local)
    payout = await preview(local, setup, 500)
    clock.advance(timedelta(minutes=15))
    expired = await move(local, payout["id"], "PENDING")
    assert expired.status_code == 409
    assert expired.json()["code"] == "payout_expired"
    assert (await move(local, payout["id"], "CANCELLED")).status_code == 200
    wallet = (await local.get(f"/v1/wallets/{setup.wallet['id']}")).json()
    assert wallet["held_balance"] == 0


async def test_preview_checks(api: httpx.AsyncClient) -> None:
    setup = await ready(api)
    base = {
        "wallet_id": setup.wallet["id"],
        "amount": 500,
        "payment_option": "BANK_TRANSFER",
        "instrument_id": setup.instrument["id"],
    }
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"payment_option": "CARD"}, 422, "unknown_payment_option"),
        ({"amount": 99}, 422, "payment_option_refused"),  # under min_amount
        ({"amount": 1_000_001}, 422, "payment_option_refused"),
        ({"currency": "USD"}, 422, "currency_mismatch"),
        ({"instrument_id": str(uuid.uuid4())}, 404, "not_found"),
        ({"wallet_id": str(uuid.uuid4())}, 404, "not_found"),
        ({"amount": 0}, 422, "invalid_amount"),
        ({"amount": 10.5}, 422, "invalid_amount"),
        ({"payment_option": "GOLD"}, 422, "validation_failed"),
    ]
    for change, status, code in cases:
        response = await api.post("/v1/payouts", json={**base, **change})
        assert response.status_code == status, (change, response.text)
        assert response.json()["code"] == code, (change, response.text)
    # A card is not a bank transfer's instrument; another customer's instrument is not found.
    card = await add_instrument(
        api,
        setup.wallet["customer_id"],
        type="CARD",
        card_number=CARD,
        expiry_month=12,
        expiry_year=2099,
    )
    refused = await api.post("/v1/payouts", json={**base, "instrument_id": card["id"]})
    assert refused.json()["code"] == "payment_option_refused"
    stranger = await add_instrument(api, "someone-else")
    missing = await api.post("/v1/payouts", json={**base, "instrument_id": stranger["id"]})
    assert missing.status_code == 404
    first = await api.post("/v1/payouts", json={**base, "reference": "ref-once"})
    assert first.status_code == 201
    again = await api.post("/v1/payouts", json={**base, "reference": "ref-once"})
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_reference"


async def test_pending_checks_again(api: httpx.AsyncClient) -> None:
    setup = await ready(api)
    # An unverified instrument.
    unverified = await add_instrument(api, setup.wallet["customer_id"], verify=False)
    payout = (
        await api.post(
            "/v1/payouts",
            json={
                "wallet_id": setup.wallet["id"],
                "amount": 500,
                "payment_option": "BANK_TRANSFER",
                "instrument_id": unverified["id"],
            },
        )
    ).json()
    refused = await move(api, payout["id"], "PENDING")
    assert refused.status_code == 409
    assert refused.json()["code"] == "instrument_not_verified"
    # A frozen wallet.
    second = await preview(api, setup, 500)
    assert (await api.post(f"/v1/wallets/{setup.wallet['id']}/freeze", json={})).status_code == 200
    frozen = await move(api, second["id"], "PENDING")
    assert frozen.status_code == 409
    assert frozen.json()["code"] == "wallet_frozen"
    await api.post(f"/v1/wallets/{setup.wallet['id']}/unfreeze")
    # The option changed since the preview: now it takes only UK accounts.
    await api.put(
        "/v1/payment-options",
        json={"options": [{**BANK_TRANSFER, "instrument_types": ["UK_BANK_ACCOUNT"]}]},
    )
    changed = await move(api, second["id"], "PENDING")
    assert changed.status_code == 422
    assert changed.json()["code"] == "payment_option_refused"
    wallet = (await api.get(f"/v1/wallets/{setup.wallet['id']}")).json()
    assert wallet["held_balance"] == 0


async def test_payment_options_round_trip_and_validation(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/payment-options")).json() == {
        "options": [],
        "pending_ttl_seconds": 86_400,
    }
    put = await api.put(
        "/v1/payment-options", json={"options": [BANK_TRANSFER], "pending_ttl_seconds": 3_600}
    )
    assert put.status_code == 200, put.text
    assert (await api.get("/v1/payment-options")).json() == put.json()
    assert put.json()["options"][0]["fee"] == {"fixed": 50, "bps": 100, "min": 0, "max": 500}
    for bad in (
        {"options": [BANK_TRANSFER, BANK_TRANSFER]},
        {"options": [{**BANK_TRANSFER, "currencies": ["XYZ"]}]},
        {"options": [{**BANK_TRANSFER, "min_amount": 10, "max_amount": 5}]},
        {"options": [{**BANK_TRANSFER, "fee": {"bps": 10_001}}]},
        {"options": [{**BANK_TRANSFER, "connector": "carrier-pigeon"}]},
        {"pending_ttl_seconds": 1},
    ):
        response = await api.put("/v1/payment-options", json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert (await api.get("/v1/payment-options")).json() == put.json()


async def test_fee_rule_minimum_and_maximum(api: httpx.AsyncClient) -> None:
    option = {**BANK_TRANSFER, "fee": {"fixed": 0, "bps": 250, "min": 30, "max": 1_000}}
    setup = await ready(api, 100_000, option)
    assert (await preview(api, setup, 100))["fee_total"] == 30  # 2.5 % is 3: the minimum
    assert (await preview(api, setup, 10_000))["fee_total"] == 250
    assert (await preview(api, setup, 100_000))["fee_total"] == 1_000  # 2,500: the maximum
    assert (await preview(api, setup, 1_010))["fee_total"] == 30
    assert (await preview(api, setup, 1_230))["fee_total"] == 31  # 30.75 rounds half up to 31


async def test_payouts_list_filters(api: httpx.AsyncClient) -> None:
    setup = await ready(api)
    first = await preview(api, setup, 500)
    second = await preview(api, setup, 600)
    await move(api, second["id"], "CANCELLED")
    other_wallet = await create_wallet(api, "EUR")
    await deposit(api, other_wallet["id"], 1_000)
    listed = (
        await api.get("/v1/payouts", params={"customer_id": setup.wallet["customer_id"]})
    ).json()
    assert [p["id"] for p in listed["data"]] == [second["id"], first["id"]]
    cancelled = (await api.get("/v1/payouts", params={"status": "CANCELLED"})).json()["data"]
    assert second["id"] in [p["id"] for p in cancelled]
    assert first["id"] not in [p["id"] for p in cancelled]
    page = (
        await api.get(
            "/v1/payouts",
            params={"customer_id": setup.wallet["customer_id"], "limit": 1},
        )
    ).json()
    assert page["has_more"] is True
    rest = (
        await api.get(
            "/v1/payouts",
            params={
                "customer_id": setup.wallet["customer_id"],
                "starting_after": page["data"][0]["id"],
            },
        )
    ).json()
    assert [p["id"] for p in rest["data"]] == [first["id"]]
