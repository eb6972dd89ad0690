"""The wallets API end to end: a real ``kassa serve`` process spoken to over HTTP."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kassa.auth import service as auth
from kassa.kit.clock import SystemClock, isoformat
from kassa.kit.db import Database
from tests.helpers import (
    KassaServer,
    TenantKey,
    create_wallet,
    deposit,
    get_wallet,
    make_tenant,
    row_counts,
    verify_tenant,
)

Json = dict[str, Any]

WALLET_FIELDS = {
    "id",
    "customer_id",
    "currency",
    "name",
    "alias",
    "status",
    "frozen_until",
    "freeze_reason",
    "balance",
    "held_balance",
    "available_balance",
    "gift_balance",
    "total_balance",
    "metadata",
    "created_at",
    "updated_at",
}
TRANSACTION_FIELDS = {
    "id",
    "wallet_id",
    "kind",
    "amount",
    "currency",
    "balance_before",
    "balance_after",
    "status",
    "reference",
    "description",
    "metadata",
    "created_at",
}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


# -- small helpers -------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int, code: str) -> Json:
    """An RFC 9457 problem document with the expected status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: Json = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:kassa:problem:{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def assert_timestamp(value: Any) -> datetime:
    assert isinstance(value, str), value
    assert value.endswith("Z"), value
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None
    return moment


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


async def withdraw(api: httpx.AsyncClient, wallet_id: str, amount: int, **extra: Any) -> Json:
    response = await api.post(
        f"/v1/wallets/{wallet_id}/withdrawals", json={"amount": amount, **extra}
    )
    assert response.status_code == 201, response.text
    transaction: Json = response.json()
    return transaction


async def gift(api: httpx.AsyncClient, wallet_id: str, amount: int) -> Json:
    return await deposit(api, wallet_id, amount, kind="gift")


async def collect_pages(
    api: httpx.AsyncClient, path: str, params: dict[str, str] | None = None
) -> list[list[Json]]:
    """Every page of a list endpoint at limit=2, following starting_after."""
    pages: list[list[Json]] = []
    after: str | None = None
    while True:
        query = {**(params or {}), "limit": "2"}
        if after is not None:
            query["starting_after"] = after
        response = await api.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data", "has_more"}
        pages.append(body["data"])
        if not body["has_more"]:
            return pages
        assert len(body["data"]) == 2
        after = body["data"][-1]["id"]
        assert len(pages) < 20, "pagination does not end"


def ids(pages: list[list[Json]]) -> list[str]:
    return [item["id"] for page in pages for item in page]


@contextlib.asynccontextmanager
async def client(server: KassaServer, key: str | None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as api:
        yield api


async def transaction_count(api: httpx.AsyncClient, wallet_id: str) -> int:
    response = await api.get(f"/v1/wallets/{wallet_id}/transactions", params={"limit": "100"})
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


async def key_for(db: Database, tenant: TenantKey, scopes: list[str]) -> str:
    """Another key of the same tenant, with only these scopes."""
    async with db.write() as conn:
        issued = await auth.create_key(
            conn, tenant.tenant_id, sorted(scopes), "scoped", SystemClock().now()
        )
    return issued.key


# -- wallets ---------------------------------------------------------------------------------


async def test_create_wallet_returns_the_whole_wallet(api: httpx.AsyncClient) -> None:
    before = datetime.now(UTC)
    response = await api.post(
        "/v1/wallets",
        json={
            "customer_id": "cust-42",
            "currency": "EUR",
            "name": "Main",
            "metadata": {"segment": "gold"},
        },
    )
    after = datetime.now(UTC)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    wallet = response.json()
    assert set(wallet) == WALLET_FIELDS
    assert uuid.UUID(wallet["id"]).version == 4
    assert wallet["customer_id"] == "cust-42"
    assert wallet["currency"] == "EUR"
    assert wallet["name"] == "Main"
    assert re.fullmatch(r"[0-9]{10}", wallet["alias"]), wallet["alias"]
    assert wallet["status"] == "active"
    assert wallet["frozen_until"] is None
    for balance in ("balance", "held_balance", "available_balance", "gift_balance"):
        assert wallet[balance] == 0
    assert wallet["total_balance"] == 0
    assert wallet["metadata"] == {"segment": "gold"}
    created = assert_timestamp(wallet["created_at"])
    assert before - timedelta(seconds=5) <= created <= after + timedelta(seconds=5)
    assert wallet["updated_at"] == wallet["created_at"]


async def test_every_url_safe_customer_id_reaches_its_instruments(api: httpx.AsyncClient) -> None:
    """Each character a customer id may hold, and the longest one: the wallet is made, and the
    customer's instruments path (the id as it is, unescaped) answers."""
    suffix = uuid.uuid4().hex[:8]
    for customer in (
        f"AZaz09-_~.{suffix}",
        f"~{suffix}",
        f"{suffix}..",
        suffix + "x" * (255 - len(suffix)),
    ):
        created = await api.post("/v1/wallets", json={"customer_id": customer, "currency": "EUR"})
        assert created.status_code == 201, created.text
        assert created.json()["customer_id"] == customer
        instruments = await api.get(f"/v1/customers/{customer}/instruments")
        assert instruments.status_code == 200, (customer, instruments.text)
        listed = await api.get("/v1/wallets", params={"customer_id": customer})
        assert [w["id"] for w in listed.json()["data"]] == [created.json()["id"]]


async def test_create_wallet_defaults_name_and_metadata(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    assert wallet["name"] is None
    assert wallet["metadata"] == {}


async def test_aliases_differ_between_wallets(api: httpx.AsyncClient) -> None:
    wallets = [await create_wallet(api) for _ in range(5)]
    assert len({wallet["alias"] for wallet in wallets}) == 5
    assert len({wallet["id"] for wallet in wallets}) == 5


async def test_one_wallet_per_customer_and_currency(api: httpx.AsyncClient) -> None:
    owner = customer()
    first = await create_wallet(api, "EUR", owner)

    twin = await api.post("/v1/wallets", json={"customer_id": owner, "currency": "EUR"})
    assert_problem(twin, 409, "wallet_exists")

    other_currency = await create_wallet(api, "USD", owner)
    assert other_currency["id"] != first["id"]
    assert other_currency["currency"] == "USD"

    listed = await api.get("/v1/wallets", params={"customer_id": owner})
    assert [wallet["id"] for wallet in listed.json()["data"]] == [
        other_currency["id"],
        first["id"],
    ]


async def test_get_wallet_by_id(api: httpx.AsyncClient) -> None:
    created = await create_wallet(api, name="Savings", metadata={"a": "b"})
    response = await api.get(f"/v1/wallets/{created['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == created


async def test_list_wallets_filters_and_pages_newest_first(api: httpx.AsyncClient) -> None:
    owner = customer()
    currencies = ["EUR", "USD", "SAR", "GBP", "JPY"]
    created = [await create_wallet(api, currency, owner) for currency in currencies]
    stranger_eur = await create_wallet(api, "EUR")

    pages = await collect_pages(api, "/v1/wallets", {"customer_id": owner})
    assert [len(page) for page in pages] == [2, 2, 1]
    assert ids(pages) == [wallet["id"] for wallet in reversed(created)]
    assert len(set(ids(pages))) == 5

    usd = await api.get("/v1/wallets", params={"customer_id": owner, "currency": "USD"})
    assert usd.status_code == 200
    assert usd.json() == {"data": [created[1]], "has_more": False}

    eur_pages = await collect_pages(api, "/v1/wallets", {"currency": "EUR"})
    assert ids(eur_pages) == [stranger_eur["id"], created[0]["id"]]

    everything = await collect_pages(api, "/v1/wallets")
    assert [len(page) for page in everything] == [2, 2, 2]
    assert ids(everything) == [stranger_eur["id"]] + [w["id"] for w in reversed(created)]

    nobody = await api.get("/v1/wallets", params={"customer_id": "nobody-at-all"})
    assert nobody.json() == {"data": [], "has_more": False}


async def test_list_wallets_default_page_is_ten(api: httpx.AsyncClient) -> None:
    for _ in range(11):
        await create_wallet(api)
    page = (await api.get("/v1/wallets")).json()
    assert len(page["data"]) == 10
    assert page["has_more"] is True


async def test_list_wallets_starting_after_unknown_wallet_is_404(api: httpx.AsyncClient) -> None:
    await create_wallet(api)
    response = await api.get("/v1/wallets", params={"starting_after": str(uuid.uuid4())})
    assert_problem(response, 404, "not_found")


# -- money in and out --------------------------------------------------------------------------


async def test_cash_deposit_raises_balance(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    transaction = await deposit(api, wallet["id"], 1000, reference="dep-1")
    assert set(transaction) == TRANSACTION_FIELDS
    assert transaction["kind"] == "deposit"
    assert transaction["amount"] == 1000
    assert transaction["balance_before"] == 0
    assert transaction["balance_after"] == 1000

    shown = await get_wallet(api, wallet["id"])
    assert shown["balance"] == 1000
    assert shown["available_balance"] == 1000
    assert shown["gift_balance"] == 0
    assert shown["total_balance"] == 1000
    assert assert_timestamp(shown["updated_at"]) >= assert_timestamp(shown["created_at"])


async def test_gift_deposit_raises_gift_and_total_only(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1000)

    given = await gift(api, wallet["id"], 250)
    assert given["kind"] == "gift"
    assert given["amount"] == 250
    assert given["balance_before"] == 0
    assert given["balance_after"] == 250

    shown = await get_wallet(api, wallet["id"])
    assert shown["balance"] == 1000
    assert shown["available_balance"] == 1000
    assert shown["held_balance"] == 0
    assert shown["gift_balance"] == 250
    assert shown["total_balance"] == 1250


async def test_gift_balance_is_never_withdrawable(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await gift(api, wallet["id"], 500)
    response = await api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 100})
    assert_problem(response, 409, "insufficient_funds")
    shown = await get_wallet(api, wallet["id"])
    assert (shown["balance"], shown["gift_balance"]) == (0, 500)


async def test_withdrawal_returns_the_whole_transaction(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1000)

    response = await api.post(
        f"/v1/wallets/{wallet['id']}/withdrawals",
        json={
            "amount": 300,
            "currency": "EUR",
            "reference": "cashout-1",
            "description": "to the bank",
            "metadata": {"iban": "DE00"},
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    transaction = response.json()
    assert set(transaction) == TRANSACTION_FIELDS
    assert uuid.UUID(transaction["id"])
    assert transaction["wallet_id"] == wallet["id"]
    assert transaction["kind"] == "withdrawal"
    assert transaction["amount"] == 300
    assert transaction["currency"] == "EUR"
    assert transaction["balance_before"] == 1000
    assert transaction["balance_after"] == 700
    assert transaction["status"] == "completed"
    assert transaction["reference"] == "cashout-1"
    assert transaction["description"] == "to the bank"
    assert transaction["metadata"] == {"iban": "DE00"}
    assert_timestamp(transaction["created_at"])

    shown = await get_wallet(api, wallet["id"])
    assert (shown["balance"], shown["available_balance"], shown["total_balance"]) == (700,) * 3

    fetched = await api.get(f"/v1/transactions/{transaction['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == transaction


async def test_withdrawal_without_optional_fields(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 10)
    transaction = await withdraw(api, wallet["id"], 10)
    assert transaction["reference"] is None
    assert transaction["description"] is None
    assert transaction["metadata"] == {}
    assert transaction["balance_after"] == 0


async def test_withdrawing_more_than_available_is_refused(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 100)
    response = await api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 101})
    assert_problem(response, 409, "insufficient_funds")
    assert (await get_wallet(api, wallet["id"]))["balance"] == 100
    assert await transaction_count(api, wallet["id"]) == 1


async def test_get_unknown_transaction_is_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get(f"/v1/transactions/{uuid.uuid4()}"), 404, "not_found")
    assert_problem(await api.get("/v1/transactions/nope"), 404, "not_found")


async def test_wallet_transactions_newest_first_with_kind_filter_and_pages(
    api: httpx.AsyncClient,
) -> None:
    wallet = await create_wallet(api)
    made = [
        await deposit(api, wallet["id"], 100),
        await deposit(api, wallet["id"], 200),
        await gift(api, wallet["id"], 50),
        await withdraw(api, wallet["id"], 30),
        await deposit(api, wallet["id"], 400),
        await withdraw(api, wallet["id"], 70),
    ]
    path = f"/v1/wallets/{wallet['id']}/transactions"

    everything = await api.get(path)
    assert everything.status_code == 200
    assert everything.json() == {"data": list(reversed(made)), "has_more": False}

    pages = await collect_pages(api, path)
    assert [len(page) for page in pages] == [2, 2, 2]
    assert ids(pages) == [transaction["id"] for transaction in reversed(made)]

    deposits = await collect_pages(api, path, {"kind": "deposit"})
    assert [len(page) for page in deposits] == [2, 1]
    assert ids(deposits) == [made[4]["id"], made[1]["id"], made[0]["id"]]
    assert {item["kind"] for page in deposits for item in page} == {"deposit"}

    withdrawals = await collect_pages(api, path, {"kind": "withdrawal"})
    assert ids(withdrawals) == [made[5]["id"], made[3]["id"]]
    gifts = await collect_pages(api, path, {"kind": "gift"})
    assert ids(gifts) == [made[2]["id"]]

    assert (await get_wallet(api, wallet["id"]))["balance"] == 100 + 200 - 30 + 400 - 70


async def test_transactions_of_a_wallet_are_only_its_own(api: httpx.AsyncClient) -> None:
    first = await create_wallet(api)
    second = await create_wallet(api)
    mine = await deposit(api, first["id"], 10)
    theirs = await deposit(api, second["id"], 20)

    listed = (await api.get(f"/v1/wallets/{first['id']}/transactions")).json()
    assert [item["id"] for item in listed["data"]] == [mine["id"]]
    # A cursor from another wallet names nothing in this list.
    crossed = await api.get(
        f"/v1/wallets/{first['id']}/transactions", params={"starting_after": theirs["id"]}
    )
    assert_problem(crossed, 404, "not_found")


async def test_wallet_transactions_of_an_empty_wallet(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    listed = await api.get(f"/v1/wallets/{wallet['id']}/transactions")
    assert listed.json() == {"data": [], "has_more": False}
    missing = await api.get(f"/v1/wallets/{uuid.uuid4()}/transactions")
    assert_problem(missing, 404, "not_found")


async def test_duplicate_reference_moves_money_once(
    api: httpx.AsyncClient, server: KassaServer, db: Database
) -> None:
    wallet = await create_wallet(api)
    other = await create_wallet(api)
    first = await deposit(api, wallet["id"], 1000, reference="ref-1")
    counts = await row_counts(db)

    again = await api.post(
        f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 1000, "reference": "ref-1"}
    )
    problem = assert_problem(again, 409, "duplicate_reference")
    assert "ref-1" in problem["detail"]
    # The refusal names what holds the reference, keyed or not, whichever route.
    assert problem["transaction_id"] == first["id"]
    assert first["id"] in problem["detail"]
    as_withdrawal = await api.post(
        f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 10, "reference": "ref-1"}
    )
    assert (
        assert_problem(as_withdrawal, 409, "duplicate_reference")["transaction_id"] == (first["id"])
    )
    keyed = await api.post(
        f"/v1/wallets/{wallet['id']}/withdrawals",
        json={"amount": 10, "reference": "ref-1"},
        headers={"Idempotency-Key": "dup-ref-1"},
    )
    assert assert_problem(keyed, 409, "duplicate_reference")["transaction_id"] == first["id"]
    # References are unique per tenant, not per wallet.
    elsewhere = await api.post(
        f"/v1/wallets/{other['id']}/deposits", json={"amount": 5, "reference": "ref-1"}
    )
    assert assert_problem(elsewhere, 409, "duplicate_reference")["transaction_id"] == first["id"]

    assert (await get_wallet(api, wallet["id"]))["balance"] == 1000
    assert (await get_wallet(api, other["id"]))["balance"] == 0
    assert await transaction_count(api, wallet["id"]) == 1
    assert await row_counts(db) == counts

    # Another tenant may use the same reference.
    stranger = await make_tenant(db)
    async with client(server, stranger.key) as theirs:
        their_wallet = await create_wallet(theirs)
        landed = await deposit(theirs, their_wallet["id"], 7, reference="ref-1")
        assert landed["reference"] == "ref-1"


async def test_freeze_stops_withdrawals_but_not_deposits(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1000)

    frozen = await api.post(f"/v1/wallets/{wallet['id']}/freeze", json={"reason": "review"})
    assert frozen.status_code == 200, frozen.text
    assert set(frozen.json()) == WALLET_FIELDS
    assert frozen.json()["status"] == "frozen"
    assert frozen.json()["frozen_until"] is None
    assert (await get_wallet(api, wallet["id"]))["status"] == "frozen"

    refused = await api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 100})
    assert_problem(refused, 409, "wallet_frozen")
    landed = await deposit(api, wallet["id"], 50)
    assert landed["balance_after"] == 1050

    unfrozen = await api.post(f"/v1/wallets/{wallet['id']}/unfreeze")
    assert unfrozen.status_code == 200, unfrozen.text
    assert unfrozen.json()["status"] == "active"
    paid = await withdraw(api, wallet["id"], 100)
    assert paid["balance_after"] == 950


async def test_freeze_without_body_and_until_in_the_future(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    bare = await api.post(f"/v1/wallets/{wallet['id']}/freeze")
    assert bare.status_code == 200, bare.text
    assert bare.json()["status"] == "frozen"

    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    timed = await api.post(f"/v1/wallets/{wallet['id']}/freeze", json={"until": until.isoformat()})
    assert timed.status_code == 200, timed.text
    assert timed.json()["frozen_until"] == isoformat(until)
    assert (await get_wallet(api, wallet["id"]))["frozen_until"] == isoformat(until)


async def test_freeze_until_in_the_past_is_refused(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    past = datetime.now(UTC) - timedelta(minutes=1)
    response = await api.post(
        f"/v1/wallets/{wallet['id']}/freeze", json={"until": past.isoformat()}
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["until"]
    assert await get_wallet(api, wallet["id"]) == wallet


async def test_close_only_an_empty_wallet_and_keep_it_readable(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 500)

    refused = await api.delete(f"/v1/wallets/{wallet['id']}")
    assert_problem(refused, 409, "wallet_not_empty")
    assert (await get_wallet(api, wallet["id"]))["status"] == "active"

    await withdraw(api, wallet["id"], 500)
    closed = await api.delete(f"/v1/wallets/{wallet['id']}")
    assert closed.status_code == 200, closed.text
    assert set(closed.json()) == WALLET_FIELDS
    assert closed.json()["status"] == "closed"
    assert closed.json()["balance"] == 0

    late_deposit = await api.post(f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 1})
    assert_problem(late_deposit, 409, "wallet_closed")
    late_gift = await api.post(
        f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 1, "kind": "gift"}
    )
    assert_problem(late_gift, 409, "wallet_closed")
    late_withdrawal = await api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 1})
    assert_problem(late_withdrawal, 409, "wallet_closed")
    assert_problem(await api.post(f"/v1/wallets/{wallet['id']}/freeze"), 409, "wallet_closed")
    assert_problem(await api.post(f"/v1/wallets/{wallet['id']}/unfreeze"), 409, "wallet_closed")

    shown = await api.get(f"/v1/wallets/{wallet['id']}")
    assert shown.status_code == 200
    assert shown.json()["status"] == "closed"
    assert shown.json()["balance"] == 0
    assert await transaction_count(api, wallet["id"]) == 2

    # Closing twice answers the closed wallet again.
    again = await api.delete(f"/v1/wallets/{wallet['id']}")
    assert again.status_code == 200
    assert again.json()["status"] == "closed"


