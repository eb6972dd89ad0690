"""Hosted page tests: a real ``kassa serve``, a real headless Chromium (Debian's, driven by
Playwright), and a real HTTP server standing in for the merchant's ``return_url``."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from tests.helpers import KassaServer, TenantKey, create_wallet, deposit
from tests.payouts.conftest import add_instrument

CHROMIUM = os.environ.get("KASSA_TEST_CHROMIUM", "/usr/bin/chromium")
# As root in a closed network: no sandbox, and none of Chromium's own background traffic.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPTIONS = {
    "options": [
        {
            "code": "BANK_TRANSFER",
            "instrument_types": ["SEPA_BANK_ACCOUNT"],
            "currencies": ["EUR"],
            "fee": {"fixed": 50, "bps": 100},
            "connector": "manual",
        }
    ]
}


@dataclass
class Merchant:
    """The merchant's return page: records each visit's query."""

    url: str
    visits: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def merchant_site() -> Iterator[Merchant]:
    site = Merchant("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.visits.append(self.path)
            body = b"<!doctype html><html lang='en'><title>Back</title><h1>Back at the shop</h1>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}/back"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


@dataclass
class Shop:
    api: httpx.AsyncClient
    tenant: TenantKey
    server: KassaServer
    wallet: dict[str, Any]
    instrument: dict[str, Any]

    async def checkout(self, return_url: str, **body: Any) -> dict[str, Any]:
        made = await self.api.post(
            "/v1/checkouts",
            json={
                "customer_id": self.wallet["customer_id"],
                "type": "withdrawal",
                "return_url": return_url,
                **body,
            },
        )
        assert made.status_code == 201, made.text
        checkout: dict[str, Any] = made.json()
        return checkout

    async def held(self) -> int:
        wallet = (await self.api.get(f"/v1/wallets/{self.wallet['id']}")).json()
        held: int = wallet["held_balance"]
        return held


@pytest.fixture
async def shop(api: httpx.AsyncClient, tenant: TenantKey, server: KassaServer) -> Shop:
    put = await api.put("/v1/payment-options", json=OPTIONS)
    assert put.status_code == 200, put.text
    wallet = await create_wallet(api, "EUR")
    await deposit(api, wallet["id"], 10_000)
    instrument = await add_instrument(api, wallet["customer_id"])
    return Shop(api, tenant, server, wallet, instrument)
