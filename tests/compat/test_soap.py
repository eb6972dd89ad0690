"""The Soap dialect's checkout: the seed's example request, sent unchanged (its facts kept in
``data/soap.json``), gets a session whose page works; deposits are refused clearly; a
Soap-format webhook endpoint receives ``checkout.succeeded``."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from pathlib import Path

import httpx

from kassa.kit.db import Database
from tests.compat.conftest import seed_facts
from tests.helpers import KassaServer, create_wallet, deposit, make_tenant, start_server
from tests.payouts.conftest import add_instrument, set_options
from tests.webhooks.receiver import running_receiver

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


async def test_a_soap_format_endpoint_gets_checkout_succeeded(
    backend: str, fresh_database_url: str, tmp_path: Path, db: Database
) -> None:
    """A real receiver verifies ``SOAP-WEBHOOK-SIGNATURE`` as Soap's receivers do: HMAC-SHA256
    of ``"<t>.<raw body>"`` under the secret, hex, with ``t`` close to now."""
    database = Database(fresh_database_url)
    await database.open()
    try:
        tenant = await make_tenant(database, "USD")
    finally:
        await database.close()
    mode = "auto" if backend == "sqlite" else "on"
    example = FACTS["request"]["example"]
    with (
        running_receiver() as receiver,
        start_server(fresh_database_url, tmp_path, workers=1, KASSA_WORKER=mode) as running,
    ):
        async with httpx.AsyncClient(
            base_url=running.url, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=60
        ) as api:
            hook = await api.post(
                "/v1/webhook-endpoints", json={"url": receiver.url, "format": "soap"}
            )
            assert hook.status_code == 201, hook.text
            assert sorted(hook.json()["event_types"]) == ["checkout.completed", "checkout.expired"]
            secret = hook.json()["secret"]
            await set_options(api, OPTION)
            wallet = await create_wallet(api, "USD", customer_id=example["customer_id"])
            await deposit(api, wallet["id"], 50_000)
            await add_instrument(api, example["customer_id"])
            made = await api.post(
                "/compat/soap" + FACTS["path"], json=example, headers={"Authorization": tenant.key}
            )
            assert made.status_code == 200, made.text
            url = made.json()["url"]
            page = await api.get(url)
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            method = re.search(r'name="method" value="([^"]+)"', page.text)
            assert csrf is not None
            assert method is not None
            form = {"csrf": csrf[1], "amount": "25", "method": method[1], "action": "confirm"}
            done = await api.post(url, data=form)
            assert done.status_code == 200, done.text
            assert "Withdrawal confirmed" in done.text
            assert await asyncio.to_thread(receiver.wait_for, 1, 60), running.log_path.read_text()
    (request,) = receiver.received
    header = request.headers["soap-webhook-signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(time.time() - int(parts["t"])) < 300
    event = json.loads(request.body)
    assert event["type"] == "checkout.succeeded"
    assert event["data"]["id"] == made.json()["id"]
    assert event["data"]["type"] == "withdrawal"
    assert event["data"]["customer"] == {"id": example["customer_id"]}
    charge = event["data"]["charge"]
    assert (charge["status"], charge["amount_cents"], charge["transaction_type"]) == (
        "succeeded",
        2_500,
        "debit",
    )
    assert event["data"]["line_items"] == []


async def test_a_soap_customer_names_its_kassa_customer(server: KassaServer, db: Database) -> None:
    tenant = await make_tenant(db, "USD")
    async with (
        httpx.AsyncClient(
            base_url=server.url + "/compat/soap/api/v1", headers={"Authorization": tenant.key}
        ) as soap,
        httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {tenant.key}"}
        ) as api,
    ):
        person = {"email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace"}
        made = await soap.post("/customers", json={**person, "internal_id": "user-1042"})
        assert made.status_code == 200, made.text
        customer = made.json()
        assert customer["id"].startswith("cus_")
        assert (customer["internal_id"], customer["phone_number"]) == ("user-1042", None)
        again = await soap.post("/customers", json={**person, "email": "ada@example.COM"})
        assert again.status_code == 422
        assert again.json()["error"]["code"] == "customer_email_taken"
        bad = await soap.post("/customers", json={"email": "nobody", "first_name": "x"})
        assert bad.status_code == 422
        assert {item["field"] for item in bad.json()["error"]["fields"]} == {"last_name", "email"}
        # A checkout for the cus_ id reaches the wallet of its internal_id.
        wallet = await create_wallet(api, "USD", customer_id="user-1042")
        await deposit(api, wallet["id"], 5_000)
        checkout = await soap.post(
            "/checkouts",
            json={
                "customer_id": customer["id"],
                "type": "withdrawal",
                "balance_amount_cents": 1_000,
                "return_url": "https://example.com/back",
            },
        )
        assert checkout.status_code == 200, checkout.text
        native = await api.get("/v1/checkouts", params={"customer_id": "user-1042"})
        assert [item["wallet_id"] for item in native.json()["data"]] == [wallet["id"]]
