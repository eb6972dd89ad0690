"""The Soap dialect's checkout: the seed's example request, sent unchanged (its facts kept in
``data/soap.json``), gets a session whose page works; deposits are refused clearly."""

from __future__ import annotations

import httpx

from kassa.kit.db import Database
from tests.compat.conftest import seed_facts
from tests.helpers import KassaServer, create_wallet, deposit, make_tenant
from tests.payouts.conftest import add_instrument, set_options

FACTS = seed_facts("soap")
OPTION = {
    "code": "BANK_TRANSFER",
    "instrument_types": ["SEPA_BANK_ACCOUNT"],
    "currencies": ["USD"],
    "connector": "manual",
}


async def test_the_seed_request_gets_a_working_page(server: KassaServer, db: Database) -> None:
    tenant = await make_tenant(db, "USD")
    example = FACTS["request"]["example"]
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=60
    ) as api:
        await set_options(api, OPTION)
        # The customer's wallet at Kassa, named by the id Soap's example sends.
        wallet = await create_wallet(api, "USD", customer_id=example["customer_id"])
        await deposit(api, wallet["id"], 50_000)
        await add_instrument(api, example["customer_id"])
        made = await api.post(
            "/compat/soap" + FACTS["path"],
            json=example,
            headers={**FACTS["headers"], "Authorization": tenant.key},  # the raw key, as Soap
        )
        assert made.status_code == 200, made.text
        checkout = made.json()
        for field in ("id", "url", "client_secret", "type", "experience", "balance_amount_cents"):
            assert field in checkout, field
        assert checkout["id"].startswith("chk_")
        assert checkout["type"] == "withdrawal"
        assert checkout["balance_amount_cents"] == example["balance_amount_cents"]
        assert (checkout["line_items"], checkout["subscription"]) == ([], None)
        page = await api.get(checkout["url"])
        assert page.status_code == 200
        assert "$100.00" in page.text  # the lower of the cap (10,000 cents) and the balance
        native = await api.get("/v1/checkouts", params={"customer_id": example["customer_id"]})
        assert [item["max_amount"] for item in native.json()["data"]] == [10_000]

        refused = await api.post(
            "/compat/soap" + FACTS["path"], json={**example, "type": "deposit"}
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "deposits_not_offered"
        unknown = await api.post(
            "/compat/soap" + FACTS["path"],
            json=example,
            headers={"Authorization": "ksk_nope_nope"},
        )
        assert unknown.status_code == 401
        assert "error" in unknown.json()
