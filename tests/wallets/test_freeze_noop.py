"""Freezing shows its reason on the wallet and its event; freezing a wallet frozen just so, or
unfreezing an active one, changes nothing and emits no event. Over HTTP, both backends."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import create_wallet


async def _wallet_events(api: httpx.AsyncClient, wallet_id: str) -> list[dict[str, Any]]:
    events = (await api.get("/v1/events", params={"limit": 100})).json()["data"]
    return [e for e in events if e["data"].get("id") == wallet_id]


async def test_a_freeze_shows_its_reason_and_repeats_change_nothing(
    api: httpx.AsyncClient,
) -> None:
    wallet = await create_wallet(api)
    assert wallet["freeze_reason"] is None
    unfrozen = await api.post(f"/v1/wallets/{wallet['id']}/unfreeze")
    assert unfrozen.status_code == 200
    assert unfrozen.json()["updated_at"] == wallet["updated_at"]
    assert [e["type"] for e in await _wallet_events(api, wallet["id"])] == ["wallet.created"]

    frozen = await api.post(f"/v1/wallets/{wallet['id']}/freeze", json={"reason": "review"})
    assert frozen.status_code == 200, frozen.text
    assert (frozen.json()["status"], frozen.json()["freeze_reason"]) == ("frozen", "review")
    again = await api.post(f"/v1/wallets/{wallet['id']}/freeze", json={"reason": "review"})
    assert again.json() == frozen.json()
    events = await _wallet_events(api, wallet["id"])
    assert [e["type"] for e in events] == ["wallet.frozen", "wallet.created"]
    assert events[0]["data"]["freeze_reason"] == "review"

    # Another reason is a change.
    other = await api.post(f"/v1/wallets/{wallet['id']}/freeze", json={"reason": "fraud check"})
    assert other.json()["freeze_reason"] == "fraud check"
    thawed = await api.post(f"/v1/wallets/{wallet['id']}/unfreeze")
    assert (thawed.json()["status"], thawed.json()["freeze_reason"]) == ("active", None)
    types = [e["type"] for e in await _wallet_events(api, wallet["id"])]
    assert types == ["wallet.unfrozen", "wallet.frozen", "wallet.frozen", "wallet.created"]


async def test_wallet_exists_names_the_wallet_and_says_when_it_is_closed(
    api: httpx.AsyncClient,
) -> None:
    wallet = await create_wallet(api)
    body = {"customer_id": wallet["customer_id"], "currency": "EUR"}
    again = await api.post("/v1/wallets", json=body)
    assert again.status_code == 409
    assert (again.json()["code"], again.json()["wallet_id"]) == ("wallet_exists", wallet["id"])
    assert "closed" not in again.json()["detail"]
    closed = await api.delete(f"/v1/wallets/{wallet['id']}")
    assert closed.status_code == 200, closed.text
    after_close = await api.post("/v1/wallets", json=body)
    assert after_close.status_code == 409
    assert after_close.json()["wallet_id"] == wallet["id"]
    assert "closed" in after_close.json()["detail"]
