"""The Salla dialect against its OpenAPI document: the schemas and examples in data/salla.json."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from jsonschema import Draft7Validator

from kassa.kit.db import Database
from tests.compat.conftest import funded_wallet, json_type, seed_facts
from tests.helpers import TenantKey, get_wallet, make_tenant

SPEC = seed_facts("salla")
RESPONSES = SPEC["responses"]
REQUEST_EXAMPLE = SPEC["request"]["example"]
BASE = f"/compat/salla{SPEC['base_path']}"
WITHDRAW = f"{BASE}{SPEC['path']}"


def validate(response: httpx.Response) -> dict[str, Any]:
    """The response is valid against the document's schema for its status (and its types are
    those of the document's example)."""
    documented = RESPONSES[str(response.status_code)]
    schema = {**documented["schema"], "components": SPEC["components"]}
    body: dict[str, Any] = response.json()
    errors = [error.message for error in Draft7Validator(schema).iter_errors(body)]
    assert errors == [], (response.status_code, body, errors)
    assert response.headers["content-type"].startswith(SPEC["content_type"])
    same_shape(documented["example"], body, response.status_code)
    return body


def same_shape(example: dict[str, Any], body: dict[str, Any], status: int) -> None:
    """Every member of the document's example is in the answer with the same JSON type, except
    where the example contradicts its own schema (the 403 example's string code: the schema's
    integer wins) or stands for a field name ('{field-name}')."""
    for key, value in example.items():
        if key == "{field-name}":
            continue
        assert key in body, (key, body)
        if status == 403 and key == "code":
            continue
        if isinstance(value, dict):
            same_shape(value, body[key], status)
        else:
            assert json_type(body[key]) == json_type(value), (key, body[key], value)


async def salla(
    client: httpx.AsyncClient, key: str | None, body: Any, **headers: str
) -> httpx.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return await client.post(WITHDRAW, json=body, headers=headers)


def test_the_seed_facts_are_read() -> None:
    assert SPEC["method"] == "POST"
    assert WITHDRAW == "/compat/salla/admin/v2/customers/wallets/withdraw"
    assert set(RESPONSES) == {"200", "401", "403", "422"}
    assert REQUEST_EXAMPLE == {"customer_id": 1994632444, "amount": 22}
    request = {**SPEC["request"]["schema"], "components": SPEC["components"]}
    assert list(Draft7Validator(request).iter_errors(REQUEST_EXAMPLE)) == []


async def test_the_documents_example_withdraws(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    customer = str(REQUEST_EXAMPLE["customer_id"])
    wallet = await funded_wallet(native, customer, 50_000)

    response = await salla(plain, sar.key, REQUEST_EXAMPLE)
    assert response.status_code == 200, response.text
    body = validate(response)
    data = body["data"]
    assert body["status"] == 200
    assert body["success"] is True
    assert data["status"] == "confirmed"
    assert data["amount"] == data["amount_float"] == -22
    after = await get_wallet(native, wallet["id"])
    assert after["balance"] == 50_000 - 2_200
    assert data["wallet"] == {
        "id": int(wallet["alias"]),
        "balance": 478,
        "created_at": datetime.fromisoformat(wallet["created_at"])
        .astimezone(ZoneInfo("Asia/Riyadh"))
        .strftime("%Y-%m-%d %H:%M:%S"),
    }
    assert data["date"]["timezone"] == "Asia/Riyadh"
    assert data["date"]["timezone_type"] == 3
    stamped = datetime.strptime(data["date"]["date"], "%Y-%m-%d %H:%M:%S.%f").replace(
        tzinfo=ZoneInfo("Asia/Riyadh")
    )
    assert abs((datetime.now(ZoneInfo("Asia/Riyadh")) - stamped).total_seconds()) < 120
    # The same journal transaction as /v1 shows, with its event.
    (transaction,) = (
        await native.get(f"/v1/wallets/{wallet['id']}/transactions", params={"kind": "withdrawal"})
    ).json()["data"]
    assert transaction["amount"] == 2_200
    events = (await native.get("/v1/events", params={"type": "wallet.debited"})).json()["data"]
    assert [event["data"]["id"] for event in events] == [transaction["id"]]


async def test_amounts_are_exact_major_units(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    wallet = await funded_wallet(native, "1001", 10_000)
    response = await salla(plain, sar.key, {"customer_id": 1001, "amount": 12.5})
    body = validate(response)
    assert body["data"]["amount"] == -12.5
    assert body["data"]["wallet"]["balance"] == 87.5
    assert (await get_wallet(native, wallet["id"]))["balance"] == 8_750
    # 22.123 SAR has more decimals than SAR's two: refused, never rounded.
    refused = await salla(plain, sar.key, {"customer_id": 1001, "amount": 22.123})
    assert refused.status_code == 422
    assert "amount" in validate(refused)["error"]["fields"]
    deposited = await plain.post(
        f"{BASE}/customers/wallets/deposit",
        json={"customer_id": 1001, "amount": 0.5},
        headers={"Authorization": f"Bearer {sar.key}"},
    )
    assert deposited.status_code == 200, deposited.text
    assert deposited.json()["data"]["amount"] == 0.5
    assert (await get_wallet(native, wallet["id"]))["balance"] == 8_800


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"customer_id", "amount"}),
        ({"customer_id": 1002}, {"amount"}),
        ({"customer_id": 1002, "amount": "lots"}, {"amount"}),
        ({"customer_id": 1002, "amount": 0}, {"amount"}),
        ({"customer_id": 1002, "amount": -5}, {"amount"}),
        ({"customer_id": 1.5, "amount": 5}, {"customer_id"}),
        ({"customer_id": 1002, "amount": 10**14}, {"amount"}),
        ({"customer_id": 999_999_999, "amount": 5}, {"customer_id"}),  # no such customer
        ({"customer_id": 1002, "amount": 1_000}, {"amount"}),  # more than the wallet holds
        ([1, 2], {"request"}),
    ],
)
async def test_refusals_are_422_with_each_fields_messages(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey, body: Any, fields: set[str]
) -> None:
    wallet = await funded_wallet(native, "1002", 10_000)
    response = await salla(plain, sar.key, body)
    assert response.status_code == 422, response.text
    error = validate(response)["error"]
    assert error["code"] == "validation_failed"
    assert error["message"] == "Validation is not successfull"
    assert set(error["fields"]) == fields
    assert all(isinstance(m, str) for messages in error["fields"].values() for m in messages)
    assert (await get_wallet(native, wallet["id"]))["balance"] == 10_000


