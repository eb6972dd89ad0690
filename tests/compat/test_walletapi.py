"""The WalletAPI dialect against its document: every member of the example's envelope and
wallet, with the example's JSON types (the examples are in data/walletapi.json)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx

from kassa.kit.db import Database
from tests.compat.conftest import funded_wallet, json_type, seed_facts
from tests.helpers import TenantKey, get_wallet, make_tenant

FACTS = seed_facts("walletapi")
WITHDRAW = f"/compat/walletapi{FACTS['path']}"
REQUEST_EXAMPLE = FACTS["request"]["example"]
RESPONSE_EXAMPLE = FACTS["response"]["example"]


def headers(tenant: TenantKey, **extra: str) -> dict[str, str]:
    return {"apikeypublic": tenant.key, "apiclientpublic": str(tenant.tenant_id), **extra}


def same_types(example: dict[str, Any], body: dict[str, Any]) -> None:
    assert set(body) == set(example), set(body) ^ set(example)
    for key, value in example.items():
        if value is None:  # FrozenUntil: null, or a date when frozen
            assert body[key] is None or isinstance(body[key], str)
        else:
            assert json_type(body[key]) == json_type(value), (key, body[key], value)


def test_the_seed_examples_are_read() -> None:
    assert (FACTS["method"], WITHDRAW) == ("POST", "/compat/walletapi/api/v1/wallet/withdraw")
    assert FACTS["headers"]["required"] == ["apikeypublic", "apiclientpublic"]
    assert set(REQUEST_EXAMPLE) == set(FACTS["request"]["fields"])
    assert set(REQUEST_EXAMPLE) == {"Id", "Amount", "Description", "ExternalReference"}
    assert set(RESPONSE_EXAMPLE) == set(FACTS["response"]["fields"])
    assert set(RESPONSE_EXAMPLE) == {"Value", "Errors", "IsSuccess", "IsFailure"}
    assert set(RESPONSE_EXAMPLE["Value"]) == set(FACTS["response_value"]["fields"])
    assert len(RESPONSE_EXAMPLE["Value"]) == 17
    # The example writes its amounts with two decimals, as the answers must.
    written = seed_facts("walletapi", parse_float=Decimal)["response"]["example"]["Value"]
    assert str(written["Balance"]) == str(written["AvailableBalance"]) == "1.00"


async def test_the_documents_example_withdraws(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    wallet = await funded_wallet(native, f"owner-{uuid.uuid4().hex[:6]}", 500)
    body = {**REQUEST_EXAMPLE, "Id": wallet["id"], "ExternalReference": f"ext-{uuid.uuid4()}"}
    response = await plain.post(WITHDRAW, json=body, headers=headers(sar))
    assert response.status_code == 200, response.text
    answer = response.json()
    same_types(RESPONSE_EXAMPLE, answer)
    same_types(RESPONSE_EXAMPLE["Value"], answer["Value"])
    assert answer["Errors"] == []
    assert answer["IsSuccess"] is True
    assert answer["IsFailure"] is False
    value = answer["Value"]
    after = await get_wallet(native, wallet["id"])
    assert after["balance"] == 400
    (transaction,) = (
        await native.get(f"/v1/wallets/{wallet['id']}/transactions", params={"kind": "withdrawal"})
    ).json()["data"]
    assert value["TransactionId"] == transaction["id"]
    assert transaction["reference"] == body["ExternalReference"]
    assert transaction["description"] == "description"
    assert value["Id"] == wallet["id"]
    assert value["WalletOwnerId"] == wallet["customer_id"]
    assert value["Name"] == "juzdan1"
    assert value["Alias"] == wallet["alias"]
    assert value["CurrencyCode"] == "SAR"
    assert value["Balance"] == value["AvailableBalance"] == 4.0
    assert value["TotalGiftBalance"] == value["BlockedBalance"] == 0
    assert value["IsFrozen"] is False
    assert value["IsDeleted"] is False
    assert value["FrozenUntil"] is None
    assert value["CreatedAt"] == wallet["created_at"]
    # Amounts are written with the currency's decimals, as the example's 1.00.
    assert b'"Balance":4.00' in response.content


async def test_field_names_match_whatever_their_case(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    wallet = await funded_wallet(native, f"owner-{uuid.uuid4().hex[:6]}", 500)
    response = await plain.post(
        WITHDRAW, json={"id": wallet["id"], "amount": 1.25}, headers=headers(sar)
    )
    assert response.status_code == 200, response.text
    assert (await get_wallet(native, wallet["id"]))["balance"] == 375


async def test_refusals_use_the_envelope(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey, db: Database
) -> None:
    wallet = await funded_wallet(native, f"owner-{uuid.uuid4().hex[:6]}", 500)
    other = await make_tenant(db, "SAR")
    reference = f"ext-{uuid.uuid4()}"
    ok = await plain.post(
        WITHDRAW,
        json={"Id": wallet["id"], "Amount": 1, "ExternalReference": reference},
        headers=headers(sar),
    )
    assert ok.status_code == 200
    cases: list[tuple[dict[str, Any], dict[str, str], int]] = [
        ({"Id": wallet["id"], "Amount": 1}, {}, 401),
        ({"Id": wallet["id"], "Amount": 1}, {"apikeypublic": sar.key}, 401),
        (
            {"Id": wallet["id"], "Amount": 1},
            headers(sar, apiclientpublic=str(other.tenant_id)),
            401,
        ),
        ({"Id": wallet["id"], "Amount": 1}, headers(other), 404),  # another tenant's wallet
        ({"Id": str(uuid.uuid4()), "Amount": 1}, headers(sar), 404),
        ({"Id": "not-a-guid", "Amount": 1}, headers(sar), 400),
        ({"Id": wallet["id"], "Amount": "1"}, headers(sar), 400),
        ({"Id": wallet["id"], "Amount": 0}, headers(sar), 400),
        ({"Id": wallet["id"], "Amount": 1.005}, headers(sar), 400),
        ({"Id": wallet["id"], "Amount": 100}, headers(sar), 409),  # more than it holds
        ({"Id": wallet["id"], "Amount": 1, "ExternalReference": reference}, headers(sar), 409),
    ]
    for body, sent, status in cases:
        response = await plain.post(WITHDRAW, json=body, headers=sent)
        assert response.status_code == status, (body, sent, response.text)
        answer = response.json()
        same_types({**RESPONSE_EXAMPLE, "Value": None}, answer)
        assert answer["Value"] is None
        assert answer["IsSuccess"] is False
        assert answer["IsFailure"] is True
        assert answer["Errors"]
        assert all(isinstance(message, str) for message in answer["Errors"])
    assert (await get_wallet(native, wallet["id"]))["balance"] == 400


async def test_an_idempotency_key_replays_and_moves_money_once(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    wallet = await funded_wallet(native, f"owner-{uuid.uuid4().hex[:6]}", 500)
    key = f"walletapi-{uuid.uuid4()}"
    body = {"Id": wallet["id"], "Amount": 2}
    answers = await asyncio.gather(
        *(
            plain.post(WITHDRAW, json=body, headers=headers(sar, **{"Idempotency-Key": key}))
            for _ in range(10)
        )
    )
    assert all(a.status_code in (200, 409) for a in answers)
    done = [a for a in answers if a.status_code == 200]
    assert len({a.content for a in done}) == 1
    later = await plain.post(WITHDRAW, json=body, headers=headers(sar, **{"Idempotency-Key": key}))
    assert later.headers["idempotent-replayed"] == "true"
    assert later.content == done[0].content
    assert (await get_wallet(native, wallet["id"]))["balance"] == 300
