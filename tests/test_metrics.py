"""``/metrics``: the real server's two workers add up their counts, requests are labelled by
route template (never an id), the database's backlog is shown, and ``KASSA_METRICS_TOKEN``
guards the endpoint."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kassa.app import create_app
from kassa.config import Settings
from tests.helpers import KassaServer, TenantKey, create_wallet
from tests.payouts.conftest import preview, ready

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
DEPOSITS = "/v1/wallets/{wallet_id}/deposits"
WALLET = "/v1/wallets/{wallet_id}"


async def scrape(url: str, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples_of(response.text)


def samples_of(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests(samples: Samples, method: str, route: str, status: int) -> float:
    key = (
        "kassa_http_requests_total",
        (("method", method), ("route", route), ("status", str(status))),
    )
    return samples.get(key, 0.0)


def timed(samples: Samples, method: str, route: str) -> float:
    key = ("kassa_http_request_duration_seconds_count", (("method", method), ("route", route)))
    return samples.get(key, 0.0)


def gauge(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_both_workers_are_counted_by_route_template(
    server: KassaServer, tenant: TenantKey
) -> None:
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
        wallet = await create_wallet(api)
    before = await scrape(server.url)

    async def deposit_on_a_new_connection() -> None:
        # A connection each: the kernel spreads them over both workers' sockets.
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as one:
            answer = await one.post(f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 5})
            assert answer.status_code == 201, answer.text

    await asyncio.gather(*(deposit_on_a_new_connection() for _ in range(10)))
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
        for _ in range(3):
            assert (await api.get(f"/v1/wallets/{uuid.uuid4()}")).status_code == 404
        assert (await api.get("/v1/no-such-thing")).status_code == 404
    after = await scrape(server.url)

    assert requests(after, "POST", DEPOSITS, 201) - requests(before, "POST", DEPOSITS, 201) == 10
    assert timed(after, "POST", DEPOSITS) - timed(before, "POST", DEPOSITS) == 10
    assert requests(after, "GET", WALLET, 404) - requests(before, "GET", WALLET, 404) == 3
    assert requests(after, "GET", "unmatched", 404) - requests(before, "GET", "unmatched", 404) == 1
    labels = {value for (_name, pairs) in after for (_label, value) in pairs}
    assert wallet["id"] not in labels  # templates, never ids
    assert str(tenant.tenant_id) not in labels


async def test_the_database_backlog_is_shown(server: KassaServer, tenant: TenantKey) -> None:
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
        setup = await ready(api)  # the server's worker is off: nothing moves on by itself
        before = await scrape(server.url)
        await preview(api, setup, 500)
        await preview(api, setup, 600)
        endpoint = await api.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hooks"})
        assert endpoint.status_code == 201, endpoint.text
        await create_wallet(api)  # one wallet.created event: one delivery to the endpoint
    after = await scrape(server.url)

    def change(name: str, **labels: str) -> float:
        return gauge(after, name, **labels) - gauge(before, name, **labels)

    assert change("kassa_payouts_open", status="PREVIEW") == 2
    assert change("kassa_payouts_open", status="PENDING") == 0
    assert change("kassa_webhook_deliveries_pending") >= 1  # the two previews' events, too
    assert gauge(after, "kassa_webhook_delivery_lag_seconds") > 0  # due, and nobody sends


@pytest.fixture
async def guarded(fresh_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=fresh_database_url, worker="off", metrics_token="s3cret")
    app = create_app(settings)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://k") as client,
    ):
        yield client


async def test_a_metrics_token_guards_the_endpoint(guarded: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        refused = await guarded.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
    allowed = await guarded.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200
    assert "kassa_webhook_deliveries_pending 0.0" in allowed.text


async def test_the_in_process_app_counts_without_multiprocess_files(
    fresh_database_url: str,
) -> None:
    """One process (``--workers 1``, tests): the same figures from the process's registry."""
    app = create_app(Settings(database_url=fresh_database_url, worker="off"))
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://k") as client,
    ):
        first = await client.get("/metrics")
        assert (await client.get("/healthz")).status_code == 200
        second = await client.get("/metrics")
    before, after = samples_of(first.text), samples_of(second.text)
    assert requests(after, "GET", "/healthz", 200) - requests(before, "GET", "/healthz", 200) == 1
    assert requests(after, "GET", "/metrics", 200) - requests(before, "GET", "/metrics", 200) == 1


async def test_without_a_token_only_this_machine_may_read_metrics(
    fresh_database_url: str,
) -> None:
    app = create_app(Settings(database_url=fresh_database_url, worker="off"))
    async with app.lifespan():
        for client, status in ((("203.0.113.9", 4000), 403), (("::1", 4000), 200)):
            transport = httpx.ASGITransport(app=app, client=client)
            async with httpx.AsyncClient(transport=transport, base_url="http://k") as remote:
                response = await remote.get("/metrics")
            assert response.status_code == status, response.text
        assert response.text.startswith("# HELP")
