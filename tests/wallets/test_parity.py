"""One table of cases, run through both engines and every route that moves money.

Each case puts a wallet in a state (active, frozen, a freeze that ran out, closed, money held,
only gift money, ...) and sends one deposit or withdrawal through ``/v1`` (its ASGI hot path),
Salla, WalletAPI and Autional, on SQLite and on PostgreSQL (the suite's ``backend``). Every
route must reach the same outcome (the same Kassa rule, read back from the route's own shape),
move the same money, and answer the same bytes with and without an Idempotency-Key (ids, which
differ between the two twin wallets, masked). The key's own cases follow: a replay is the first
answer byte for byte and moves nothing; the key with another body is refused; a key in flight
is refused on PostgreSQL (on SQLite writers are serialised, so the second request waits for the
first and replays it: ``tests/idempotency``).

The clock is injected and frozen, so timestamps in answers agree.

Mutations tried (each made this table fail, then was reverted): dropping the frozen check from
``kassa_post_wallets`` (the four PostgreSQL ``frozen`` withdrawal rows answered ``ok``);
leaving ``held`` out of the ledger's available-balance check (the SQLite ``held`` withdrawal
rows moved money); storing a re-serialised body for keyed items on PostgreSQL, as ``jsonb``
did before this table existed (every PostgreSQL row's keyed and unkeyed bytes differed).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit.clock import FrozenClock, isoformat
from kassa.kit.db import Database
from kassa.ledger import service as ledger
from kassa.ledger.verify import verify
from tests.helpers import TenantKey, make_tenant

Json = dict[str, Any]
CURRENCY = "SAR"  # the dialects' tenant default; 2 decimals
MAX = 10**15


# -- routes --------------------------------------------------------------------------------------


def _major(amount: int) -> str:
    return format(Decimal(amount).scaleb(-2), "f")


@dataclass(frozen=True)
class Route:
    name: str
    sign: int  # +1 deposit, -1 withdrawal
    path: Callable[[Json], str]
    body: Callable[[Json, int, str | None, str | None], Json]  # wallet, amount, reference, currency
    outcome: Callable[[httpx.Response], str]  # "ok" or the Kassa rule's code
    bearer: bool = True
    references: bool = False
    currencies: bool = False


def _v1_outcome(response: httpx.Response) -> str:
    if response.status_code == 201:
        return "ok"
    assert response.headers["content-type"] == "application/problem+json", response.text
    code: str = response.json()["code"]
    return code


# What each dialect says for each rule, in the words its renderer uses.
_PHRASES = {
    "wallet_frozen": ("is frozen",),
    "wallet_closed": ("is closed",),
    "insufficient_funds": ("minor units available", "greater than the wallet balance"),
    "duplicate_reference": ("already used by",),
    "currency_mismatch": ("does not hold",),
    "idempotency_key_in_use": ("in flight", "in progress"),
    "idempotency_key_reused": ("different request",),
    "not_found": ("not found", "customer id is invalid"),
}


def _dialect_outcome(ok: int) -> Callable[[httpx.Response], str]:
    def outcome(response: httpx.Response) -> str:
        assert response.headers["content-type"].startswith("application/json"), response.text
        if response.status_code == ok:
            return "ok"
        assert 400 <= response.status_code < 500, response.text
        found = [
            code
            for code, phrases in _PHRASES.items()
            if any(phrase in response.text for phrase in phrases)
        ]
        assert len(found) == 1, response.text
        return found[0]

    return outcome


def _v1(kind: str, sign: int) -> Route:
    def body(wallet: Json, amount: int, reference: str | None, currency: str | None) -> Json:
        extra = {"reference": reference} if reference else {}
        return {"amount": amount, **extra, **({"currency": currency} if currency else {})}

    return Route(
        f"v1-{kind}",
        sign,
        lambda wallet: f"/v1/wallets/{wallet['id']}/{kind}",
        body,
        _v1_outcome,
        references=True,
        currencies=True,
    )


def _salla(kind: str, sign: int) -> Route:
    return Route(
        f"salla-{kind}",
        sign,
        lambda wallet: f"/compat/salla/admin/v2/customers/wallets/{kind}",
        lambda wallet, amount, reference, currency: {
            "customer_id": int(wallet["customer_id"]),
            "amount": orjson.Fragment(_major(amount).encode()),
        },
        _dialect_outcome(200),
    )


ROUTES = [
    _v1("deposits", +1),
    _v1("withdrawals", -1),
    _salla("deposit", +1),
    _salla("withdraw", -1),
    Route(
        "walletapi-withdraw",
        -1,
        lambda wallet: "/compat/walletapi/api/v1/wallet/withdraw",
        lambda wallet, amount, reference, currency: {
            "Id": wallet["id"],
            "Amount": orjson.Fragment(_major(amount).encode()),
            **({"ExternalReference": reference} if reference else {}),
        },
        _dialect_outcome(200),
        bearer=False,
        references=True,
    ),
    Route(
        "autional-withdraw",
        -1,
        lambda wallet: f"/compat/autional/wallets/{wallet['customer_id']}/withdraw",
        lambda wallet, amount, reference, currency: {
            "amount": _major(amount),
            **({"reference_id": reference} if reference else {}),
        },
        _dialect_outcome(200),
        references=True,
    ),
]


# -- cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    amount: int
    deposit: str  # the outcome of a deposit
    withdrawal: str  # the outcome of an immediate withdrawal
    cash: int = 0  # funds before
    gift: int = 0
    held: int = 0
    state: str = "active"  # active, frozen, thawed (a freeze that ran out), closed
    currency: str | None = None  # sent with the request (routes that take one)
    used_reference: bool = False  # the request's reference was used before
    needs: frozenset[str] = field(default_factory=frozenset)  # "references", "currencies"


CASES = [
    Case("one-minor-unit", 1, "ok", "ok", cash=1_000),
    Case("largest-amount", MAX, "ok", "ok", cash=MAX),
    Case("exact-balance", 1_000, "ok", "ok", cash=1_000),
    Case("one-minor-unit-short", 1_001, "ok", "insufficient_funds", cash=1_000),
    Case("held-money-is-not-available", 701, "ok", "insufficient_funds", cash=1_000, held=300),
    Case("the-rest-of-held-money", 700, "ok", "ok", cash=1_000, held=300),
    Case("gift-money-is-not-withdrawable", 1, "ok", "insufficient_funds", gift=500),
    Case("frozen", 100, "ok", "wallet_frozen", cash=1_000, state="frozen"),
    Case("freeze-ran-out", 100, "ok", "ok", cash=1_000, state="thawed"),
    Case("closed", 100, "wallet_closed", "wallet_closed", state="closed"),
    Case(
        "other-currency",
        100,
        "currency_mismatch",
        "currency_mismatch",
        cash=1_000,
        currency="EUR",
        needs=frozenset({"currencies"}),
    ),
    Case(
        "the-wallets-currency",
        100,
        "ok",
        "ok",
        cash=1_000,
        currency=CURRENCY,
        needs=frozenset({"currencies"}),
    ),
    Case(
        "duplicate-reference",
        100,
        "duplicate_reference",
        "duplicate_reference",
        cash=1_000,
        used_reference=True,
        needs=frozenset({"references"}),
    ),
]


def _applies(case: Case, route: Route) -> bool:
    return all(getattr(route, need) for need in case.needs)


TABLE = [
    pytest.param(case, route, id=f"{case.name}-{route.name}")
    for case in CASES
    for route in ROUTES
    if _applies(case, route)
]


# -- the harness ---------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def sar(db: Database) -> TenantKey:
    return await make_tenant(db, CURRENCY, timezone="Asia/Riyadh")


@pytest.fixture
async def client(database_url: str, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app (its ASGI hot path included) in-process, on the frozen clock."""
    app = create_app(
        Settings(database_url=database_url, auth_cache_seconds=0, worker="off"), clock=clock
    )
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kassa.test"
        ) as c,
    ):
        yield c


