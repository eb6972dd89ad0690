"""The Soap dialect's checkout: the seed's example request, sent unchanged (its facts kept in
``data/soap.json``), gets a session whose page works; deposits are refused clearly; a
Soap-format webhook endpoint receives ``checkout.succeeded``, and ``checkout.failed`` when the
checkout's payout fails (and nothing for another payout's failure).

Mutation tried: ``soap_format.sends`` answering True for every ``payout.failed``: caught (the
other payout's failure is attempted, and fails inside Kassa, instead of being canceled)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from kassa.kit.db import Database
from tests.compat.conftest import seed_facts
from tests.helpers import KassaServer, create_wallet, deposit, make_tenant, start_server
from tests.payouts.conftest import add_instrument, set_options
from tests.webhooks.receiver import Received, running_receiver

FACTS = seed_facts("soap")
OPTION = {
    "code": "BANK_TRANSFER",
    "instrument_types": ["SEPA_BANK_ACCOUNT"],
    "currencies": ["USD"],
    "connector": "manual",
}


async def _withdraw_on_the_page(
    api: httpx.AsyncClient, key: str, example: dict[str, Any]
) -> tuple[dict[str, Any], httpx.Response]:
    """The Soap request sent as Soap's clients send it (the session it made), then 25.00
    confirmed on its page (the answer)."""
    made = await api.post(
        "/compat/soap" + FACTS["path"], json=example, headers={"Authorization": key}
    )
    assert made.status_code == 200, made.text
    url = made.json()["url"]
    page = await api.get(url)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    method = re.search(r'name="method" value="([^"]+)"', page.text)
    assert csrf is not None
    assert method is not None
    form = {"csrf": csrf[1], "amount": "25", "method": method[1], "action": "confirm"}
    return made.json(), await api.post(url, data=form)


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
            assert sorted(hook.json()["event_types"]) == [
                "checkout.completed",
                "checkout.expired",
                "payout.failed",
            ]
            secret = hook.json()["secret"]
            await set_options(api, OPTION)
            wallet = await create_wallet(api, "USD", customer_id=example["customer_id"])
            await deposit(api, wallet["id"], 50_000)
            await add_instrument(api, example["customer_id"])
            made, done = await _withdraw_on_the_page(api, tenant.key, example)
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
    assert event["data"]["id"] == made["id"]
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


def _verified(request: Received, secret: str) -> Any:
    """The body of a request whose ``SOAP-WEBHOOK-SIGNATURE`` checks out as Soap's receivers
    check it: HMAC-SHA256 of ``"<t>.<raw body>"`` under the secret, hex, ``t`` close to now."""
    header = request.headers["soap-webhook-signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(time.time() - int(parts["t"])) < 300
    return json.loads(request.body)


async def _settled_delivery(api: httpx.AsyncClient, event_id: str) -> str:
    """The status of the event's one delivery once the worker has dealt with it."""
    for _ in range(120):
        deliveries = (await api.get(f"/v1/events/{event_id}/deliveries")).json()["data"]
        assert len(deliveries) == 1, deliveries
        if deliveries[0]["status"] != "pending":
            return str(deliveries[0]["status"])
        await asyncio.sleep(0.5)
    raise AssertionError(f"the delivery of {event_id} stayed pending")


async def test_a_soap_format_endpoint_gets_checkout_failed_when_its_payout_fails(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    """The checkout's payout (manual rail) is failed by the merchant after the customer
    confirmed: the endpoint gets ``checkout.failed`` in the body shape of
    ``checkout.succeeded``; another payout's failure is not sent (its delivery is canceled)."""
    database = Database(fresh_database_url)
    await database.open()
    try:
        tenant = await make_tenant(database, "USD")
    finally:
        await database.close()
    mode = "auto" if backend == "sqlite" else "on"
    example = FACTS["request"]["example"]
    customer = example["customer_id"]
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
            secret = hook.json()["secret"]
            await set_options(api, OPTION)
            wallet = await create_wallet(api, "USD", customer_id=customer)
            await deposit(api, wallet["id"], 50_000)
            instrument = await add_instrument(api, customer)
            # A payout of the merchant's own (no checkout) that fails: not Soap's business.
            other = await api.post(
                "/v1/payouts",
                json={
                    "wallet_id": wallet["id"],
                    "amount": 1_000,
                    "payment_option": "BANK_TRANSFER",
                    "instrument_id": instrument["id"],
                    "reference": "order-1042",
                },
            )
            assert other.status_code == 201, other.text
            for status in ("PENDING", "PROCESSING", "FAILED"):
                moved = await api.post(
                    f"/v1/payouts/{other.json()['id']}/status",
                    json={"status": status, "reason": "ACCOUNT_CLOSED"}
                    if status == "FAILED"
                    else {"status": status},
                )
                assert moved.status_code == 200, moved.text
            # The customer withdraws through the Soap checkout's page.
            made, done = await _withdraw_on_the_page(api, tenant.key, example)
            assert "Withdrawal confirmed" in done.text, done.text
            assert await asyncio.to_thread(receiver.wait_for, 1, 60), running.log_path.read_text()
            # The rail (here the merchant's back office, manual) reports the payout failed.
            (checkout,) = (await api.get("/v1/checkouts", params={"customer_id": customer})).json()[
                "data"
            ]
            failed = await api.post(
                f"/v1/payouts/{checkout['payout_id']}/status",
                json={"status": "FAILED", "reason": "ACCOUNT_CLOSED"},
            )
            assert failed.status_code == 200, failed.text
            assert await asyncio.to_thread(receiver.wait_for, 2, 60), running.log_path.read_text()
            events = (await api.get("/v1/events", params={"type": "payout.failed"})).json()
            (unrelated,) = [e for e in events["data"] if e["data"]["reference"] == "order-1042"]
            assert await _settled_delivery(api, unrelated["id"]) == "canceled"
            wallet_now = (await api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert len(receiver.received) == 2, [request.body for request in receiver.received]
    sent = [_verified(request, secret) for request in receiver.received]
    by_type = {event["type"]: event for event in sent}
    assert sorted(by_type) == ["checkout.failed", "checkout.succeeded"]
    failure = by_type["checkout.failed"]
    succeeded = by_type["checkout.succeeded"]
    assert failure["event_id"] != succeeded["event_id"]
    assert failure["data"] == {
        "id": made["id"],
        "type": "withdrawal",
        "charge": {
            "id": checkout["payout_id"],
            "status": "failed",
            "amount_cents": 2_500,
            "transaction_type": "debit",
        },
        "customer": {"id": customer},
        "line_items": [],
        "line_items_total_amount_cents": None,
    }
    assert {**succeeded["data"], "charge": None} == {**failure["data"], "charge": None}
    # Both payouts failed: their holds were released.
    assert wallet_now["held_balance"] == 0
