"""Creating wallets, one (``POST /v1/wallets``) or in bulk (``POST /v1/wallets/batch``), over a
real ``kassa serve`` process: both go through ``wallets.service.create_wallets``."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from kassa.kit.db import Database
from kassa.wallets.schemas import MAX_BATCH_WALLETS
from tests.helpers import (
    KassaServer,
    TenantKey,
    create_wallet,
    deposit,
    get_wallet,
    row_counts,
    verify_tenant,
)
from tests.wallets.test_api import WALLET_FIELDS, assert_problem

Json = dict[str, Any]


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:10]}"


async def batch(api: httpx.AsyncClient, wallets: list[Any], **headers: str) -> httpx.Response:
    return await api.post("/v1/wallets/batch", json={"wallets": wallets}, headers=headers)


def item_problem(item: Json, status: int, code: str) -> Json:
    """A refused item: the status and problem document ``POST /v1/wallets`` would answer."""
    assert item["status"] == status, item
    assert item["wallet"] is None
    error: Json = item["error"]
    assert error["status"] == status
    assert error["code"] == code
    assert error["type"] == f"urn:kassa:problem:{code}"
    assert error["title"]
    assert error["detail"]
    return error


async def created_events(api: httpx.AsyncClient) -> list[Json]:
    response = await api.get("/v1/events", params={"type": "wallet.created", "limit": 100})
    assert response.status_code == 200, response.text
    events: list[Json] = response.json()["data"]
    return events


async def test_a_batch_creates_each_wallet_or_refuses_it_on_its_own(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    existing = await create_wallet(api, customer_id="already-here")
    first, second = customer(), customer()
    response = await batch(
        api,
        [
            {"customer_id": first, "currency": "EUR", "name": "Main", "metadata": {"tier": "a"}},
            {"customer_id": "already-here", "currency": "EUR"},
            {"customer_id": "../bad", "currency": "EUR"},
            {"customer_id": second, "currency": "EUR"},
            {"customer_id": first, "currency": "EUR", "name": "twin"},
            {"customer_id": first, "currency": "KWD"},
            "not an object",
            {"customer_id": second, "currency": "EUR", "unknown": 1},
        ],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer.keys() == {"data", "created", "refused"}
    items = answer["data"]
    assert [item["status"] for item in items] == [201, 409, 422, 201, 409, 201, 422, 422]
    assert (answer["created"], answer["refused"]) == (3, 5)

    made = items[0]["wallet"]
    assert made.keys() == WALLET_FIELDS
    assert items[0]["error"] is None
    assert (made["customer_id"], made["currency"], made["name"]) == (first, "EUR", "Main")
    assert made["metadata"] == {"tier": "a"}
    assert made["status"] == "active"
    assert made["balance"] == made["gift_balance"] == made["total_balance"] == 0
    assert len(made["alias"]) == 10
    assert made["alias"].isdigit()
    assert made == await get_wallet(api, made["id"])  # the answer is what is stored
    assert items[5]["wallet"]["currency"] == "KWD"

    # The refusals, as the single route words them.
    assert item_problem(items[1], 409, "wallet_exists")["wallet_id"] == existing["id"]
    invalid = item_problem(items[2], 422, "validation_failed")
    assert invalid["errors"][0]["field"] == "customer_id"
    assert invalid["errors"][0]["code"] == "invalid_customer_id"
    # Asked twice in one batch: made once, and the twin names the wallet just made.
    assert item_problem(items[4], 409, "wallet_exists")["wallet_id"] == made["id"]
    item_problem(items[6], 422, "validation_failed")
    extra = item_problem(items[7], 422, "validation_failed")
    assert extra["errors"][0]["field"] == "unknown"

    single = await api.post("/v1/wallets", json={"customer_id": "already-here", "currency": "EUR"})
    assert item_problem(items[1], 409, "wallet_exists") == single.json()

    listed = await api.get("/v1/wallets", params={"customer_id": first})
    assert sorted(w["currency"] for w in listed.json()["data"]) == ["EUR", "KWD"]
    events = await created_events(api)
    made_ids = {items[i]["wallet"]["id"] for i in (0, 3, 5)}
    assert {e["data"]["id"] for e in events} == made_ids | {existing["id"]}
    event = next(e for e in events if e["data"]["id"] == made["id"])
    assert event["data"] == made

    # The new wallets work: the tenant's system accounts exist for each currency.
    await deposit(api, made["id"], 700)
    withdrawn = await api.post(f"/v1/wallets/{made['id']}/withdrawals", json={"amount": 200})
    assert withdrawn.status_code == 201, withdrawn.text
    kwd = items[5]["wallet"]["id"]
    await deposit(api, kwd, 1_500)
    assert (await get_wallet(api, kwd))["balance"] == 1_500
    await verify_tenant(server, tenant)


async def test_a_closed_wallet_refuses_its_customer_in_a_batch(api: httpx.AsyncClient) -> None:
    closed = await create_wallet(api, customer_id="gone-away")
    assert (await api.delete(f"/v1/wallets/{closed['id']}")).status_code == 200
    response = await batch(api, [{"customer_id": "gone-away", "currency": "EUR"}])
    error = item_problem(response.json()["data"][0], 409, "wallet_exists")
    assert error["wallet_id"] == closed["id"]
    assert "closed" in error["detail"]


async def test_over_the_limit_nothing_is_created(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey, db: Database
) -> None:
    before = await row_counts(db)
    too_many = [{"customer_id": f"c-{n}", "currency": "EUR"} for n in range(MAX_BATCH_WALLETS + 1)]
    refused = assert_problem(await batch(api, too_many), 422, "validation_failed")
    assert refused["errors"][0]["field"] == "wallets"
    assert refused["errors"][0]["code"] == "too_long"
    assert_problem(await batch(api, []), 422, "validation_failed")
    assert_problem(
        await api.post("/v1/wallets/batch", json=[{"customer_id": "x", "currency": "EUR"}]),
        422,
        "validation_failed",
    )
    assert_problem(
        await api.post("/v1/wallets/batch", json={"wallets": [], "more": 1}),
        422,
        "validation_failed",
    )
    listed = await api.get("/v1/wallets")
    assert listed.json()["data"] == []
    assert await created_events(api) == []
    assert (await row_counts(db))["wallets"] == before["wallets"]


async def test_a_full_batch_is_created(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    wallets = [
        {"customer_id": f"bulk-{n}", "currency": "EUR" if n % 2 else "USD"}
        for n in range(MAX_BATCH_WALLETS)
    ]
    response = await batch(api, wallets)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["created"], answer["refused"]) == (MAX_BATCH_WALLETS, 0)
    made = [item["wallet"] for item in answer["data"]]
    assert [(w["customer_id"], w["currency"]) for w in made] == [
        (w["customer_id"], w["currency"]) for w in wallets
    ]
    assert len({w["id"] for w in made}) == len({w["alias"] for w in made}) == MAX_BATCH_WALLETS
    listed = (await api.get("/v1/wallets", params={"limit": 100})).json()["data"]
    assert len(listed) == 100
    assert {w["id"] for w in listed} <= {w["id"] for w in made}
    await verify_tenant(server, tenant)


async def test_a_batch_is_replayed_under_its_idempotency_key(api: httpx.AsyncClient) -> None:
    key = f"import-{uuid.uuid4().hex}"
    wallets = [{"customer_id": customer(), "currency": "EUR"} for _ in range(3)]
    first = await batch(api, wallets, **{"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert first.json()["created"] == 3
    again = await batch(api, wallets, **{"Idempotency-Key": key})
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    listed = await api.get("/v1/wallets")
    assert len(listed.json()["data"]) == 3
    assert len(await created_events(api)) == 3

    other = await batch(api, wallets[:1], **{"Idempotency-Key": key})
    assert_problem(other, 422, "idempotency_key_reused")
    # Without the key the same batch is a new request: every wallet exists already.
    fresh = await batch(api, wallets)
    assert [item["status"] for item in fresh.json()["data"]] == [409, 409, 409]


async def test_concurrent_twins_make_one_wallet_and_the_rest_are_refused(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    """Requests for one customer and currency racing each other: one 201, every other one the
    rule's 409 naming it (never a 500), whether single or in a batch, keyed or not."""
    for round_ in range(3):
        twin = {"customer_id": f"racer-{round_}", "currency": "EUR"}

        async def single(n: int, twin: Json = twin) -> httpx.Response:
            headers = {"Idempotency-Key": f"race-{uuid.uuid4().hex}"} if n % 3 == 0 else {}
            return await api.post("/v1/wallets", json=twin, headers=headers)

        async def in_batch(twin: Json = twin) -> httpx.Response:
            return await batch(api, [{"customer_id": customer(), "currency": "EUR"}, twin])

        answers = await asyncio.gather(
            *(single(n) for n in range(12)), *(in_batch() for _ in range(4))
        )
        statuses = [a.status_code for a in answers[:12]]
        statuses += [a.json()["data"][1]["status"] for a in answers[12:]]
        assert all(a.status_code < 500 for a in answers), [a.text for a in answers]
        assert sorted(statuses) == [201] + [409] * 15, statuses
        listed = await api.get("/v1/wallets", params={"customer_id": twin["customer_id"]})
        [wallet] = listed.json()["data"]
        for answer in answers[:12]:
            if answer.status_code == 409:
                assert_problem(answer, 409, "wallet_exists")
                assert answer.json()["wallet_id"] == wallet["id"]
        for answer in answers[12:]:
            item = answer.json()["data"][1]
            if item["status"] == 409:
                assert item_problem(item, 409, "wallet_exists")["wallet_id"] == wallet["id"]
    await verify_tenant(server, tenant)


