"""The Autional dialect against its document: every field of dto.TransactionResponse and
dto.WalletResponse with the document's types (the tables are in data/autional.json)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from kassa.kit.db import Database
from tests.compat.conftest import funded_wallet, json_type, seed_facts
from tests.helpers import TenantKey, get_wallet, make_tenant

FACTS = seed_facts("autional")
TYPES = {"string": "string", "integer": "number", "object": "object"}


def json_types(fields: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A schema's fields and their JSON types; a field holding another schema is an object."""
    return {
        name: "object" if field["type"] in FACTS["schemas"] else TYPES[field["type"]]
        for name, field in fields.items()
    }


SCHEMAS = {name: json_types(fields) for name, fields in FACTS["schemas"].items()}
TRANSACTION = SCHEMAS["dto.TransactionResponse"]
WALLET = SCHEMAS["dto.WalletResponse"]
ENVELOPE = SCHEMAS[FACTS["responses"]["200"]]
SIMPLE_NAME = "gitee_com_linmes_authms_base_dto.SimpleResponse"
SIMPLE = SCHEMAS[SIMPLE_NAME]
EXAMPLE = FACTS["request"]["example"]


def conforms(body: dict[str, Any], schema: dict[str, str]) -> None:
    assert set(body) == set(schema), set(body) ^ set(schema)
    for name, expected in schema.items():
        assert json_type(body[name]) == expected, (name, body[name], expected)


def test_the_seed_tables_are_read() -> None:
    assert (FACTS["method"], FACTS["path"]) == ("POST", "/wallets/{user_id}/withdraw")
    assert len(TRANSACTION) == 12
    assert len(WALLET) == 10
    assert set(ENVELOPE) == {"code", "data", "message", "timestamp"}
    assert set(SIMPLE) == {"code", "message", "timestamp"}
    assert set(SCHEMAS["dto.WithdrawResult"]) == {"transaction", "wallet"}
    request = FACTS["schemas"][FACTS["request"]["schema"]]
    assert set(EXAMPLE) == set(request) == {"amount", "description", "reference_id"}
    assert [name for name, field in request.items() if field["required"]] == ["amount"]
    assert EXAMPLE["amount"] == "50.00"


async def withdraw(
    client: httpx.AsyncClient, key: str | None, user: str, body: Any, **headers: str
) -> httpx.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return await client.post(
        f"/compat/autional/wallets/{user}/withdraw", json=body, headers=headers
    )


async def test_the_documents_example_withdraws(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    user = f"usr_{uuid.uuid4().hex[:6]}"
    wallet = await funded_wallet(native, user, 100_000)
    body = {**EXAMPLE, "reference_id": f"withdraw_{uuid.uuid4().hex[:8]}"}
    response = await withdraw(plain, sar.key, user, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    conforms(answer, ENVELOPE)
    assert answer["code"] == 200
    assert set(answer["data"]) == {"transaction", "wallet"}
    transaction, shown = answer["data"]["transaction"], answer["data"]["wallet"]
    conforms(transaction, TRANSACTION)
    conforms(shown, WALLET)
    assert transaction["amount"] == "50.00"
    assert transaction["balance_before"] == "1000.00"
    assert transaction["balance_after"] == "950.00"
    assert transaction["currency"] == "SAR"
    assert transaction["reference_id"] == body["reference_id"]
    assert transaction["description"] == "Balance withdrawal"
    assert transaction["status"] == "completed"
    assert transaction["wallet_id"] == wallet["id"] == shown["wallet_id"]
    assert shown["balance"] == "950.00"
    assert shown["frozen_balance"] == "0.00"
    assert shown["user_id"] == user
    assert shown["tenant_id"] == str(sar.tenant_id)
    assert shown["status"] == "active"
    native_view = await get_wallet(native, wallet["id"])
    assert Decimal(shown["balance"]) * 100 == native_view["balance"] == 95_000
    (same,) = (
        await native.get(f"/v1/wallets/{wallet['id']}/transactions", params={"kind": "withdrawal"})
    ).json()["data"]
    assert same["id"] == transaction["id"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"amount": "50.001"}, 422),  # more decimals than SAR has: never rounded
        ({"amount": "0"}, 422),
        ({"amount": "0.00"}, 422),
        ({"amount": "-5"}, 422),
        ({"amount": "abc"}, 422),
        ({"amount": "1e3"}, 422),
        ({"amount": "2000.00"}, 409),  # more than the wallet holds
        ({"amount": 50}, 400),  # a number, not the documented string
        ({}, 400),
        ({"amount": "5", "reference_id": 7}, 400),
        ([], 400),
    ],
)
async def test_refusals_are_simple_responses(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey, body: Any, status: int
) -> None:
    user = f"usr_{uuid.uuid4().hex[:6]}"
    wallet = await funded_wallet(native, user, 100_000)
    assert FACTS["responses"][str(status)] == SIMPLE_NAME  # the document lists each refusal
    response = await withdraw(plain, sar.key, user, body)
    assert response.status_code == status, response.text
    answer = response.json()
    conforms(answer, SIMPLE)
    assert answer["code"] == status
    assert (await get_wallet(native, wallet["id"]))["balance"] == 100_000


async def test_auth_cross_tenant_and_repeated_references(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey, db: Database
) -> None:
    user = f"usr_{uuid.uuid4().hex[:6]}"
    wallet = await funded_wallet(native, user, 100_000)
    other = await make_tenant(db, "SAR")
    for key, status in ((None, 401), ("ksk_x_y", 401), (other.key, 404)):
        response = await withdraw(plain, key, user, {"amount": "1.00"})
        assert response.status_code == status, response.text
        conforms(response.json(), SIMPLE)
    body = {"amount": "1.00", "reference_id": f"ref-{uuid.uuid4()}"}
    assert (await withdraw(plain, sar.key, user, body)).status_code == 200
    again = await withdraw(plain, sar.key, user, body)
    assert again.status_code == 409
    conforms(again.json(), SIMPLE)
    assert (await get_wallet(native, wallet["id"]))["balance"] == 99_900


async def test_an_idempotency_key_replays_and_moves_money_once(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    user = f"usr_{uuid.uuid4().hex[:6]}"
    wallet = await funded_wallet(native, user, 100_000)
    key = f"autional-{uuid.uuid4()}"
    answers = await asyncio.gather(
        *(
            withdraw(plain, sar.key, user, {"amount": "3.00"}, **{"Idempotency-Key": key})
            for _ in range(10)
        )
    )
    assert all(a.status_code in (200, 409) for a in answers)
    done = [a for a in answers if a.status_code == 200]
    assert len({a.content for a in done}) == 1
    later = await withdraw(plain, sar.key, user, {"amount": "3.00"}, **{"Idempotency-Key": key})
    assert later.headers["idempotent-replayed"] == "true"
    assert later.content == done[0].content
    reused = await withdraw(plain, sar.key, user, {"amount": "4.00"}, **{"Idempotency-Key": key})
    assert reused.status_code == 422
    conforms(reused.json(), SIMPLE)
    assert (await get_wallet(native, wallet["id"]))["balance"] == 99_700