async def test_a_wallet_with_gift_credit_closes_only_by_forfeiting_it(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    wallet = await create_wallet(api)
    await gift(api, wallet["id"], 5)
    await deposit(api, wallet["id"], 300)
    url = f"/v1/wallets/{wallet['id']}"

    refused = assert_problem(await api.delete(url), 409, "wallet_not_empty")
    assert "withdraw" in refused["detail"]
    # Forfeiting gift credit never closes a wallet that still holds cash.
    still_cash = await api.delete(url, params={"forfeit_gift": "true"})
    assert_problem(still_cash, 409, "wallet_not_empty")
    await withdraw(api, wallet["id"], 300)
    refused = assert_problem(await api.delete(url), 409, "wallet_not_empty")
    assert "forfeit_gift=true" in refused["detail"]
    assert_problem(
        await api.delete(url, params={"forfeit_gift": "maybe"}), 422, "validation_failed"
    )
    shown = await get_wallet(api, wallet["id"])
    assert (shown["status"], shown["gift_balance"]) == ("active", 5)
    assert await transaction_count(api, wallet["id"]) == 3

    closed = await api.delete(url, params={"forfeit_gift": "true"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert (closed.json()["gift_balance"], closed.json()["total_balance"]) == (0, 0)
    listed = await api.get(f"{url}/transactions", params={"limit": 1})
    (forfeit,) = listed.json()["data"]
    assert (forfeit["kind"], forfeit["amount"]) == ("reversal", 5)
    assert (forfeit["balance_before"], forfeit["balance_after"]) == (5, 0)
    assert await transaction_count(api, wallet["id"]) == 4
    await verify_tenant(server, tenant)


async def test_a_frozen_empty_wallet_can_be_closed(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    assert (await api.post(f"/v1/wallets/{wallet['id']}/freeze")).status_code == 200
    closed = await api.delete(f"/v1/wallets/{wallet['id']}")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert closed.json()["frozen_until"] is None


# -- tenant isolation --------------------------------------------------------------------------


async def test_another_tenant_cannot_see_or_touch_a_wallet(
    api: httpx.AsyncClient, server: KassaServer, db: Database
) -> None:
    wallet = await create_wallet(api)
    transaction = await deposit(api, wallet["id"], 1000, reference="mine")
    before = await get_wallet(api, wallet["id"])
    counts = await row_counts(db)
    stranger = await make_tenant(db)
    base = f"/v1/wallets/{wallet['id']}"

    async with client(server, stranger.key) as theirs:
        attempts = [
            await theirs.get(base),
            await theirs.post(f"{base}/deposits", json={"amount": 5}),
            await theirs.post(f"{base}/deposits", json={"amount": 5, "kind": "gift"}),
            await theirs.post(f"{base}/withdrawals", json={"amount": 5}),
            await theirs.post(f"{base}/freeze", json={"reason": "mine now"}),
            await theirs.post(f"{base}/unfreeze"),
            await theirs.delete(base),
            await theirs.get(f"{base}/transactions"),
            await theirs.get(f"/v1/transactions/{transaction['id']}"),
        ]
        for response in attempts:
            assert_problem(response, 404, "not_found")
        # Their lists do not show it, and its id is no cursor for them.
        assert (await theirs.get("/v1/wallets")).json() == {"data": [], "has_more": False}
        cursor = await theirs.get("/v1/wallets", params={"starting_after": wallet["id"]})
        assert_problem(cursor, 404, "not_found")

    assert await get_wallet(api, wallet["id"]) == before
    assert await transaction_count(api, wallet["id"]) == 1
    counts_after = await row_counts(db)
    assert counts_after == counts


# -- authentication and scopes -----------------------------------------------------------------


async def test_no_key_is_401(server: KassaServer) -> None:
    async with client(server, None) as anonymous:
        for response in (
            await anonymous.get("/v1/wallets"),
            await anonymous.post("/v1/wallets", json={"customer_id": "c", "currency": "EUR"}),
            await anonymous.get(f"/v1/wallets/{uuid.uuid4()}"),
        ):
            assert_problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"


async def test_wrong_scheme_or_unknown_key_is_401(
    server: KassaServer, tenant: TenantKey, db: Database
) -> None:
    counts = await row_counts(db)
    prefix, _, secret = tenant.key.rpartition("_")
    tampered = f"{prefix}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"
    for key in ("nope", "ksk_000000000000_secret", tampered, f"{tenant.key}x"):
        async with client(server, key) as bad:
            response = await bad.post("/v1/wallets", json={"customer_id": "c", "currency": "EUR"})
            assert_problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Basic {tenant.key}"}
    ) as basic:
        assert_problem(await basic.get("/v1/wallets"), 401, "unauthorized")
    assert await row_counts(db) == counts


async def test_read_only_key_can_read_but_not_write(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey, db: Database
) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 100)
    reader = await make_tenant(db, scopes=["wallets:read"])
    same_tenant_reader = await key_for(db, tenant, ["wallets:read"])
    counts = await row_counts(db)

    async with client(server, reader.key) as theirs:
        created = await theirs.post("/v1/wallets", json={"customer_id": "c", "currency": "EUR"})
        assert_problem(created, 403, "forbidden")
        listed = await theirs.get("/v1/wallets")
        assert listed.status_code == 200
        assert listed.json() == {"data": [], "has_more": False}

    async with client(server, same_tenant_reader) as read_only:
        shown = await read_only.get(f"/v1/wallets/{wallet['id']}")
        assert shown.status_code == 200
        assert shown.json()["balance"] == 100
        assert (await read_only.get(f"/v1/wallets/{wallet['id']}/transactions")).status_code == 200
        for response in (
            await read_only.post("/v1/wallets", json={"customer_id": "c", "currency": "EUR"}),
            await read_only.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 1}),
            await read_only.post(f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 1}),
            await read_only.post(f"/v1/wallets/{wallet['id']}/freeze"),
            await read_only.delete(f"/v1/wallets/{wallet['id']}"),
        ):
            problem = assert_problem(response, 403, "forbidden")
            assert "scope" in problem["detail"]

    assert await row_counts(db) == counts
    assert (await get_wallet(api, wallet["id"]))["balance"] == 100


