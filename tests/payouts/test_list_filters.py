"""``GET /v1/payouts?wallet_id=``: a list filtered by wallet really is (it was once silently
unfiltered); over HTTP, both backends."""

from __future__ import annotations

import uuid

import httpx

from tests.helpers import create_wallet, deposit
from tests.payouts.conftest import Setup, add_instrument, preview, ready


async def test_payouts_filter_by_wallet(api: httpx.AsyncClient) -> None:
    first = await ready(api)
    other_wallet = await create_wallet(api, "EUR", customer_id=first.wallet["customer_id"] + "-2")
    await deposit(api, other_wallet["id"], 10_000)
    other = Setup(other_wallet, await add_instrument(api, other_wallet["customer_id"]))
    mine = [await preview(api, first, 200), await preview(api, first, 300)]
    theirs = await preview(api, other, 400)

    listed = await api.get("/v1/payouts", params={"wallet_id": first.wallet["id"]})
    assert listed.status_code == 200, listed.text
    assert [p["id"] for p in listed.json()["data"]] == [p["id"] for p in reversed(mine)]
    listed = await api.get("/v1/payouts", params={"wallet_id": other_wallet["id"]})
    assert [p["id"] for p in listed.json()["data"]] == [theirs["id"]]
    unknown = await api.get("/v1/payouts", params={"wallet_id": str(uuid.uuid4())})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
