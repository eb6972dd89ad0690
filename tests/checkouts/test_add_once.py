"""Two sends of one add form at once take turns on the session's row, so the second finds the
first's instrument instead of adding the account again (``checkouts.adding._store``: the
session's row held, then ``instruments.create_once``).

Made deterministic with two units of work on the server's database: the first holds the
session and has added the account, not yet committed; the second must wait for it and then
find it. Mutation tried: without ``lock_checkout`` the second adds a second instrument (on
PostgreSQL it does not see the first's uncommitted row): caught.
"""

from __future__ import annotations

import asyncio
import uuid

from kassa.checkouts import repository
from kassa.instruments import service as instruments
from kassa.instruments.schemas import NewInstrument
from kassa.kit.clock import SystemClock
from kassa.kit.db import Database
from kassa.kit.secretbox import SecretBox
from tests.checkouts.conftest import Merchant, Shop
from tests.helpers import TEST_SECRET_KEY

IBAN = NewInstrument(
    type="SEPA_BANK_ACCOUNT", holder_name="Ada Lovelace", iban="FR1420041010050500013M02606"
)


async def test_two_adds_at_once_on_one_session_add_one_instrument(
    shop: Shop, merchant_site: Merchant, database_url: str
) -> None:
    checkout = await shop.checkout(merchant_site.url)
    checkout_id = uuid.UUID(checkout["id"])
    customer = shop.wallet["customer_id"]
    box = SecretBox([TEST_SECRET_KEY])
    now = SystemClock().now()
    db = Database(database_url)
    await db.open()
    try:

        async def second() -> bool:
            async with db.write() as conn:
                await repository.lock_checkout(conn, checkout_id)
                _, added = await instruments.create_once(
                    conn, shop.tenant.tenant_id, customer, IBAN, box, now
                )
            return added

        async with db.write() as conn:
            await repository.lock_checkout(conn, checkout_id)
            _, first = await instruments.create_once(
                conn, shop.tenant.tenant_id, customer, IBAN, box, now
            )
            waiting = asyncio.create_task(second())
            # Let the second run as far as it can while the first is open.
            for _ in range(50):
                await asyncio.sleep(0)
            await asyncio.wait({waiting}, timeout=0.5)
            assert not waiting.done(), "the second add did not wait for the first"
        assert first is True
        assert await waiting is False
    finally:
        await db.close()
    listed = (await shop.api.get(f"/v1/customers/{customer}/instruments")).json()["data"]
    assert [item["display"] for item in listed].count("FR14 •••• 2606") == 1
