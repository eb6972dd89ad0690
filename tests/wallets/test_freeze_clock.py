"""A freeze with an end date ends by itself; time is driven by an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from kassa.kit.clock import FrozenClock, isoformat
from tests.helpers import TenantKey, create_wallet, deposit, in_process_api


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def local_api(
    database_url: str, tenant: TenantKey, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_api(database_url, tenant.key, clock) as client:
        yield client


async def test_freeze_until_ends_when_the_clock_passes_it(
    local_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    wallet = await create_wallet(local_api)
    await deposit(local_api, wallet["id"], 500)
    until = clock.now() + timedelta(hours=2)

    frozen = await local_api.post(
        f"/v1/wallets/{wallet['id']}/freeze", json={"until": isoformat(until), "reason": "review"}
    )
    assert frozen.status_code == 200, frozen.text
    assert frozen.json()["status"] == "frozen"
    assert frozen.json()["frozen_until"] == isoformat(until)

    refused = await local_api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 100})
    assert refused.status_code == 409
    assert refused.json()["code"] == "wallet_frozen"

    clock.advance(timedelta(hours=2, seconds=1))
    shown = await local_api.get(f"/v1/wallets/{wallet['id']}")
    assert shown.json()["status"] == "active"
    assert shown.json()["frozen_until"] is None

    paid = await local_api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 100})
    assert paid.status_code == 201, paid.text
    assert paid.json()["balance_after"] == 400
    assert paid.json()["created_at"] == isoformat(clock.now())


async def test_freeze_without_end_lasts_until_unfrozen(
    local_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    wallet = await create_wallet(local_api)
    await deposit(local_api, wallet["id"], 500)
    assert (await local_api.post(f"/v1/wallets/{wallet['id']}/freeze")).status_code == 200

    clock.advance(timedelta(days=365))
    refused = await local_api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 1})
    assert refused.json()["code"] == "wallet_frozen"
    landed = await local_api.post(f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 1})
    assert landed.status_code == 201

    assert (await local_api.post(f"/v1/wallets/{wallet['id']}/unfreeze")).json()["status"] == (
        "active"
    )
    paid = await local_api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 501})
    assert paid.status_code == 201, paid.text
    assert paid.json()["balance_after"] == 0
