"""Many withdrawals at once on one wallet, through the real server: never an overdraft."""

from __future__ import annotations

import asyncio

import httpx

from tests.helpers import KassaServer, TenantKey, create_wallet, deposit, get_wallet, run_cli


async def test_fifty_concurrent_withdrawals_never_overdraw(
    api: httpx.AsyncClient, server: KassaServer, tenant: TenantKey
) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1000)

    async def withdraw() -> httpx.Response:
        return await api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 30})

    responses = await asyncio.gather(*(withdraw() for _ in range(50)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(201) == 33
    assert statuses.count(409) == 17
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"insufficient_funds"}
    # Every success saw a distinct balance: no lost update.
    afters = sorted(r.json()["balance_after"] for r in responses if r.status_code == 201)
    assert afters == list(range(10, 1000, 30))

    final = await get_wallet(api, wallet["id"])
    assert final["balance"] == 10
    assert final["available_balance"] == 10

    result = await asyncio.to_thread(
        run_cli, server.database_url, "verify", "--tenant", str(tenant.tenant_id)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
