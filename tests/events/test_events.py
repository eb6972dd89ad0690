"""Every wallet change writes its event in the same transaction; a refused one writes none."""

from __future__ import annotations

from typing import Any

import httpx

from kassa.kit.db import Database
from tests.helpers import KassaServer, create_wallet, deposit, make_tenant


async def events(api: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def post(api: httpx.AsyncClient, path: str, **body: Any) -> dict[str, Any]:
    response = await api.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def test_each_change_writes_its_event_with_the_object_after_it(
    api: httpx.AsyncClient,
) -> None:
    wallet = await create_wallet(api)
    base = f"/v1/wallets/{wallet['id']}"
    credited = await deposit(api, wallet["id"], 1000)
    debited = await post(api, f"{base}/withdrawals", amount=300)
    frozen = await post(api, f"{base}/freeze", reason="checking")
    unfrozen = await post(api, f"{base}/unfreeze")
    emptied = await post(api, f"{base}/withdrawals", amount=700)
    closed = (await api.delete(base)).json()

    page = await events(api, limit=100)
    assert page["has_more"] is False
    found = [(event["type"], event["data"]) for event in reversed(page["data"])]
    expected = [
        ("wallet.created", wallet),
        ("wallet.credited", credited),
        ("wallet.debited", debited),
        ("wallet.frozen", frozen),
        ("wallet.unfrozen", unfrozen),
        ("wallet.debited", emptied),
        ("wallet.closed", closed),
    ]
    assert found == expected
    assert found[5][1]["balance_after"] == 0
    assert found[6][1]["status"] == "closed"

    one = page["data"][0]
    again = await api.get(f"/v1/events/{one['id']}")
    assert again.status_code == 200
    assert again.json() == one


async def test_a_refused_change_writes_no_event(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    base = f"/v1/wallets/{wallet['id']}"
    await deposit(api, wallet["id"], 100)
    before = await events(api, limit=100)

    refused = [
        await api.post(f"{base}/withdrawals", json={"amount": 101}),
        await api.post(f"{base}/withdrawals", json={"amount": 1, "currency": "USD"}),
        await api.post(f"{base}/withdrawals", json={"amount": 1, "reference": "r-1"}),
        await api.post(f"{base}/withdrawals", json={"amount": 1, "reference": "r-1"}),
        await api.delete(base),  # not empty
    ]
    await post(api, f"{base}/freeze")
    refused.append(await api.post(f"{base}/withdrawals", json={"amount": 1}))
    statuses = [r.status_code for r in refused]
    assert statuses == [409, 422, 201, 409, 409, 409], [r.text for r in refused]

    after = await events(api, limit=100)
    new = [e["type"] for e in after["data"][: len(after["data"]) - len(before["data"])]]
    # Only the withdrawal that went through and the freeze.
    assert new == ["wallet.frozen", "wallet.debited"]


async def test_pages_filter_and_tenant_scope(
    api: httpx.AsyncClient, server: KassaServer, db: Database
) -> None:
    wallet = await create_wallet(api)
    for amount in (1, 2, 3):
        await deposit(api, wallet["id"], amount)

    credited = await events(api, type="wallet.credited", limit=2)
    assert [e["data"]["amount"] for e in credited["data"]] == [3, 2]
    assert credited["has_more"] is True
    rest = await events(
        api, type="wallet.credited", limit=2, starting_after=credited["data"][-1]["id"]
    )
    assert [e["data"]["amount"] for e in rest["data"]] == [1]
    assert rest["has_more"] is False

    bad_type = await api.get("/v1/events", params={"type": "wallet.exploded"})
    assert bad_type.status_code == 422
    assert bad_type.json()["code"] == "validation_failed"
    for missing in ("not-an-id", "6b0b6a52-0c4e-4d43-9d4e-7b1d3c0f8a11"):
        response = await api.get(f"/v1/events/{missing}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    other = await make_tenant(db)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {other.key}"}
    ) as stranger:
        theirs = await stranger.get(f"/v1/events/{credited['data'][0]['id']}")
        assert theirs.status_code == 404
        assert (await stranger.get("/v1/events")).json()["data"] == []

    no_scope = await make_tenant(db, scopes=["wallets:read"])
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {no_scope.key}"}
    ) as reader:
        forbidden = await reader.get("/v1/events")
        assert forbidden.status_code == 403
        assert forbidden.json()["code"] == "forbidden"
