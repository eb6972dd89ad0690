"""Payment instruments: checked, stored and shown only masked, never logged whole."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select

from kassa.app import create_app
from kassa.auth.tables import tenants
from kassa.config import Settings
from kassa.kit.db import Database
from kassa.kit.secretbox import new_operator_key
from tests.helpers import KassaServer, TenantKey, make_tenant
from tests.payouts.conftest import CARD, IBAN, add_instrument

VALID: list[dict[str, Any]] = [
    {"type": "SEPA_BANK_ACCOUNT", "iban": IBAN, "bic": "COBADEFFXXX"},
    {"type": "UK_BANK_ACCOUNT", "sort_code": "20-00-00", "account_number": "55779911"},
    {"type": "US_BANK_ACCOUNT", "routing_number": "011000015", "account_number": "123456789"},
    {"type": "CCI_BANK_ACCOUNT", "cci": "00219300123456789012"},
    {"type": "CARD", "card_number": CARD, "expiry_month": 12, "expiry_year": 2099},
]
SECRETS = {
    "SEPA_BANK_ACCOUNT": "DE89370400440532013000",
    "UK_BANK_ACCOUNT": "55779911",
    "US_BANK_ACCOUNT": "123456789",
    "CCI_BANK_ACCOUNT": "00219300123456789012",
    "CARD": "4111111111111111",
}


@pytest.mark.parametrize("body", VALID, ids=[b["type"] for b in VALID])
async def test_each_type_is_stored_masked(
    api: httpx.AsyncClient, db: Database, server: KassaServer, body: dict[str, Any]
) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    instrument = await add_instrument(api, customer, verify=False, **body)
    assert instrument["status"] == "unverified"
    assert instrument["type"] == body["type"]
    secret = SECRETS[body["type"]]
    assert instrument["last4"] == secret[-4:]
    assert secret not in str(instrument)
    assert "\u2022" in instrument["display"]

    # Not in any table, not in the server's log.
    dump = await everything(db)
    assert secret not in dump
    assert secret[:-4] not in dump or len(secret[:-4]) < 6
    assert secret not in server.log_path.read_text()

    shown = await api.get(f"/v1/customers/{customer}/instruments/{instrument['id']}")
    assert shown.json() == instrument
    verified = await api.post(f"/v1/customers/{customer}/instruments/{instrument['id']}/verify")
    assert verified.json()["status"] == "verified"
    listed = (await api.get(f"/v1/customers/{customer}/instruments")).json()["data"]
    assert [i["id"] for i in listed] == [instrument["id"]]
    deleted = await api.delete(f"/v1/customers/{customer}/instruments/{instrument['id']}")
    assert deleted.json() == {"id": instrument["id"], "deleted": True}
    gone = await api.get(f"/v1/customers/{customer}/instruments/{instrument['id']}")
    assert gone.status_code == 404


async def everything(db: Database) -> str:
    """Every value of every table, as text."""
    found = MetaData()
    async with db.read() as conn:
        await conn.run_sync(found.reflect)
        rows: list[str] = []
        for table in found.sorted_tables:
            rows.extend(str(tuple(row)) for row in (await conn.execute(select(table))).all())
    return "\n".join(rows)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "SEPA_BANK_ACCOUNT", "iban": "DE89 3704 0044 0532 0130 01"}, "iban"),
        ({"type": "SEPA_BANK_ACCOUNT"}, "iban"),
        (
            {
                "type": "CARD",
                "card_number": "4111 1111 1111 1112",
                "expiry_month": 1,
                "expiry_year": 2099,
            },
            "card_number",
        ),
        (
            {"type": "CARD", "card_number": CARD, "expiry_month": 13, "expiry_year": 2099},
            "expiry_month",
        ),
        (
            {"type": "CARD", "card_number": CARD, "expiry_month": 1, "expiry_year": 2001},
            "expiry_year",
        ),
        (
            {"type": "UK_BANK_ACCOUNT", "sort_code": "20-00", "account_number": "55779911"},
            "sort_code",
        ),
        (
            {"type": "US_BANK_ACCOUNT", "routing_number": "011000016", "account_number": "12345"},
            "routing_number",
        ),
        ({"type": "CCI_BANK_ACCOUNT", "cci": "123"}, "cci"),
        (
            {
                "type": "CARD",
                "iban": IBAN,
                "card_number": CARD,
                "expiry_month": 1,
                "expiry_year": 2099,
            },
            "iban",
        ),
        ({"type": "CHEQUE"}, "type"),
    ],
)
async def test_invalid_numbers_are_422_with_the_field(
    api: httpx.AsyncClient, db: Database, server: KassaServer, body: dict[str, Any], field: str
) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    response = await api.post(
        f"/v1/customers/{customer}/instruments", json={"holder_name": "Ada", **body}
    )
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    for value in body.values():
        if isinstance(value, str) and len(value) > 12:
            assert value.replace(" ", "") not in response.text.replace(" ", "")
    assert (await api.get(f"/v1/customers/{customer}/instruments")).json()["data"] == []
    number = str(body.get("card_number") or body.get("iban") or "").replace(" ", "")
    if number:
        assert number not in await everything(db)
        assert number not in server.log_path.read_text()


async def test_another_tenants_instruments_are_not_found(
    api: httpx.AsyncClient, db: Database, server: KassaServer
) -> None:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    instrument = await add_instrument(api, customer)
    other = await make_tenant(db)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {other.key}"}
    ) as theirs:
        path = f"/v1/customers/{customer}/instruments/{instrument['id']}"
        assert (await theirs.get(path)).status_code == 404
        assert (await theirs.post(path + "/verify")).status_code == 404
        assert (await theirs.delete(path)).status_code == 404
        assert (await theirs.get(f"/v1/customers/{customer}/instruments")).json()["data"] == []


async def test_fingerprints_match_within_a_tenant_and_never_across(
    api: httpx.AsyncClient, db: Database, server: KassaServer, tenant: TenantKey
) -> None:
    alice, bob = (f"cust-{uuid.uuid4().hex[:8]}" for _ in range(2))
    card = {"type": "CARD", "expiry_month": 12, "expiry_year": 2099}
    # The tenant has no fingerprint key yet: concurrent first instruments agree on one.
    first = await asyncio.gather(
        *(add_instrument(api, alice, verify=False, card_number=CARD, **card) for _ in range(6))
    )
    assert len({instrument["fingerprint"] for instrument in first}) == 1
    fingerprint = first[0]["fingerprint"]
    assert re.fullmatch(r"[0-9a-f]{32}", fingerprint)
    # Not a plain hash of the number, which anyone could compute from every card number.
    assert fingerprint != hashlib.sha256(b"CARD:4111111111111111").hexdigest()[:32]

    spaced = await add_instrument(api, bob, verify=False, card_number="4111111111111111", **card)
    assert spaced["fingerprint"] == fingerprint  # the same card, another customer
    other_card = await add_instrument(
        api, bob, verify=False, card_number="5555 5555 5555 4444", **card
    )
    assert other_card["fingerprint"] != fingerprint
    iban = await add_instrument(api, alice, verify=False)
    same_iban = await add_instrument(
        api, bob, verify=False, type="SEPA_BANK_ACCOUNT", iban=IBAN.replace(" ", "").lower()
    )
    assert iban["fingerprint"] == same_iban["fingerprint"] != fingerprint

    other = await make_tenant(db)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {other.key}"}
    ) as theirs:
        elsewhere = await add_instrument(theirs, alice, verify=False, card_number=CARD, **card)
    assert elsewhere["fingerprint"] != fingerprint

    async with db.read() as conn:
        sealed = await conn.scalar(
            select(tenants.c.fingerprint_key).where(tenants.c.id == tenant.tenant_id)
        )
    assert sealed is not None
    assert sealed.startswith(b"gAAAAA")  # a Fernet token: encrypted with the operator's key


async def test_a_fingerprint_key_that_does_not_open_is_503_and_a_keyed_retry_works_later(
    fresh_database_url: str,
) -> None:
    made_with, other = new_operator_key(), new_operator_key()
    db = Database(fresh_database_url)
    await db.open()
    try:
        tenant = await make_tenant(db)
    finally:
        await db.close()

    async def create(secret_key: str, key: str) -> httpx.Response:
        settings = Settings(database_url=fresh_database_url, worker="off", secret_key=secret_key)
        app = create_app(settings)
        async with (
            app.lifespan(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://kassa.test",
                headers={"Authorization": f"Bearer {tenant.key}", "Idempotency-Key": key},
            ) as client,
        ):
            return await client.post(
                "/v1/customers/c1/instruments",
                json={"holder_name": "Ada", "type": "SEPA_BANK_ACCOUNT", "iban": IBAN},
            )

    assert (await create(made_with, "first")).status_code == 201  # the tenant's key is made
    refused = await create(other, "second")  # the operator lost the key it was made with
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "secrets_unavailable"
    retried = await create(f"{other},{made_with}", "second")  # the old key is back
    assert retried.status_code == 201, retried.text  # the 503 was not stored under the key
    assert "idempotent-replayed" not in {name.lower() for name in retried.headers}
