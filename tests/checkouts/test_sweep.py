"""The background work closes checkout sessions whose time ran out, with their event, once: an
untouched session as ``expired``; one whose payout moved money but whose page never closed it
(the process died in between) as ``completed`` with that payout. Both backends, the app in this
process with an injected clock.

Mutation tried: ``close_past_due`` closing every past-due session as ``expired`` (the payout
not looked up): caught (the orphan's session says expired while its money is held).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kassa.checkouts.sweep import GRACE, CheckoutSweeper, close_past_due
from kassa.kit.clock import FrozenClock
from kassa.kit.db import Database
from tests.helpers import in_process_api, make_tenant
from tests.payouts.conftest import Setup, move, preview, ready


@dataclass
class Shop:
    api: httpx.AsyncClient
    clock: FrozenClock
    db: Database
    setup: Setup

    async def checkout(self, seconds: int = 60) -> dict[str, Any]:
        made = await self.api.post(
            "/v1/checkouts",
            json={
                "customer_id": self.setup.wallet["customer_id"],
                "type": "withdrawal",
                "return_url": "https://shop.example/back",
                "expires_in": seconds,
            },
        )
        assert made.status_code == 201, made.text
        checkout: dict[str, Any] = made.json()
        return checkout

    async def status(self, checkout: dict[str, Any]) -> dict[str, Any]:
        shown: dict[str, Any] = (await self.api.get(f"/v1/checkouts/{checkout['id']}")).json()
        return shown

    async def events(self) -> Counter[str]:
        listed = (await self.api.get("/v1/events", params={"limit": 100})).json()["data"]
        return Counter(e["type"] for e in listed if e["type"].startswith("checkout."))


@pytest.fixture
async def shop(fresh_database_url: str) -> AsyncIterator[Shop]:
    clock = FrozenClock(datetime(2026, 6, 1, 12, tzinfo=UTC))
    db = Database(fresh_database_url)
    await db.open()
    try:
        tenant = await make_tenant(db)
        async with in_process_api(fresh_database_url, tenant.key, clock) as api:
            yield Shop(api, clock, db, await ready(api, 100_000))
    finally:
        await db.close()


async def test_past_due_sessions_close_once_with_their_event(shop: Shop) -> None:
    untouched = await shop.checkout()
    orphan = await shop.checkout()  # its payout was held; the page never closed it
    held = await preview(shop.api, shop.setup, 2_000, reference=f"checkout-{orphan['id']}")
    assert (await move(shop.api, held["id"], "PENDING")).status_code == 200
    previewed = await shop.checkout()  # its payout never left PREVIEW: nothing moved
    await preview(shop.api, shop.setup, 3_000, reference=f"checkout-{previewed['id']}")
    later = await shop.checkout(seconds=3_600)

    shop.clock.advance(timedelta(seconds=61))
    # Past the deadline the session shows expired, but a confirm that came in before it may
    # still be under way: nothing is closed before the grace has passed.
    assert (await shop.status(untouched))["status"] == "expired"
    assert await close_past_due(shop.db, shop.clock.now(), 50) == 0
    assert await shop.events() == {"checkout.created": 4}

    shop.clock.advance(GRACE)
    assert await CheckoutSweeper(shop.db, shop.clock).run_once() == 3
    assert (await shop.status(untouched))["status"] == "expired"
    completed = await shop.status(orphan)
    assert completed["status"] == "completed"
    assert completed["payout_id"] == held["id"]
    assert completed["amount"] == 2_000
    assert (await shop.status(previewed))["status"] == "expired"
    assert (await shop.status(later))["status"] == "open"
    expected = {"checkout.created": 4, "checkout.expired": 2, "checkout.completed": 1}
    assert await shop.events() == expected

    # Once: again, or another worker, closes nothing and writes nothing.
    assert await close_past_due(shop.db, shop.clock.now(), 50) == 0
    assert await shop.events() == expected
    # A session closed by the merchant before is left as it is.
    expired = await shop.api.post(f"/v1/checkouts/{later['id']}/expire")
    assert expired.status_code == 200
    shop.clock.advance(timedelta(hours=2))
    assert await close_past_due(shop.db, shop.clock.now(), 50) == 0