async def test_a_single_creation_answers_as_before(api: httpx.AsyncClient) -> None:
    """The one-statement path answers the wallet as stored, its Location, and its event."""
    response = await api.post(
        "/v1/wallets",
        json={"customer_id": "solo", "currency": "JPY", "name": "Yen", "metadata": {"k": "v"}},
    )
    assert response.status_code == 201, response.text
    wallet = response.json()
    assert response.headers["location"] == f"/v1/wallets/{wallet['id']}"
    assert wallet == await get_wallet(api, wallet["id"])
    [event] = await created_events(api)
    assert event["data"] == wallet
    again = await api.post("/v1/wallets", json={"customer_id": "solo", "currency": "JPY"})
    assert assert_problem(again, 409, "wallet_exists")["wallet_id"] == wallet["id"]


async def test_concurrent_creations_each_get_their_own_wallet(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    """Creations that queue up go to the database together (one statement, one commit); each
    still answers its own wallet, as stored, with its own event."""
    customers = [customer() for _ in range(40)]
    answers = await asyncio.gather(
        *(api.post("/v1/wallets", json={"customer_id": c, "currency": "EUR"}) for c in customers)
    )
    assert [a.status_code for a in answers] == [201] * len(customers), [a.text for a in answers]
    wallets = [a.json() for a in answers]
    assert [w["customer_id"] for w in wallets] == customers
    assert len({w["id"] for w in wallets}) == len({w["alias"] for w in wallets}) == len(customers)
    for wallet in wallets[:5]:
        assert wallet == await get_wallet(api, wallet["id"])
    events = await created_events(api)
    assert sorted(e["data"]["id"] for e in events) == sorted(w["id"] for w in wallets)
    await verify_tenant(server, tenant)