async def test_withdrawals_only_key_can_withdraw_but_not_deposit(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey, db: Database
) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 100)
    payout_key = await key_for(db, tenant, ["withdrawals:write"])

    async with client(server, payout_key) as payouts:
        paid = await withdraw(payouts, wallet["id"], 40)
        assert paid["balance_after"] == 60
        refused = await payouts.post(f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 1})
        assert_problem(refused, 403, "forbidden")
        assert_problem(await payouts.get(f"/v1/wallets/{wallet['id']}"), 403, "forbidden")
        creating = await payouts.post("/v1/wallets", json={"customer_id": "c", "currency": "EUR"})
        assert_problem(creating, 403, "forbidden")

    assert (await get_wallet(api, wallet["id"]))["balance"] == 60


async def test_read_only_key_gets_404_on_unknown_reads_and_403_on_any_write(
    server: KassaServer, db: Database
) -> None:
    """The scope is checked before the wallet is looked up: a write never reveals a wallet."""
    reader = await make_tenant(db, scopes=["wallets:read"])
    async with client(server, reader.key) as theirs:
        assert_problem(await theirs.get(f"/v1/wallets/{uuid.uuid4()}"), 404, "not_found")
        withdrawal = await theirs.post(
            f"/v1/wallets/{uuid.uuid4()}/withdrawals", json={"amount": 1}
        )
        assert_problem(withdrawal, 403, "forbidden")


