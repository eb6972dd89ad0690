"""Idempotency-Key on mutating requests: a retry never moves money twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from kassa.app import create_app
from kassa.config import Settings
from kassa.idempotency import service as idempotency
from kassa.kit.clock import FrozenClock
from kassa.kit.db import Database
from tests.helpers import TenantKey, create_wallet, deposit, get_wallet


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def debited_events(api: httpx.AsyncClient, wallet_id: str) -> int:
    page = (await api.get("/v1/events", params={"type": "wallet.debited", "limit": 100})).json()
    return sum(1 for e in page["data"] if e["data"]["wallet_id"] == wallet_id)


async def test_twenty_concurrent_retries_move_money_once(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1000)
    path = f"/v1/wallets/{wallet['id']}/withdrawals"

    async def attempt() -> httpx.Response:
        return await api.post(path, json={"amount": 30}, headers=keyed("retry-me"))

    answers = await asyncio.gather(*(attempt() for _ in range(20)))
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, [a.text for a in answers]
    created = [a for a in answers if a.status_code == 201]
    assert created, statuses
    assert len({a.content for a in created}) == 1, "every 201 is the same answer"
    assert sum(1 for a in created if "idempotent-replayed" not in a.headers) == 1
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["code"] == "idempotency_key_in_use"

    later = await attempt()
    assert later.status_code == 201
    assert later.headers["idempotent-replayed"] == "true"
    assert later.content == created[0].content
    assert (await get_wallet(api, wallet["id"]))["balance"] == 970
    assert await debited_events(api, wallet["id"]) == 1


async def test_a_key_belongs_to_one_request(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1000)
    path = f"/v1/wallets/{wallet['id']}/withdrawals"
    first = await api.post(path, json={"amount": 10}, headers=keyed("k-1"))
    assert first.status_code == 201

    other_body = await api.post(path, json={"amount": 11}, headers=keyed("k-1"))
    other_path = await api.post(
        f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 10}, headers=keyed("k-1")
    )
    for refused in (other_body, other_path):
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "idempotency_key_reused"
    assert (await get_wallet(api, wallet["id"]))["balance"] == 990


async def test_the_same_json_is_the_same_request(api: httpx.AsyncClient) -> None:
    """Whitespace, member order and string escapes do not make another request; another value
    does. Through the hot path (a withdrawal) and through FastAPI (a wallet)."""
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1000)
    path = f"/v1/wallets/{wallet['id']}/withdrawals"
    json_type = {"Content-Type": "application/json", **keyed("same-json")}
    first = await api.post(path, content=b'{"amount":7,"reference":"r-7"}', headers=json_type)
    assert first.status_code == 201, first.text
    for same in (
        b'{"amount": 7, "reference": "r-7"}',
        b'{\n  "reference": "r-7",\n  "amount": 7\n}\n',
        b'{"amount":7,"reference":"\\u0072-7"}',
    ):
        again = await api.post(path, content=same, headers=json_type)
        assert again.status_code == 201, (same, again.text)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
    for other in (b'{"amount": 8, "reference": "r-7"}', b'{"amount": 7, "reference": "r-8"}'):
        refused = await api.post(path, content=other, headers=json_type)
        assert refused.status_code == 422, (other, refused.text)
        assert refused.json()["code"] == "idempotency_key_reused"
    assert (await get_wallet(api, wallet["id"]))["balance"] == 993

    customer = f"c-{wallet['id'][:8]}"
    key = {"Content-Type": "application/json", **keyed("same-json-wallet")}
    made = await api.post(
        "/v1/wallets",
        content=f'{{"customer_id":"{customer}","currency":"USD"}}'.encode(),
        headers=key,
    )
    assert made.status_code == 201, made.text
    remade = await api.post(
        "/v1/wallets",
        content=f'{{ "currency" : "USD" , "customer_id" : "{customer}" }}'.encode(),
        headers=key,
    )
    assert remade.status_code == 201, remade.text
    assert remade.headers["idempotent-replayed"] == "true"
    assert remade.content == made.content


def test_a_number_is_compared_by_its_text_and_other_bodies_by_their_bytes() -> None:
    same = idempotency.fingerprint("POST", "/p", b'{"a": 7, "b": [1, {"d": 2, "c": 3}]}')
    assert same == idempotency.fingerprint("POST", "/p", b'{"b":[1,{"c":3,"d":2}],"a":7}')
    spellings = [b'{"a": 7}', b'{"a": 7.0}', b'{"a": 7.00}', b'{"a": 7e0}', b'{"a": "7"}']
    assert len({idempotency.fingerprint("POST", "/p", body) for body in spellings}) == 5
    big = b'{"a": 123456789012345678901234567891}'
    assert idempotency.fingerprint("POST", "/p", big) != idempotency.fingerprint(
        "POST", "/p", b'{"a": 123456789012345678901234567890}'
    )
    # Not JSON: byte for byte, and never the same as a JSON body.
    for body in (b"", b"  ", b"amount=7", b'{"a": NaN}', b'{"a": 1} x', b"\xff"):
        assert idempotency.canonical_body(body) == b"B" + body
    assert idempotency.fingerprint("POST", "/p", b"") != idempotency.fingerprint("POST", "/p", b" ")
    assert idempotency.fingerprint("POST", "/p", b"{}") != idempotency.fingerprint(
        "POST", "/p", b""
    )
    assert idempotency.fingerprint("POST", "/p", b"{}") != idempotency.fingerprint(
        "POST", "/q", b"{}"
    )


async def test_a_request_refused_while_parsing_is_not_stored(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 100)
    path = f"/v1/wallets/{wallet['id']}/withdrawals"
    bad = await api.post(path, json={"amount": "1e3"}, headers=keyed("k-2"))
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_amount"
    corrected = await api.post(path, json={"amount": 40}, headers=keyed("k-2"))
    assert corrected.status_code == 201, corrected.text
    assert "idempotent-replayed" not in corrected.headers
    assert (await get_wallet(api, wallet["id"]))["balance"] == 60


async def test_an_error_answer_is_stored_and_replayed(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    path = f"/v1/wallets/{wallet['id']}/withdrawals"
    first = await api.post(path, json={"amount": 50}, headers=keyed("k-3"))
    assert first.status_code == 409
    assert first.json()["code"] == "insufficient_funds"
    await deposit(api, wallet["id"], 100)
    again = await api.post(path, json={"amount": 50}, headers=keyed("k-3"))
    assert again.status_code == 409
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert (await get_wallet(api, wallet["id"]))["balance"] == 100


async def test_every_mutating_request_takes_a_key(api: httpx.AsyncClient) -> None:
    body = {"customer_id": "idem-customer", "currency": "EUR"}
    first = await api.post("/v1/wallets", json=body, headers=keyed("create-1"))
    again = await api.post("/v1/wallets", json=body, headers=keyed("create-1"))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    wallet_id = first.json()["id"]
    for action in ("freeze", "unfreeze"):
        one = await api.post(f"/v1/wallets/{wallet_id}/{action}", headers=keyed(action))
        two = await api.post(f"/v1/wallets/{wallet_id}/{action}", headers=keyed(action))
        assert one.status_code == two.status_code == 200
        assert two.content == one.content
    closed = await api.delete(f"/v1/wallets/{wallet_id}", headers=keyed("close"))
    assert closed.status_code == 200
    assert (await api.delete(f"/v1/wallets/{wallet_id}", headers=keyed("close"))).content == (
        closed.content
    )


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
async def test_a_malformed_key_is_refused(api: httpx.AsyncClient, key: str) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 100)
    response = await api.post(
        f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 1}, headers=keyed(key)
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_idempotency_key"
    assert (await get_wallet(api, wallet["id"]))["balance"] == 100


@pytest.fixture
async def clocked(
    database_url: str, tenant: TenantKey
) -> AsyncIterator[tuple[httpx.AsyncClient, FrozenClock]]:
    clock = FrozenClock()
    settings = Settings(
        database_url=database_url,
        auth_cache_seconds=0,
        worker="off",
        idempotency_ttl_hours=1,
    )
    app = create_app(settings, clock=clock)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://kassa.test",
            headers={"Authorization": f"Bearer {tenant.key}"},
        ) as client,
    ):
        yield client, clock


async def test_keys_expire_and_the_sweep_deletes_them(
    clocked: tuple[httpx.AsyncClient, FrozenClock], db: Database
) -> None:
    api, clock = clocked
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 100)
    path = f"/v1/wallets/{wallet['id']}/withdrawals"
    assert (await api.post(path, json={"amount": 10}, headers=keyed("old"))).status_code == 201
    reused = await api.post(path, json={"amount": 20}, headers=keyed("old"))
    assert reused.status_code == 422

    clock.advance(timedelta(minutes=59))
    assert await idempotency.sweep(db, clock.now()) == 0
    clock.advance(timedelta(minutes=2))
    swept = await idempotency.sweep(db, clock.now())
    assert swept >= 1
    fresh = await api.post(path, json={"amount": 20}, headers=keyed("old"))
    assert fresh.status_code == 201, fresh.text
    assert (await get_wallet(api, wallet["id"]))["balance"] == 70
