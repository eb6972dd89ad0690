"""One table of status changes, run through both engines of a payout's status change: on
PostgreSQL the function ``kassa_change_payout`` (``payouts.engine_pg``), on SQLite the rules of
``payouts.lifecycle`` in the process's one writer thread (``payouts.engine_sqlite``). Every case
expects the same answer on both (status, error code and detail, the payout's fields), so a rule
that drifts in one engine fails here. So do a PREVIEW's checks, the settle scope, a reason, and
the journal transaction a capture posts (then ``kassa verify``'s check of the tenant)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kassa.app import create_app
from kassa.auth import service as auth
from kassa.config import Settings
from kassa.kit.clock import FrozenClock, isoformat
from kassa.kit.db import Backend, Database
from kassa.ledger.tables import accounts, holds, journal_entries, journal_transactions
from kassa.ledger.verify import verify
from kassa.payouts import engine, failures
from kassa.payouts.repository import Expiring
from kassa.payouts.tables import payouts
from kassa.wallets.engine_sqlite import writer_of
from kassa.wallets.hotpath import HotPath
from tests.helpers import TenantKey
from tests.payouts.conftest import (
    BANK_TRANSFER,
    Setup,
    add_instrument,
    move,
    preview,
    ready,
    set_options,
)
from tests.payouts.test_rails import _rails

Client = httpx.AsyncClient
# (setup: from a PREVIEW of 500 (fee 55) to the state the case starts in; the change posted;
#  the answer's status; its code (an error) or the payout's status; the error's detail).
Prepare = Callable[[Client, Setup, dict[str, Any], FrozenClock], Awaitable[None]]


async def _nothing(api: Client, setup: Setup, payout: dict[str, Any], clock: FrozenClock) -> None:
    pass


def _moved(*statuses: str) -> Prepare:
    async def prepare(api: Client, setup: Setup, payout: dict[str, Any], _: FrozenClock) -> None:
        for status in statuses:
            answer = await api.post(f"/v1/payouts/{payout['id']}/status", json={"status": status})
            assert answer.status_code == 200, answer.text

    return prepare


def _options(**changes: Any) -> Prepare:
    async def prepare(api: Client, setup: Setup, payout: dict[str, Any], _: FrozenClock) -> None:
        if changes.get("none"):
            await set_options(api)
        else:
            await set_options(api, {**BANK_TRANSFER, **changes})

    return prepare


async def _frozen(api: Client, setup: Setup, payout: dict[str, Any], _: FrozenClock) -> None:
    assert (await api.post(f"/v1/wallets/{setup.wallet['id']}/freeze", json={})).status_code == 200


async def _expired(api: Client, setup: Setup, payout: dict[str, Any], clock: FrozenClock) -> None:
    clock.advance(timedelta(minutes=15))


async def _deleted(api: Client, setup: Setup, payout: dict[str, Any], _: FrozenClock) -> None:
    customer, instrument = setup.wallet["customer_id"], setup.instrument["id"]
    deleted = await api.delete(f"/v1/customers/{customer}/instruments/{instrument}")
    assert deleted.status_code == 200, deleted.text


async def _spent(api: Client, setup: Setup, payout: dict[str, Any], _: FrozenClock) -> None:
    answer = await api.post(f"/v1/wallets/{setup.wallet['id']}/withdrawals", json={"amount": 9500})
    assert answer.status_code == 201, answer.text


async def _closed(api: Client, setup: Setup, payout: dict[str, Any], _: FrozenClock) -> None:
    wallet_id = setup.wallet["id"]
    emptied = await api.post(f"/v1/wallets/{wallet_id}/withdrawals", json={"amount": 10_000})
    assert emptied.status_code == 201, emptied.text
    assert (await api.delete(f"/v1/wallets/{wallet_id}")).status_code == 200


CASES: list[tuple[str, Prepare, str, int, str, str | None]] = [
    ("pending", _nothing, "PENDING", 200, "PENDING", None),
    ("cancel a preview", _nothing, "CANCELLED", 200, "CANCELLED", None),
    ("cancel a pending", _moved("PENDING"), "CANCELLED", 200, "CANCELLED", None),
    ("processing", _moved("PENDING"), "PROCESSING", 200, "PROCESSING", None),
    ("completed", _moved("PENDING", "PROCESSING"), "COMPLETED", 200, "COMPLETED", None),
    ("failed", _moved("PENDING", "PROCESSING"), "FAILED", 200, "FAILED", None),
    (
        "preview to completed",
        _nothing,
        "COMPLETED",
        409,
        "invalid_status_transition",
        "a PREVIEW payout can move to PENDING, CANCELLED, not COMPLETED",
    ),
    (
        "completed again",
        _moved("PENDING", "PROCESSING", "COMPLETED"),
        "COMPLETED",
        409,
        "invalid_status_transition",
        "a COMPLETED payout can move to nothing, not COMPLETED",
    ),
    (
        "expired preview",
        _expired,
        "PENDING",
        409,
        "payout_expired",
        "the preview expired at 2026-01-01T00:15:00Z",
    ),
    ("frozen wallet", _frozen, "PENDING", 409, "wallet_frozen", "wallet {wallet} is frozen"),
    ("closed wallet", _closed, "PENDING", 409, "wallet_closed", "wallet {wallet} is closed"),
    (
        "deleted instrument",
        _deleted,
        "PENDING",
        404,
        "not_found",
        "payment instrument {instrument} was deleted",
    ),
    (
        "option gone",
        _options(none=True),
        "PENDING",
        422,
        "unknown_payment_option",
        "the tenant has no payment option BANK_TRANSFER",
    ),
    (
        "option currency",
        _options(currencies=["USD"]),
        "PENDING",
        422,
        "payment_option_refused",
        "BANK_TRANSFER does not pay out EUR",
    ),
    (
        "option amount",
        _options(min_amount=1000),
        "PENDING",
        422,
        "payment_option_refused",
        "BANK_TRANSFER pays out 1000 to 1000000 minor units",
    ),
    (
        "option instrument",
        _options(instrument_types=["UK_BANK_ACCOUNT"]),
        "PENDING",
        422,
        "payment_option_refused",
        "BANK_TRANSFER does not pay to a SEPA_BANK_ACCOUNT",
    ),
    (
        "insufficient funds",
        _spent,
        "PENDING",
        409,
        "insufficient_funds",
        "the wallet has less than 555 minor units (amount and fee) available",
    ),
]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def app(database_url: str, clock: FrozenClock) -> AsyncIterator[HotPath]:
    settings = Settings(database_url=database_url, auth_cache_seconds=0, worker="off")
    made = create_app(settings, clock=clock)
    async with made.lifespan():
        yield made


def _client(app: HotPath, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://kassa.test",
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.fixture
async def local(app: HotPath, tenant: TenantKey) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app, tenant.key) as client:
        yield client


@pytest.mark.parametrize(
    ("prepare", "target", "status", "outcome", "detail"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_a_status_change_answers_alike_on_both_engines(
    local: httpx.AsyncClient,
    app: HotPath,
    clock: FrozenClock,
    prepare: Prepare,
    target: str,
    status: int,
    outcome: str,
    detail: str | None,
) -> None:
    setup = await ready(local)
    payout = await preview(local, setup, 500)
    await prepare(local, setup, payout, clock)
    wallet_before = (await local.get(f"/v1/wallets/{setup.wallet['id']}")).json()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/payouts/{payout['id']}/status"
    commits = _commits(app)
    answer = await local.post(url, json={"status": target}, headers=key)
    assert answer.status_code == status, answer.text
    if commits is not None:
        # On SQLite the change is one job of the writer (PROCESSING's manual rail receipt
        # with it), not a SQLAlchemy unit of work in a turn of its own.
        assert commits() == 1
    body = answer.json()
    wallet = (await local.get(f"/v1/wallets/{setup.wallet['id']}")).json()
    if status != 200:
        assert body["code"] == outcome
        assert body["detail"].startswith(
            (detail or "").format(wallet=setup.wallet["id"], instrument=setup.instrument["id"])
        )
        # A refusal moves nothing.
        assert (wallet["balance"], wallet["held_balance"]) == (
            wallet_before["balance"],
            wallet_before["held_balance"],
        )
    else:
        assert body["status"] == outcome
        assert body["history"][-1] == {
            "status": outcome,
            "at": "2026-01-01T00:00:00Z",
            "reason": "FAILED" if outcome == "FAILED" else None,
        }
        assert body["status_reason"] == ("FAILED" if outcome == "FAILED" else None)
        expected_held = {"PENDING": 555, "PROCESSING": 555}.get(outcome, 0)
        assert wallet["held_balance"] == expected_held
        assert wallet["balance"] == (9_445 if outcome == "COMPLETED" else 10_000)
        assert (body["transaction_id"] is not None) == (outcome == "COMPLETED")
        fetched = (await local.get(f"/v1/payouts/{payout['id']}")).json()
        assert fetched == body
        events = (
            await local.get("/v1/events", params={"type": f"payout.{outcome.lower()}"})
        ).json()
        assert any(event["data"] == body for event in events["data"])
    # The answer was stored with the change: the same bytes again, and nothing moves twice.
    again = await local.post(url, json={"status": target}, headers=key)
    assert (again.status_code, again.content) == (answer.status_code, answer.content)
    assert again.headers["idempotent-replayed"] == "true"
    after = (await local.get(f"/v1/wallets/{setup.wallet['id']}")).json()
    assert (after["balance"], after["held_balance"]) == (wallet["balance"], wallet["held_balance"])


def _commits(app: HotPath) -> Callable[[], int] | None:
    """On SQLite, how many transactions the writer has committed since this was called."""
    db = app.state.db
    if db.backend is not Backend.SQLITE:
        return None
    writer = writer_of(db)
    before = writer.batches
    return lambda: writer.batches - before


async def test_an_unkeyed_refusal_writes_nothing(local: httpx.AsyncClient) -> None:
    setup = await ready(local)
    other = await add_instrument(local, setup.wallet["customer_id"], verify=False)
    payout = await preview(local, setup, 500, instrument_id=other["id"])
    refused = await local.post(f"/v1/payouts/{payout['id']}/status", json={"status": "PENDING"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "instrument_not_verified"
    assert refused.json()["detail"] == f"payment instrument {other['id']} is not verified"
    fetched = (await local.get(f"/v1/payouts/{payout['id']}")).json()
    assert fetched["status"] == "PREVIEW"
    assert fetched["history"] == payout["history"]


# PREVIEWs: (the body's changes from a payout of 500 by BANK_TRANSFER to the customer's
# verified instrument; the answer's status; the fee or the error's code; its detail).
MAX = 10**15
PREVIEWS: list[tuple[str, dict[str, Any], int, int | str, str | None]] = [
    ("a fee", {}, 201, 55, None),
    ("the fee's max", {"amount": 100_000}, 201, 500, None),
    ("no fee below", {"amount": 100, "currency": "EUR"}, 201, 51, None),
    (
        "another currency",
        {"currency": "USD"},
        422,
        "currency_mismatch",
        "the wallet holds EUR, not USD",
    ),
    ("unknown wallet", {"wallet_id": "{unknown}"}, 404, "not_found", "wallet {unknown} not found"),
    (
        "unknown instrument",
        {"instrument_id": "{unknown}"},
        404,
        "not_found",
        "the wallet's customer has no payment instrument {unknown}",
    ),
    (
        "another customer's instrument",
        {"instrument_id": "{foreign}"},
        404,
        "not_found",
        "the wallet's customer has no payment instrument {foreign}",
    ),
    (
        "unknown option",
        {"payment_option": "CARD"},
        422,
        "unknown_payment_option",
        "the tenant has no payment option CARD",
    ),
    (
        "below the option's min",
        {"amount": 99},
        422,
        "payment_option_refused",
        "BANK_TRANSFER pays out 100 to 1000000 minor units",
    ),
    (
        "a used reference",
        {"reference": "{used}"},
        409,
        "duplicate_reference",
        "reference '{used}' was already used by payout {holder}; nothing was done twice",
    ),
]


@pytest.mark.parametrize(
    ("changes", "status", "outcome", "detail"),
    [case[1:] for case in PREVIEWS],
    ids=[case[0] for case in PREVIEWS],
)
async def test_a_preview_answers_alike_on_both_engines(
    local: httpx.AsyncClient,
    changes: dict[str, Any],
    status: int,
    outcome: int | str,
    detail: str | None,
) -> None:
    setup = await ready(local)
    foreign = await add_instrument(local, f"other-{uuid.uuid4().hex[:8]}")
    used = f"R-{uuid.uuid4().hex[:8]}"
    holder = await preview(local, setup, 500, reference=used)
    names = {"unknown": str(uuid.uuid4()), "foreign": foreign["id"], "used": used}
    body = {
        "wallet_id": setup.wallet["id"],
        "amount": 500,
        "payment_option": "BANK_TRANSFER",
        "instrument_id": setup.instrument["id"],
        **{name: str(value).format(**names) for name, value in changes.items()},
    }
    if isinstance(body["amount"], str):
        body["amount"] = int(body["amount"])
    key = {"Idempotency-Key": str(uuid.uuid4())}
    answer = await local.post("/v1/payouts", json=body, headers=key)
    assert answer.status_code == status, answer.text
    shown = answer.json()
    if status == 201:
        assert shown["fee_total"] == outcome
        assert shown["fees"] == [{"amount": outcome, "currency": "EUR", "reason": "WITHDRAWAL_FEE"}]
        assert shown["total"] == body["amount"] + outcome
        assert shown["status"] == "PREVIEW"
        assert shown["next_status"] == ["PENDING", "CANCELLED"]
        assert shown["history"] == [
            {"status": "PREVIEW", "at": "2026-01-01T00:00:00Z", "reason": None}
        ]
        assert shown["expires_at"] == "2026-01-01T00:15:00Z"
        assert answer.headers["location"] == f"/v1/payouts/{shown['id']}"
        assert (await local.get(f"/v1/payouts/{shown['id']}")).json() == shown
        events = (await local.get("/v1/events", params={"type": "payout.created"})).json()
        assert any(event["data"] == shown for event in events["data"])
    else:
        assert shown["code"] == outcome
        assert shown["detail"] == (detail or "").format(**names, holder=holder["id"])
    again = await local.post("/v1/payouts", json=body, headers=key)
    assert (again.status_code, again.content) == (answer.status_code, answer.content)
    assert again.headers.get("location") == answer.headers.get("location")
    listed = await local.get("/v1/payouts", params={"wallet_id": setup.wallet["id"]})
    assert len(listed.json()["data"]) == (2 if status == 201 else 1)


async def test_a_fee_that_passes_the_bound_is_refused_alike(local: httpx.AsyncClient) -> None:
    huge = {**BANK_TRANSFER, "max_amount": MAX, "fee": {"fixed": 50, "bps": 10_000}}
    setup = await ready(local, 10_000, huge)
    refused = await local.post(
        "/v1/payouts",
        json={
            "wallet_id": setup.wallet["id"],
            "amount": MAX - 10,
            "payment_option": "BANK_TRANSFER",
            "instrument_id": setup.instrument["id"],
        },
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == "the amount and its fee are above 10^15 minor units"


@pytest.mark.parametrize("state", ["frozen", "closed"])
async def test_no_preview_on_a_frozen_or_closed_wallet_alike(
    local: httpx.AsyncClient, state: str
) -> None:
    """A payout that could not go now is not previewed either: the wallet's rule, in its
    words, on both engines; nothing is written."""
    setup = await ready(local)
    wallet_id = setup.wallet["id"]
    if state == "frozen":
        assert (await local.post(f"/v1/wallets/{wallet_id}/freeze", json={})).status_code == 200
    else:
        balance = (await local.get(f"/v1/wallets/{wallet_id}")).json()["balance"]
        withdrawn = await local.post(
            f"/v1/wallets/{wallet_id}/withdrawals", json={"amount": balance}
        )
        assert withdrawn.status_code == 201, withdrawn.text
        assert (await local.delete(f"/v1/wallets/{wallet_id}")).status_code == 200
    body = {
        "wallet_id": wallet_id,
        "amount": 500,
        "payment_option": "BANK_TRANSFER",
        "instrument_id": setup.instrument["id"],
        "reference": f"R-{uuid.uuid4().hex[:8]}",
    }
    refused = await local.post("/v1/payouts", json=body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == f"wallet_{state}"
    detail = "is frozen; it takes no withdrawals" if state == "frozen" else "is closed"
    assert refused.json()["detail"] == f"wallet {wallet_id} {detail}"
    listed = await local.get("/v1/payouts", params={"wallet_id": wallet_id})
    assert listed.json()["data"] == []
    # Nothing was claimed: once unfrozen, the same payout is previewed, reference and all.
    if state == "frozen":
        await local.post(f"/v1/wallets/{wallet_id}/unfreeze")
        again = await local.post("/v1/payouts", json=body)
        assert again.status_code == 201, again.text


REASONS = [
    (("PENDING", "PROCESSING", "FAILED"), "the bank refused the account"),
    (("PENDING", "CANCELLED"), "the customer changed their mind"),
    (("CANCELLED",), "a typo in the amount"),
]


@pytest.mark.parametrize(("path", "reason"), REASONS, ids=["failed", "cancelled", "preview"])
async def test_a_reason_is_kept_alike(
    local: httpx.AsyncClient, path: tuple[str, ...], reason: str
) -> None:
    setup = await ready(local)
    payout = await preview(local, setup, 500)
    url = f"/v1/payouts/{payout['id']}/status"
    for status in path[:-1]:
        assert (await local.post(url, json={"status": status})).status_code == 200
    answer = await local.post(url, json={"status": path[-1], "reason": reason})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["status_reason"]) == (path[-1], reason)
    assert body["history"][-1] == {
        "status": path[-1],
        "at": "2026-01-01T00:00:00Z",
        "reason": reason,
    }
    wallet = (await local.get(f"/v1/wallets/{setup.wallet['id']}")).json()
    assert (wallet["balance"], wallet["held_balance"]) == (10_000, 0)


async def test_an_outcome_needs_the_settle_scope_where_it_could_be_posted_alike(
    local: httpx.AsyncClient, app: HotPath, db: Database, tenant: TenantKey, clock: FrozenClock
) -> None:
    """Without ``payouts:settle`` a manual outcome is refused (403, stored under the key like
    any answer) only where it could be posted; elsewhere the answer is the one any key gets."""
    setup = await ready(local)
    waiting = await preview(local, setup, 500)
    for status in ("PENDING", "PROCESSING"):
        moved = await local.post(f"/v1/payouts/{waiting['id']}/status", json={"status": status})
        assert moved.status_code == 200, moved.text
    fresh = await preview(local, setup, 600)
    async with db.write() as conn:
        scopes = ["payouts:read", "payouts:write"]
        issued = await auth.create_key(conn, tenant.tenant_id, scopes, "no settle", clock.now())
    async with _client(app, issued.key) as clerk:
        key = {"Idempotency-Key": str(uuid.uuid4())}
        url = f"/v1/payouts/{waiting['id']}/status"
        refused = await clerk.post(url, json={"status": "COMPLETED"}, headers=key)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
        assert (
            refused.json()["detail"] == "posting a payout's outcome needs the scope payouts:settle"
        )
        again = await clerk.post(url, json={"status": "COMPLETED"}, headers=key)
        assert (again.status_code, again.content) == (403, refused.content)
        assert again.headers["idempotent-replayed"] == "true"
        early = await clerk.post(f"/v1/payouts/{fresh['id']}/status", json={"status": "FAILED"})
        assert early.status_code == 409, early.text
        assert (
            early.json()["detail"] == "a PREVIEW payout can move to PENDING, CANCELLED, not FAILED"
        )
        unknown = f"/v1/payouts/{uuid.uuid4()}/status"
        assert (await clerk.post(unknown, json={"status": "COMPLETED"})).status_code == 404
    shown = (await local.get(f"/v1/payouts/{waiting['id']}")).json()
    assert (shown["status"], shown["next_status"]) == ("PROCESSING", ["COMPLETED", "FAILED"])


async def test_a_capture_posts_the_same_journal_transaction_alike(
    local: httpx.AsyncClient, app: HotPath, tenant: TenantKey, clock: FrozenClock
) -> None:
    """The hold and the capture's journal transaction and entries are the rows the ledger's
    services write (``ledger.service.place_hold``, ``capture_hold``), and the tenant's ledger
    verifies."""
    setup = await ready(local)
    reference = f"R-{uuid.uuid4().hex[:8]}"
    payout = await preview(local, setup, 500, reference=reference, description="rent, May")
    url = f"/v1/payouts/{payout['id']}/status"
    assert (await local.post(url, json={"status": "PENDING"})).status_code == 200
    async with app.state.db.read() as conn:
        hold = (
            await conn.execute(
                select(holds).where(holds.c.wallet_id == uuid.UUID(setup.wallet["id"]))
            )
        ).one()
    assert (hold.amount, hold.currency, hold.status) == (555, "EUR", "open")
    assert (hold.reference, hold.expires_at) == (f"payout:{payout['id']}", None)
    for status in ("PROCESSING", "COMPLETED"):
        moved = await local.post(url, json={"status": status})
        assert moved.status_code == 200, moved.text
    completed = moved.json()
    listed = (await local.get(f"/v1/wallets/{setup.wallet['id']}/transactions")).json()
    capture = listed["data"][0]
    assert capture == {
        "id": completed["transaction_id"],
        "wallet_id": setup.wallet["id"],
        "kind": "withdrawal",
        "amount": 555,
        "currency": "EUR",
        "balance_before": 10_000,
        "balance_after": 9_445,
        "status": "completed",
        "reference": None,
        "description": "rent, May",
        "metadata": {"payout_id": payout["id"], "payout_reference": reference},
        "created_at": "2026-01-01T00:00:00Z",
    }
    async with app.state.db.read() as conn:
        resolved = (await conn.execute(select(holds).where(holds.c.id == hold.id))).one()
        entries = await conn.execute(
            select(accounts.c.kind, journal_entries.c.amount)
            .join(accounts, accounts.c.id == journal_entries.c.account_id)
            .join(
                journal_transactions,
                journal_transactions.c.seq == journal_entries.c.transaction_seq,
            )
            .where(journal_transactions.c.id == uuid.UUID(completed["transaction_id"]))
            .order_by(journal_entries.c.id)
        )
        assert [tuple(entry) for entry in entries] == [
            ("cash", -555),
            ("payouts_clearing", 500),
            ("fees", 55),
        ]
        assert (await verify(conn, tenant.tenant_id)).problems == []
    assert (resolved.status, resolved.resolved_at) == ("captured", clock.now())


async def test_the_workers_expiry_is_alike_on_both_engines(fresh_database_url: str) -> None:
    """The payout worker's expiry (on PostgreSQL one call of ``kassa_change_payout``, on SQLite
    one writer job): a PREVIEW past its expiration time and a PENDING payout past its pending
    deadline are CANCELLED with reason EXPIRED; the PENDING hold is expired (the row
    ``ledger.service.expire_hold`` leaves) and its money is available again; each has one
    ``payout.cancelled`` event showing the payout as the API does; the worker's past failures
    at the payout are cleared with it; of two workers racing one expires each payout, and a
    later pass finds nothing; the ledger verifies."""
    async for rails in _rails(fresh_database_url):
        api, clock = rails.api, rails.clock
        setup = await ready(api)
        await set_options(api, BANK_TRANSFER, ttl=3_600)
        waiting = await preview(api, setup, 500)
        pending = await preview(api, setup, 600)
        assert (await move(api, pending["id"], "PENDING")).status_code == 200
        assert await rails.wallet(setup) == (10_000, 656)
        async with rails.db.write() as conn:  # the worker failed at it once before
            await failures.record(conn, uuid.UUID(pending["id"]), "expire: OSError", clock.now())
        first, second = rails.worker(), rails.worker()

        expired_at: dict[str, datetime] = {}
        for payout, wait in ((waiting, timedelta(minutes=15)), (pending, timedelta(minutes=45))):
            clock.advance(wait - timedelta(seconds=1))
            assert await first.run_once() == 0  # not before its deadline
            clock.advance(timedelta(seconds=1))
            assert sorted(await asyncio.gather(first.run_once(), second.run_once())) == [0, 1]
            expired_at[payout["id"]] = clock.now()
        assert await first.run_once() == 0
        # A worker that found them before the other expired them changes nothing now.
        async with rails.db.read() as conn:
            tenant_id = await conn.scalar(
                select(payouts.c.tenant_id).where(payouts.c.id == uuid.UUID(waiting["id"]))
            )
        assert isinstance(tenant_id, uuid.UUID)
        for payout, found in ((waiting, "PREVIEW"), (pending, "PENDING")):
            stale = Expiring(uuid.UUID(payout["id"]), tenant_id, found, 1)
            assert not await engine.expire(rails.db, stale, clock.now(), clear_failures=True)

        assert await rails.wallet(setup) == (10_000, 0)
        wallet = (await api.get(f"/v1/wallets/{setup.wallet['id']}")).json()
        assert wallet["available_balance"] == 10_000
        events = (await api.get("/v1/events", params={"type": "payout.cancelled"})).json()
        for payout in (waiting, pending):
            shown = (await api.get(f"/v1/payouts/{payout['id']}")).json()
            assert (shown["status"], shown["status_reason"], shown["next_status"]) == (
                "CANCELLED",
                "EXPIRED",
                [],
            )
            at = isoformat(expired_at[payout["id"]])
            assert shown["history"][-1] == {"status": "CANCELLED", "at": at, "reason": "EXPIRED"}
            assert shown["updated_at"] == at
            cancelled = [event["data"] for event in events["data"]]
            assert [data for data in cancelled if data["id"] == payout["id"]] == [shown]
        late = await move(api, waiting["id"], "PENDING")
        assert (late.status_code, late.json()["code"]) == (409, "payout_expired")
        async with rails.db.read() as conn:
            hold = (
                await conn.execute(
                    select(holds).where(holds.c.wallet_id == uuid.UUID(setup.wallet["id"]))
                )
            ).one()
            cleared = (
                await conn.execute(
                    select(payouts.c.worker_failures, payouts.c.worker_error).where(
                        payouts.c.id == uuid.UUID(pending["id"])
                    )
                )
            ).one()
            assert (await verify(conn, None)).problems == []
        assert (hold.reference, hold.amount, hold.status) == (
            f"payout:{pending['id']}",
            656,
            "expired",
        )
        assert hold.resolved_at == expired_at[pending["id"]]
        assert tuple(cleared) == (0, None)