# -- operations and documentation --------------------------------------------------------------


async def test_health_and_readiness(server: KassaServer) -> None:
    async with client(server, None) as anonymous:
        health = await anonymous.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        ready = await anonymous.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"


async def test_openapi_and_docs(server: KassaServer) -> None:
    async with client(server, None) as anonymous:
        spec = await anonymous.get("/openapi.json")
        assert spec.status_code == 200
        paths = spec.json()["paths"]
        assert {
            "/v1/wallets",
            "/v1/wallets/{wallet_id}",
            "/v1/wallets/{wallet_id}/deposits",
            "/v1/wallets/{wallet_id}/withdrawals",
            "/v1/wallets/{wallet_id}/freeze",
            "/v1/wallets/{wallet_id}/unfreeze",
            "/v1/wallets/{wallet_id}/transactions",
            "/v1/transactions/{transaction_id}",
        } <= set(paths)
        assert {"get", "post"} <= set(paths["/v1/wallets"])
        assert "delete" in paths["/v1/wallets/{wallet_id}"]
        body = paths["/v1/wallets/{wallet_id}/deposits"]["post"]["requestBody"]
        assert "amount" in body["content"]["application/json"]["schema"]["properties"]

        docs = await anonymous.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")


async def test_unknown_route_and_wrong_method_are_problems(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(await api.get("/nope"), 404, "not_found")
    assert_problem(await api.put("/v1/wallets", json={}), 405, "method_not_allowed")
