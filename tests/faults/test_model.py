"""A stateful model test: random sequences of API calls, checked step by step against a model.

Hypothesis's ``RuleBasedStateMachine`` drives Kassa's native API and the pure-Python reference
model in ``tests.faults.model`` side by side. Each example gets a fresh tenant (one manual
payment option, a verified and sometimes an unverified instrument per customer), two funded
wallets, and up to ``KASSA_MODEL_STEPS`` rules: create a wallet (up to four), deposit, gift,
withdraw (amounts at the available balance, one over, one under, or small), freeze (with or
without an end, or one in the past) and unfreeze, close (with or without ``forfeit_gift``),
create a payout (verified, unverified or another customer's instrument, amounts in and out of
the option's limits, then along its lifecycle), move it to any status, retry a keyed request
with the same body (the stored answer, byte for byte, with ``Idempotent-Replayed``) or another
body (``422 idempotency_key_reused``), repeat references. Every answer's status and problem
``code`` must be the model's, and after every step each wallet's status, ``frozen_until`` and
balances and each payout's status, reason, fee and ``next_status`` must be the model's. At the
end of each example the tenant's ledger is verified in process (``kassa.ledger.verify.verify``,
what ``kassa verify --tenant`` runs; the command itself takes seconds to start here), and once
per run the ``kassa verify --tenant`` command runs on the last example's tenant.

It runs two ways on both backends:

* ``server``: against a real ``kassa serve`` process; no rule moves the clock (the server reads
  the system clock), so freezes end only when unfrozen.
* ``clock``: against the same app in this process (``create_app(settings, clock=FrozenClock)``
  over ``httpx.ASGITransport``, real database), adding the rules that move the clock (freezes
  that end by themselves, previews that expire at ``expires_at``) and that run the payout
  worker's pass (``PayoutWorker.run_once`` with that clock: expired PREVIEW and PENDING payouts
  are cancelled with ``EXPIRED``, a PENDING hold released).

Settings from the environment: ``KASSA_MODEL_EXAMPLES`` (examples per mode and backend, default
15) and ``KASSA_MODEL_STEPS`` (most steps per example, default 30); for a long run, e.g.
``KASSA_MODEL_EXAMPLES=500 KASSA_MODEL_STEPS=100``. A failing example is shrunk (slow over real
I/O: Hypothesis gives up shrinking after five minutes and says so) and saved in
``.hypothesis/model`` (a ``DirectoryBasedExampleDatabase``), so the next run replays it first;
Hypothesis prints it as the list of steps and the seed (``--hypothesis-seed=N`` repeats the run).
With ``pytest -s`` each run prints how often each route answered each status or code.

Mutation caught (in a copy of ``src``, ``cp -r src /tmp/mut-src-model``, run with
``PYTHONPATH=/tmp/mut-src-model``, which the server subprocess inherits through
``tests.helpers.kassa_env``): the payout status change (then ``kassa.payouts.lifecycle.
change_status``; today ``payouts.engine_sqlite`` and ``kassa_change_payout``) not releasing the
hold when a PENDING payout is CANCELLED. The clock run on SQLite failed after the shrunk steps
``two_wallets(funds=40)``, ``create_payout(..., then=[0, 1])`` (PREVIEW -> PENDING ->
CANCELLED) with "held_balance 39 != 0, available_balance 1 != 40", and Hypothesis named the
mutated line as the one "always and only run by failing test cases". Against the real server on
PostgreSQL it was caught with ``KASSA_MODEL_EXAMPLES=40`` (not in one run of the default 15),
shrunk to ``two_wallets(funds=40)``, ``create_payout(how='exact', ..., then=[0, 1])``: "held_balance
40 != 0". The default run is a smoke test; the long run is the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit.clock import FrozenClock, isoformat
from kassa.kit.db import Database
from kassa.ledger.verify import verify
from kassa.payouts.connectors import Manual
from kassa.payouts.worker import PayoutWorker
from tests.faults import model
from tests.helpers import ROOT, KassaServer, make_tenant, run_cli
from tests.payouts.conftest import IBAN

EXAMPLES = int(os.environ.get("KASSA_MODEL_EXAMPLES", "15"))
STEPS = int(os.environ.get("KASSA_MODEL_STEPS", "30"))
SEED = os.environ.get("KASSA_MODEL_SEED")
EXAMPLE_DATABASE = DirectoryBasedExampleDatabase(ROOT / ".hypothesis" / "model")

OPTION: dict[str, Any] = {
    "code": "BANK_TRANSFER",
    "instrument_types": ["SEPA_BANK_ACCOUNT"],
    "currencies": ["EUR"],
    "min_amount": model.OPTION_MIN,
    "max_amount": model.OPTION_MAX,
    "fee": {"fixed": model.FEE_FIXED, "bps": model.FEE_BPS, "min": 0, "max": model.FEE_MAX},
    "connector": "manual",
}
REFERENCES = st.one_of(st.none(), st.sampled_from(["ref-a", "ref-b", "ref-c", "ref-d"]))
# How an amount is picked against the model's wallet: the boundaries, or a small one.
HOW = st.sampled_from(["exact", "over", "under", "small"])
SMALL = st.integers(min_value=1, max_value=60)
PICK = st.integers(min_value=0, max_value=7)
STATUSES = st.sampled_from(["PENDING", "PROCESSING", "CANCELLED", "COMPLETED", "FAILED"])
STEPS_OF_TIME = st.sampled_from(
    [
        timedelta(seconds=1),
        timedelta(minutes=1),
        timedelta(minutes=14, seconds=59),
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
    ]
)

T = TypeVar("T")


@dataclass
class Target:
    """Where the machine sends its requests, and what it may do there."""

    runner: asyncio.Runner
    client: httpx.AsyncClient
    db: Database
    clock: FrozenClock | None  # None: a real server on the system clock
    tenants: list[uuid.UUID]
    outcomes: Counter[str] = field(default_factory=Counter)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)


@dataclass
class Keyed:
    """A request sent with an Idempotency-Key, and the answer it got."""

    key: str
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    content: bytes
    at: datetime


def _amount(wallet: model.Wallet, how: str, small: int, *, plus: int = 0) -> int:
    room = wallet.available - plus
    if how == "exact":
        return max(room, 1)
    if how == "over":
        return max(room + 1, 1)
    if how == "under":
        return max(room - 1, 1)
    return small


def machine_for(target: Target) -> type[RuleBasedStateMachine]:
    class KassaModel(RuleBasedStateMachine):
        def wallet_at(self, pick: int) -> str:
            return list(self.model.wallets)[pick % len(self.model.wallets)]

        def __init__(self) -> None:
            super().__init__()
            tenant = target.run(make_tenant(target.db))
            target.tenants.append(tenant.tenant_id)
            self.tenant = tenant
            self.headers = {"Authorization": f"Bearer {tenant.key}"}
            self.model = model.Model(now=target.now())
            self.keyed: list[Keyed] = []
            self.instruments: dict[str, bool] = {}  # instrument id -> verified
            body = {"options": [OPTION], "pending_ttl_seconds": 3600}
            self.request("PUT", "/v1/payment-options", body, expect=model.OK)

        # ---- plumbing --------------------------------------------------------------------

        def send(
            self, method: str, path: str, body: dict[str, Any] | None, key: str | None = None
        ) -> httpx.Response:
            headers = dict(self.headers)
            if key is not None:
                headers["Idempotency-Key"] = key
            return target.run(target.client.request(method, path, json=body, headers=headers))

        def request(
            self,
            method: str,
            path: str,
            body: dict[str, Any] | None,
            *,
            expect: model.Expect,
            keyed: bool = False,
        ) -> dict[str, Any]:
            key = f"key-{uuid.uuid4().hex}" if keyed else None
            response = self.send(method, path, body, key)
            got = (response.status_code, _code(response))
            assert got == (expect.status, expect.code), (method, path, body, response.text)
            moved_to = (body or {}).get("status")
            what = f"{method} {_route(path)}" + (f" {moved_to}" if moved_to else "")
            target.outcomes[f"{what}: {expect.code or expect.status}"] += 1
            if key is not None and response.status_code not in (400, 422):
                self.keyed.append(
                    Keyed(
                        key,
                        method,
                        path,
                        body,
                        response.status_code,
                        response.content,
                        target.now(),
                    )
                )
            shown: dict[str, Any] = response.json()
            return shown

        def sync_clock(self) -> None:
            self.model.now = target.now()

        # ---- wallets ---------------------------------------------------------------------

        @initialize(funds=st.sampled_from([40, 100, 500]))
        def two_wallets(self, funds: int) -> None:
            for pick, unverified in enumerate((False, True)):
                self.create_wallet(unverified)
                if funds:
                    self.deposit(pick, funds, False, None, False)

        @precondition(lambda self: len(self.model.wallets) < 4)
        @rule(unverified=st.booleans())
        def create_wallet(self, unverified: bool) -> None:
            customer = f"cust-{uuid.uuid4().hex[:8]}"
            body = {"customer_id": customer, "currency": "EUR"}
            wallet = self.request("POST", "/v1/wallets", body, expect=model.CREATED)
            verified = self.instrument(customer, verify=True)
            other = self.instrument(customer, verify=False) if unverified else None
            self.model.add_wallet(model.Wallet(wallet["id"], customer, verified, other))

        def instrument(self, customer: str, *, verify: bool) -> str:
            path = f"/v1/customers/{customer}/instruments"
            body = {"type": "SEPA_BANK_ACCOUNT", "iban": IBAN, "holder_name": "Ada L."}
            made = self.request("POST", path, body, expect=model.CREATED)
            if verify:
                self.request("POST", f"{path}/{made['id']}/verify", None, expect=model.OK)
            self.instruments[made["id"]] = verify
            return str(made["id"])

        @rule(
            pick=PICK,
            amount=st.one_of(SMALL, st.integers(1, 1000)),
            gift=st.booleans(),
            reference=REFERENCES,
            keyed=st.booleans(),
        )
        def deposit(
            self, pick: int, amount: int, gift: bool, reference: str | None, keyed: bool
        ) -> None:
            wallet_id = self.wallet_at(pick)
            body: dict[str, Any] = {"amount": amount, "kind": "gift" if gift else "cash"}
            if reference is not None:
                body["reference"] = reference
            wallet = self.model.wallets[wallet_id]
            before = wallet.gift if gift else wallet.balance
            expect = self.model.deposit(wallet_id, amount, gift, reference)
            shown = self.request(
                "POST", f"/v1/wallets/{wallet_id}/deposits", body, expect=expect, keyed=keyed
            )
            if expect.ok:
                assert shown["kind"] == ("gift" if gift else "deposit")
                assert (shown["balance_before"], shown["balance_after"]) == (
                    before,
                    before + amount,
                )

        @rule(
            pick=PICK,
            how=HOW,
            small=SMALL,
            reference=REFERENCES,
            keyed=st.booleans(),
        )
        def withdraw(
            self, pick: int, how: str, small: int, reference: str | None, keyed: bool
        ) -> None:
            wallet_id = self.wallet_at(pick)
            wallet = self.model.wallets[wallet_id]
            amount = _amount(wallet, how, small)
            body: dict[str, Any] = {"amount": amount}
            if reference is not None:
                body["reference"] = reference
            before = wallet.balance
            expect = self.model.withdraw(wallet_id, amount, reference)
            shown = self.request(
                "POST", f"/v1/wallets/{wallet_id}/withdrawals", body, expect=expect, keyed=keyed
            )
            if expect.ok:
                assert shown["kind"] == "withdrawal"
                assert (shown["balance_before"], shown["balance_after"]) == (
                    before,
                    before - amount,
                )

        @rule(
            pick=PICK,
            until=st.sampled_from([None, "past", "soon", "later", "far"]),
            keyed=st.booleans(),
        )
        def freeze(self, pick: int, until: str | None, keyed: bool) -> None:
            wallet_id = self.wallet_at(pick)
            self.sync_clock()
            now = self.model.now
            ends = {
                None: None,
                "past": now - timedelta(days=1),
                "soon": now + timedelta(seconds=30),
                "later": now + timedelta(hours=1),
                "far": now + timedelta(days=30),
            }[until]
            if target.clock is None and until in ("soon", "later"):
                ends = now + timedelta(days=30)  # the server's clock runs on by itself
            body = {"reason": "review"} if ends is None else {"until": isoformat(ends)}
            expect = self.model.freeze(wallet_id, ends)
            shown = self.request(
                "POST", f"/v1/wallets/{wallet_id}/freeze", body, expect=expect, keyed=keyed
            )
            if expect.ok:
                assert shown["status"] == "frozen"

        @rule(pick=PICK, keyed=st.booleans())
        def unfreeze(self, pick: int, keyed: bool) -> None:
            wallet_id = self.wallet_at(pick)
            expect = self.model.unfreeze(wallet_id)
            shown = self.request(
                "POST", f"/v1/wallets/{wallet_id}/unfreeze", None, expect=expect, keyed=keyed
            )
            if expect.ok:
                assert shown["status"] == "active"

        @rule(pick=PICK, forfeit_gift=st.booleans(), keyed=st.booleans(), try_=st.integers(0, 3))
        def close(self, pick: int, forfeit_gift: bool, keyed: bool, try_: int) -> None:
            wallet_id = self.wallet_at(pick)
            wallet = self.model.wallets[wallet_id]
            if try_ and (wallet.balance or wallet.held or wallet.gift):
                return  # a wallet with money in it is refused: try that one time in four
            self.sync_clock()
            path = f"/v1/wallets/{wallet_id}" + ("?forfeit_gift=true" if forfeit_gift else "")
            expect = self.model.close(wallet_id, forfeit_gift)
            shown = self.request("DELETE", path, None, expect=expect, keyed=keyed)
            if expect.ok:
                assert shown["status"] == "closed"

        # ---- payouts ---------------------------------------------------------------------

        @rule(
            pick=PICK,
            which=st.sampled_from(["verified", "verified", "unverified", "foreign"]),
            how=HOW,
            small=SMALL,
            reference=REFERENCES,
            keyed=st.booleans(),
            then=st.lists(st.integers(0, 1), max_size=3),
        )
        def create_payout(
            self,
            pick: int,
            which: str,
            how: str,
            small: int,
            reference: str | None,
            keyed: bool,
            then: list[int],
        ) -> None:
            wallet_id = self.wallet_at(pick)
            self.sync_clock()
            wallet = self.model.wallets[wallet_id]
            instrument = wallet.verified_instrument
            if which == "unverified" and wallet.unverified_instrument is not None:
                instrument = wallet.unverified_instrument
            elif which == "foreign":
                others = [w for w in self.model.wallets.values() if w.id != wallet_id]
                if others:
                    instrument = others[0].verified_instrument
            # The boundaries of amount + fee against the available balance.
            amount = _amount(wallet, how, small)
            amount = max(1, amount - model.fee_of(amount))
            body: dict[str, Any] = {
                "wallet_id": wallet_id,
                "amount": amount,
                "payment_option": "BANK_TRANSFER",
                "instrument_id": instrument,
            }
            if reference is not None:
                body["reference"] = reference
            expect = self.model.create_payout(wallet_id, amount, instrument, reference)
            shown = self.request("POST", "/v1/payouts", body, expect=expect, keyed=keyed)
            if not expect.ok:
                return
            assert shown["status"] == "PREVIEW"
            assert shown["fee_total"] == model.fee_of(amount), shown
            expires_at = self.model.now + model.PREVIEW_TTL
            self.model.add_payout(
                model.Payout(
                    shown["id"],
                    wallet_id,
                    amount,
                    shown["fee_total"],
                    reference,
                    expires_at,
                    instrument_verified=self.instruments[instrument],
                )
            )
            for step in then:  # further along its lifecycle at once, while it goes
                allowed = model.NEXT[self.model.payouts[shown["id"]].status]
                if not allowed or not self.move(shown["id"], allowed[step], keyed=False):
                    break

        @precondition(lambda self: bool(self.model.payouts))
        @rule(pick=PICK, follow=st.integers(0, 9), status=STATUSES, keyed=st.booleans())
        def move_payout(self, pick: int, follow: int, status: str, keyed: bool) -> None:
            payout_id = list(self.model.payouts)[pick % len(self.model.payouts)]
            allowed = model.NEXT[self.model.payouts[payout_id].status]
            if follow < 8 and allowed:  # mostly along the lifecycle, sometimes anywhere
                status = allowed[follow % len(allowed)]
            self.move(payout_id, status, keyed=keyed)

        def move(self, payout_id: str, status: str, *, keyed: bool) -> bool:
            self.sync_clock()
            expect = self.model.move_payout(payout_id, status)
            shown = self.request(
                "POST",
                f"/v1/payouts/{payout_id}/status",
                {"status": status},
                expect=expect,
                keyed=keyed,
            )
            if expect.ok:
                assert shown["status"] == status
            return expect.ok

        # ---- retries ---------------------------------------------------------------------

        def fresh_keys(self) -> list[Keyed]:
            # A key is kept for 24 hours (KASSA_IDEMPOTENCY_TTL_HOURS): retry younger ones.
            return [k for k in self.keyed if target.now() - k.at < timedelta(hours=23)]

        @precondition(lambda self: bool(self.fresh_keys()))
        @rule(pick=st.integers(min_value=0), same=st.booleans())
        def retry_keyed(self, pick: int, same: bool) -> None:
            fresh = self.fresh_keys()
            first = fresh[pick % len(fresh)]
            if same:
                response = self.send(first.method, first.path, first.body, first.key)
                assert response.status_code == first.status, response.text
                assert response.content == first.content
                assert response.headers.get("Idempotent-Replayed") == "true"
                return
            path, body = _another_request(first)
            response = self.send(first.method, path, body, first.key)
            got = (response.status_code, _code(response))
            assert got == (422, "idempotency_key_reused"), response.text

        # ---- time and the worker (the in-process app only) --------------------------------

        @precondition(lambda self: target.clock is not None)
        @rule(step=STEPS_OF_TIME)
        def advance_clock(self, step: timedelta) -> None:
            assert target.clock is not None
            target.clock.advance(step)
            self.sync_clock()

        @precondition(lambda self: target.clock is not None)
        @rule()
        def run_worker(self) -> None:
            assert target.clock is not None
            worker = PayoutWorker(target.db, target.clock, {"manual": Manual()})
            while target.run(worker.run_once()):
                pass  # other examples' payouts may fill a pass: go on until nothing is due
            self.sync_clock()
            self.model.run_worker()

        # ---- after every step ------------------------------------------------------------

        @invariant()
        def service_equals_model(self) -> None:
            self.sync_clock()
            now = self.model.now
            if self.model.wallets:
                page = self.send("GET", "/v1/wallets?limit=100", None).json()
                shown = {wallet["id"]: wallet for wallet in page["data"]}
                for wallet in self.model.wallets.values():
                    got = shown[wallet.id]
                    until = wallet.shown_frozen_until(now)
                    expected: dict[str, Any] = {
                        "status": wallet.effective_status(now),
                        "frozen_until": None if until is None else isoformat(until),
                        "balance": wallet.balance,
                        "held_balance": wallet.held,
                        "available_balance": wallet.available,
                        "gift_balance": wallet.gift,
                        "total_balance": wallet.balance + wallet.gift,
                    }
                    assert {name: got[name] for name in expected} == expected, wallet.id
            if self.model.payouts:
                page = self.send("GET", "/v1/payouts?limit=100", None).json()
                shown = {payout["id"]: payout for payout in page["data"]}
                for payout in self.model.payouts.values():
                    got = shown[payout.id]
                    expected = {
                        "status": payout.status,
                        "status_reason": payout.status_reason,
                        "fee_total": payout.fee,
                        "next_status": model.NEXT[payout.status],
                    }
                    assert {name: got[name] for name in expected} == expected, payout.id

        def teardown(self) -> None:
            async def check() -> list[str]:
                async with target.db.read() as conn:
                    report = await verify(conn, self.tenant.tenant_id)
                return [str(problem) for problem in report.problems]

            assert target.run(check()) == []

    return KassaModel


def _another_request(first: Keyed) -> tuple[str, dict[str, Any] | None]:
    """The same route with a valid request that differs from the first one."""
    body = dict(first.body or {})
    if "amount" in body:
        return first.path, {**body, "amount": body["amount"] + 1}
    if "status" in body:
        other = "CANCELLED" if body["status"] != "CANCELLED" else "PENDING"
        return first.path, {**body, "status": other}
    if "reason" in body or "until" in body:
        return first.path, {"reason": "another reason"}
    if first.method == "DELETE":
        toggled = first.path.removesuffix("?forfeit_gift=true")
        return (toggled if toggled != first.path else f"{first.path}?forfeit_gift=true"), None
    return first.path, {"reason": "a body where there was none"}  # unfreeze


def _route(path: str) -> str:
    """The path with its ids taken out, to count what the runs did."""
    parts = path.split("?")[0].split("/")
    return "/".join(
        "{id}" if len(part) == 36 or part.startswith("cust-") else part for part in parts
    )


def _code(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    code: str | None = orjson.loads(response.content).get("code")
    return code


def _settings() -> settings:
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        database=EXAMPLE_DATABASE,
        suppress_health_check=list(HealthCheck),
    )


@contextlib.asynccontextmanager
async def _open(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


def _run_model(
    database_url: str, connect: Callable[[Database], contextlib.AbstractAsyncContextManager[Any]]
) -> list[uuid.UUID]:
    """Run the machine on an event loop of its own (Hypothesis is synchronous): ``connect``
    gives the client and, for the in-process app, the clock."""
    tenants: list[uuid.UUID] = []
    with asyncio.Runner() as runner, contextlib.ExitStack() as closing:
        stack = contextlib.AsyncExitStack()
        closing.callback(lambda: runner.run(stack.aclose()))
        db = runner.run(stack.enter_async_context(_open(database_url)))
        client, clock = runner.run(stack.enter_async_context(connect(db)))
        target = Target(runner, client, db, clock, tenants)
        try:
            run_state_machine_as_test(machine_for(target), settings=_settings())
        finally:  # what the run did, for `pytest -s` (and to see that the rules reach it all)
            print(f"\n{len(tenants)} examples; answers:")
            for outcome, count in sorted(target.outcomes.items()):
                print(f"  {count:6d}  {outcome}")
    return tenants


@contextlib.asynccontextmanager
async def _server_client(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, None]]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        yield client, None


@contextlib.asynccontextmanager
async def _app_client(
    database_url: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, FrozenClock]]:
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(
        Settings(database_url=database_url, auth_cache_seconds=0, worker="off"), clock=clock
    )
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kassa.test", timeout=60
        ) as client,
    ):
        yield client, clock


def _verify_cli(database_url: str, tenants: list[uuid.UUID]) -> None:
    """``kassa verify --tenant`` itself, on the last tenant of the run (each example's tenant
    was verified in process by the same function)."""
    assert tenants
    result = run_cli(database_url, "verify", "--tenant", str(tenants[-1]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


async def test_model_against_the_server(server: KassaServer) -> None:
    tenants = await asyncio.to_thread(
        _run_model, server.database_url, lambda db: _server_client(server.url)
    )
    await asyncio.to_thread(_verify_cli, server.database_url, tenants)


async def test_model_with_a_clock_in_process(database_url: str) -> None:
    tenants = await asyncio.to_thread(
        _run_model, database_url, lambda db: _app_client(database_url)
    )
    await asyncio.to_thread(_verify_cli, database_url, tenants)
