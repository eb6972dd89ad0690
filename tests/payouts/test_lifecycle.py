"""The payout lifecycle over HTTP against the real server, for each terminal state, with the
wallet's balance, held and available after every step."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from kassa.auth import service as auth
from kassa.kit.clock import SystemClock
from kassa.kit.db import Database
from tests.helpers import KassaServer, TenantKey, get_wallet, make_tenant, run_cli
from tests.payouts.conftest import BANK_TRANSFER, Setup, move, preview, ready


async def balances(api: httpx.AsyncClient, setup: Setup) -> tuple[int, int, int]:
    wallet = await get_wallet(api, setup.wallet["id"])
    return wallet["balance"], wallet["held_balance"], wallet["available_balance"]


async def step(api: httpx.AsyncClient, payout: dict[str, Any], status: str, **extra: Any) -> Any:
    response = await move(api, payout["id"], status, **extra)
    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["status"] == status
    return moved


async def test_completed_captures_amount_and_fee_in_one_transaction(
    api: httpx.AsyncClient, server: KassaServer
) -> None:
    setup = await ready(api)
    payout = await preview(api, setup, 1_000, reference="payout-1", description="to my bank")
    assert payout["status"] == "PREVIEW"
    assert payout["fees"] == [{"amount": 60, "currency": "EUR", "reason": "WITHDRAWAL_FEE"}]
    assert payout["fee_total"] == 60
    assert payout["total"] == 1_060
    assert payout["next_status"] == ["PENDING", "CANCELLED"]
    assert payout["action"] == "NONE"
    assert await balances(api, setup) == (10_000, 0, 10_000)

    pending = await step(api, payout, "PENDING")
    assert pending["next_status"] == ["PROCESSING", "CANCELLED"]
    assert await balances(api, setup) == (10_000, 1_060, 8_940)

    processing = await step(api, payout, "PROCESSING")
    assert processing["next_status"] == ["COMPLETED", "FAILED"]
    assert await balances(api, setup) == (10_000, 1_060, 8_940)

    completed = await step(api, payout, "COMPLETED")
    assert completed["next_status"] == []
    assert await balances(api, setup) == (8_940, 0, 8_940)
    assert [item["status"] for item in completed["history"]] == [
        "PREVIEW",
        "PENDING",
        "PROCESSING",
        "COMPLETED",
    ]
    transaction = (await api.get(f"/v1/transactions/{completed['transaction_id']}")).json()
    assert transaction["amount"] == 1_060
    assert transaction["kind"] == "withdrawal"
    assert transaction["balance_before"] == 10_000
    assert transaction["balance_after"] == 8_940
    # The capture is identified by its payout, never by a reference it could be refused for.
    assert transaction["reference"] is None
    assert transaction["metadata"] == {"payout_id": payout["id"], "payout_reference": "payout-1"}

    events = (await api.get("/v1/events", params={"limit": 100})).json()["data"]
    payout_events = [e["type"] for e in reversed(events) if e["type"].startswith("payout.")]
    assert payout_events == [
        "payout.created",
        "payout.pending",
        "payout.processing",
        "payout.completed",
    ]
    assert events[0]["data"] == completed
    assert (await api.get(f"/v1/payouts/{payout['id']}")).json() == completed
    verified = run_cli(server.database_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_failed_releases_the_hold(api: httpx.AsyncClient) -> None:
    setup = await ready(api)
    payout = await preview(api, setup, 2_000)
    await step(api, payout, "PENDING")
    assert await balances(api, setup) == (10_000, 2_070, 7_930)
    await step(api, payout, "PROCESSING")
    failed = await step(api, payout, "FAILED", reason="ACCOUNT_CLOSED")
    assert failed["status_reason"] == "ACCOUNT_CLOSED"
    assert failed["transaction_id"] is None
    assert await balances(api, setup) == (10_000, 0, 10_000)


async def test_cancelled_from_preview_and_from_pending(api: httpx.AsyncClient) -> None:
    setup = await ready(api)
    first = await preview(api, setup, 500)
    cancelled = await step(api, first, "CANCELLED")
    assert cancelled["next_status"] == []
    assert await balances(api, setup) == (10_000, 0, 10_000)
    second = await preview(api, setup, 500)
    await step(api, second, "PENDING")
    assert await balances(api, setup) == (10_000, 555, 9_445)
    await step(api, second, "CANCELLED")
    assert await balances(api, setup) == (10_000, 0, 10_000)


async def test_only_next_statuses_are_allowed(api: httpx.AsyncClient) -> None:
    setup = await ready(api)
    payout = await preview(api, setup, 500)
    for status in ("PROCESSING", "COMPLETED", "FAILED"):
        refused = await move(api, payout["id"], status)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "invalid_status_transition"
    await step(api, payout, "CANCELLED")
    again = await move(api, payout["id"], "PENDING")
    assert again.status_code == 409
    bad = await move(api, payout["id"], "PREVIEW")
    assert bad.status_code == 422
    assert await balances(api, setup) == (10_000, 0, 10_000)


async def test_posting_an_outcome_needs_the_settle_scope(
    api: httpx.AsyncClient, db: Database, server: KassaServer, tenant: TenantKey
) -> None:
    setup = await ready(api)
    payout = await preview(api, setup, 500)
    await step(api, payout, "PENDING")
    await step(api, payout, "PROCESSING")
    async with db.write() as conn:
        issued = await auth.create_key(
            conn, tenant.tenant_id, ["payouts:write"], "no settle", SystemClock().now()
        )
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {issued.key}"}
    ) as writer:
        refused = await move(writer, payout["id"], "COMPLETED")
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
        assert (await writer.get(f"/v1/payouts/{payout['id']}")).json()["status"] == "PROCESSING"
    # Another tenant does not see the payout at all.
    other = await make_tenant(db)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {other.key}"}
    ) as stranger:
        assert (await move(stranger, payout["id"], "COMPLETED")).status_code == 404
        assert (await stranger.get(f"/v1/payouts/{payout['id']}")).status_code == 404
    assert await balances(api, setup) == (10_000, 555, 9_445)


async def test_forty_concurrent_pendings_on_room_for_twenty_five(api: httpx.AsyncClient) -> None:
    free = {**BANK_TRANSFER, "fee": {"fixed": 0, "bps": 0}, "min_amount": 1}
    setup = await ready(api, 2_500, free)
    payouts = [await preview(api, setup, 100) for _ in range(40)]
    answers = await asyncio.gather(*(move(api, p["id"], "PENDING") for p in payouts))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 25 + [409] * 15
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"insufficient_funds"}
    assert await balances(api, setup) == (2_500, 2_500, 0)
    pending = (await api.get("/v1/payouts", params={"status": "PENDING", "limit": 100})).json()
    assert len([p for p in pending["data"] if p["wallet_id"] == setup.wallet["id"]]) == 25