async def test_malformed_json_is_a_422(plain: httpx.AsyncClient, sar: TenantKey) -> None:
    response = await plain.post(
        WITHDRAW,
        content=b'{"customer_id": ',
        headers={"Authorization": f"Bearer {sar.key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    validate(response)


async def test_without_a_valid_key_or_the_scope_it_is_401(
    plain: httpx.AsyncClient, db: Database, native: httpx.AsyncClient
) -> None:
    await funded_wallet(native, "1003")
    for key in (None, "ksk_nope_nope", "not-a-key"):
        response = await salla(plain, key, {"customer_id": 1003, "amount": 1})
        assert response.status_code == 401
        assert validate(response)["error"]["code"] == "Unauthorized"
    unscoped = await make_tenant(db, "SAR", scopes=["wallets:read", "wallets:write"])
    response = await salla(plain, unscoped.key, {"customer_id": 1003, "amount": 1})
    assert response.status_code == 401
    # The document's own example names the scope the key lacks.
    assert validate(response)["error"]["message"] == RESPONSES["401"]["example"]["error"]["message"]


async def test_a_frozen_wallet_is_403(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    wallet = await funded_wallet(native, "1004")
    assert (await native.post(f"/v1/wallets/{wallet['id']}/freeze", json={})).status_code == 200
    response = await salla(plain, sar.key, {"customer_id": 1004, "amount": 1})
    assert response.status_code == 403
    error = validate(response)["error"]
    assert error["code"] == 403
    assert "frozen" in error["message"]
    assert (await get_wallet(native, wallet["id"]))["balance"] == 10_000


async def test_another_tenants_customer_is_not_found(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, db: Database
) -> None:
    wallet = await funded_wallet(native, "1005")
    other = await make_tenant(db, "SAR", timezone="Asia/Riyadh")
    response = await salla(plain, other.key, {"customer_id": 1005, "amount": 1})
    assert response.status_code == 422
    assert set(validate(response)["error"]["fields"]) == {"customer_id"}
    assert (await get_wallet(native, wallet["id"]))["balance"] == 10_000


async def test_an_idempotency_key_replays_and_moves_money_once(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    wallet = await funded_wallet(native, "1006")
    key = f"salla-{uuid.uuid4()}"
    body = {"customer_id": 1006, "amount": 10}
    answers = await asyncio.gather(
        *(salla(plain, sar.key, body, **{"Idempotency-Key": key}) for _ in range(10))
    )
    done = [a for a in answers if a.status_code == 200]
    assert done
    assert all(a.status_code in (200, 409) for a in answers)
    assert len({a.content for a in done}) == 1
    later = await salla(plain, sar.key, body, **{"Idempotency-Key": key})
    assert later.status_code == 200
    assert later.headers["idempotent-replayed"] == "true"
    assert later.content == done[0].content
    validate(later)
    assert (await get_wallet(native, wallet["id"]))["balance"] == 9_000
    reused = await salla(plain, sar.key, {**body, "amount": 11}, **{"Idempotency-Key": key})
    assert reused.status_code == 422
    assert "Idempotency-Key" in validate(reused)["error"]["fields"]
