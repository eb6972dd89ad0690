"""One wallet through /v1 and every dialect in turn: one ledger, one set of balances."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from kassa.app import create_app
from kassa.config import Settings
from tests.compat.conftest import funded_wallet
from tests.helpers import KassaServer, TenantKey, get_wallet, run_cli


async def test_every_view_shows_the_same_balances(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey, server: KassaServer
) -> None:
    customer = "77001"
    wallet = await funded_wallet(native, customer, 10_000)  # 100.00 SAR
    bearer = {"Authorization": f"Bearer {sar.key}"}

    salla = await plain.post(
        "/compat/salla/admin/v2/customers/wallets/withdraw",
        json={"customer_id": 77001, "amount": 22},
        headers=bearer,
    )
    assert salla.status_code == 200, salla.text
    assert salla.json()["data"]["wallet"]["balance"] == 78

    walletapi = await plain.post(
        "/compat/walletapi/api/v1/wallet/withdraw",
        json={"Id": wallet["id"], "Amount": 1.5, "ExternalReference": "w-77001-1"},
        headers={"apikeypublic": sar.key, "apiclientpublic": str(sar.tenant_id)},
    )
    assert walletapi.status_code == 200, walletapi.text
    assert walletapi.json()["Value"]["Balance"] == 76.5

    autional = await plain.post(
        f"/compat/autional/wallets/{customer}/withdraw",
        json={"amount": "10.25", "reference_id": "a-77001-1"},
        headers=bearer,
    )
    assert autional.status_code == 200, autional.text
    data = autional.json()["data"]
    assert data["transaction"]["balance_before"] == "76.50"
    assert data["wallet"]["balance"] == "66.25"

    native_view = await get_wallet(native, wallet["id"])
    assert native_view["balance"] == native_view["available_balance"] == 6_625
    assert Decimal(data["wallet"]["balance"]) == Decimal(native_view["balance"]) / 100

    withdrawals = (
        await native.get(f"/v1/wallets/{wallet['id']}/transactions", params={"kind": "withdrawal"})
    ).json()["data"]
    assert [t["amount"] for t in withdrawals] == [1_025, 150, 2_200]
    assert [t["balance_after"] for t in withdrawals] == [6_625, 7_650, 7_800]
    debited = (await native.get("/v1/events", params={"type": "wallet.debited"})).json()["data"]
    assert [event["data"]["id"] for event in debited] == [t["id"] for t in withdrawals]

    verified = run_cli(server.database_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK" in verified.stdout


async def test_each_dialect_has_its_own_openapi_tag(native: httpx.AsyncClient) -> None:
    schema = (await native.get("/openapi.json")).json()
    tags = {
        path: {tag for operation in item.values() for tag in operation.get("tags", [])}
        for path, item in schema["paths"].items()
    }
    assert tags["/compat/salla/admin/v2/customers/wallets/withdraw"] == {"Salla dialect"}
    assert tags["/compat/walletapi/api/v1/wallet/withdraw"] == {"WalletAPI dialect"}
    assert tags["/compat/autional/wallets/{user_id}/withdraw"] == {"Autional dialect"}


async def test_a_dialect_switched_off_is_not_served(database_url: str, sar: TenantKey) -> None:
    app = create_app(
        Settings(
            database_url=database_url,
            auth_cache_seconds=0,
            worker="off",
            dialects=frozenset({"autional"}),
        )
    )
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://kassa.test",
            headers={"Authorization": f"Bearer {sar.key}"},
        ) as client,
    ):
        off = await client.post(
            "/compat/salla/admin/v2/customers/wallets/withdraw",
            json={"customer_id": 1, "amount": 1},
        )
        assert off.status_code == 404
        on = await client.post("/compat/autional/wallets/nobody/withdraw", json={"amount": "1"})
        assert on.status_code == 404
        assert set(on.json()) == {"code", "message", "timestamp"}  # Autional's own shape


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dialects: soup"):
        create_app(Settings(dialects=frozenset({"soup"}), worker="off"))