class Harness:
    def __init__(
        self, client: httpx.AsyncClient, db: Database, tenant: TenantKey, clock: FrozenClock
    ) -> None:
        self.client, self.db, self.tenant, self.clock = client, db, tenant, clock
        self.native = {"Authorization": f"Bearer {tenant.key}"}

    def auth(self, route: Route) -> dict[str, str]:
        if route.bearer:
            return self.native
        return {"apikeypublic": self.tenant.key, "apiclientpublic": str(self.tenant.tenant_id)}

    async def call(self, method: str, path: str, body: Json | None = None) -> Json:
        response = await self.client.request(method, path, json=body, headers=self.native)
        assert response.status_code < 300, response.text
        answer: Json = response.json()
        return answer

    async def wallet(self, case: Case) -> Json:
        """A wallet put in the case's state (its customer id digits only, as Salla's are)."""
        customer = str(10**9 + uuid.uuid4().int % (9 * 10**9))
        wallet = await self.call(
            "POST", "/v1/wallets", {"customer_id": customer, "currency": CURRENCY}
        )
        path = f"/v1/wallets/{wallet['id']}"
        if case.cash:
            await self.call("POST", f"{path}/deposits", {"amount": case.cash})
        if case.gift:
            await self.call("POST", f"{path}/deposits", {"amount": case.gift, "kind": "gift"})
        if case.held:
            async with self.db.write() as conn:
                await ledger.place_hold(
                    conn,
                    ledger.HoldRequest(
                        self.tenant.tenant_id, uuid.UUID(wallet["id"]), case.held, self.clock.now()
                    ),
                )
        if case.state == "frozen":
            await self.call("POST", f"{path}/freeze", {"reason": "review"})
        if case.state == "thawed":
            until = isoformat(self.clock.now() + timedelta(hours=1))
            await self.call("POST", f"{path}/freeze", {"until": until})
        if case.state == "closed":
            await self.call("DELETE", path)
        return await self.call("GET", path)

    async def send(
        self,
        route: Route,
        wallet: Json,
        amount: int,
        *,
        reference: str | None = None,
        currency: str | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        headers = self.auth(route) | ({"Idempotency-Key": key} if key else {})
        body = orjson.dumps(route.body(wallet, amount, reference, currency))
        headers["Content-Type"] = "application/json"
        return await self.client.post(route.path(wallet), content=body, headers=headers)

    async def balances(self, wallet: Json) -> tuple[int, int, int]:
        now = await self.call("GET", f"/v1/wallets/{wallet['id']}")
        return now["balance"], now["held_balance"], now["gift_balance"]


@pytest.fixture
async def harness(
    client: httpx.AsyncClient, db: Database, sar: TenantKey, clock: FrozenClock
) -> Harness:
    return Harness(client, db, sar, clock)


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def masked(response: httpx.Response, wallet: Json) -> bytes:
    """The answer's bytes with the twin-specific ids (uuids, alias, customer id) masked."""
    body = _UUID.sub(b"<id>", response.content)
    for name in ("alias", "customer_id"):
        body = body.replace(str(wallet[name]).encode(), f"<{name}>".encode())
    return body


# -- the table -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "route"), TABLE)
async def test_every_route_and_engine_apply_the_same_rules(
    harness: Harness, case: Case, route: Route
) -> None:
    expected = case.deposit if route.sign > 0 else case.withdrawal
    unkeyed, keyed = [await harness.wallet(case) for _ in range(2)]
    if case.state == "thawed":
        harness.clock.advance(timedelta(hours=2))
    before = await harness.balances(unkeyed)
    assert await harness.balances(keyed) == before

    answers = []
    for wallet, key in ((unkeyed, None), (keyed, f"key-{uuid.uuid4()}")):
        reference = f"ref-{uuid.uuid4()}" if route.references else None
        if case.used_reference:
            await harness.call(
                "POST",
                f"/v1/wallets/{wallet['id']}/deposits",
                {"amount": 1, "reference": reference},
            )
        response = await harness.send(
            route, wallet, case.amount, reference=reference, currency=case.currency, key=key
        )
        assert route.outcome(response) == expected, response.text
        answers.append(response)

    moved = route.sign * case.amount if expected == "ok" else 0
    deposit_first = 1 if case.used_reference else 0
    cash, held, gift = before
    for wallet in (unkeyed, keyed):
        assert await harness.balances(wallet) == (cash + moved + deposit_first, held, gift)
    assert masked(answers[0], unkeyed) == masked(answers[1], keyed)
    assert answers[0].headers["content-type"] == answers[1].headers["content-type"]
    async with harness.db.read() as conn:
        report = await verify(conn, harness.tenant.tenant_id)
    assert report.ok, report.problems


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
async def test_a_replay_is_the_first_answer_and_a_reused_key_is_refused(
    harness: Harness, route: Route
) -> None:
    wallet = await harness.wallet(Case("funded", 100, "ok", "ok", cash=1_000))
    key = f"key-{uuid.uuid4()}"
    reference = f"ref-{uuid.uuid4()}" if route.references else None
    first = await harness.send(route, wallet, 100, reference=reference, key=key)
    assert route.outcome(first) == "ok", first.text
    after = await harness.balances(wallet)

    harness.clock.advance(timedelta(seconds=5))  # a replay answers what was, not what is
    again = await harness.send(route, wallet, 100, reference=reference, key=key)
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers

    other = await harness.send(route, wallet, 200, reference=reference, key=key)
    assert route.outcome(other) == "idempotency_key_reused", other.text
    assert await harness.balances(wallet) == after


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
async def test_a_key_in_flight(
    harness: Harness, route: Route, backend: str, database_url: str
) -> None:
    """PostgreSQL refuses a request whose key another request holds (409, retry later);
    SQLite serialises writers, so a second request waits for the first and replays it."""
    wallet = await harness.wallet(Case("funded", 100, "ok", "ok", cash=1_000))
    key = f"key-{uuid.uuid4()}"
    if backend == "sqlite":
        both = await asyncio.gather(*(harness.send(route, wallet, 100, key=key) for _ in "ab"))
        assert [route.outcome(r) for r in both] == ["ok", "ok"], [r.text for r in both]
        assert both[0].content == both[1].content
        replayed = [r.headers.get("idempotent-replayed") for r in both]
        assert sorted(replayed, key=str) == ["true", None] or replayed.count("true") == 1
        assert await harness.balances(wallet) == (1_000 + route.sign * 100, 0, 0)
        return
    holder = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
    try:
        # What the first request holds while it is in flight: the key's advisory lock.
        async with holder.transaction():
            await holder.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"idempotency:{harness.tenant.tenant_id}:{key}",
            )
            response = await harness.send(route, wallet, 100, key=key)
    finally:
        await holder.close()
    assert route.outcome(response) == "idempotency_key_in_use", response.text
    assert await harness.balances(wallet) == (1_000, 0, 0)
    retried = await harness.send(route, wallet, 100, key=key)
    assert route.outcome(retried) == "ok", retried.text
