"""A payout's creation and its status changes are served by the app's ASGI front
(``wallets.hotpath``, ``kit.http.direct``), not by FastAPI, and answer exactly as before.

Over HTTP against the real server, on both backends. The one thing the front does that FastAPI
does not: a client that leaves while its body is read is counted as 499 (FastAPI's routes count
it as 500, the status of an answer never started), which ``/metrics`` shows by route template.
Everything a client can see is the same: the refusals are compared with those of
``PUT /v1/payment-options``, a FastAPI route that needs the same scope and takes no query
parameter either; and in-process, the front's answers with FastAPI's own for the same routes.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit.db import Database
from tests.helpers import KassaServer, TenantKey, make_tenant
from tests.payouts.conftest import BANK_TRANSFER, move, preview, ready
from tests.test_metrics import requests, scrape

CREATE = "/v1/payouts"
CHANGE = "/v1/payouts/{payout_id}/status"
FRAMEWORK_ROUTE = "/v1/payment-options"  # served by FastAPI: payouts:write, no query parameter
BIG = b" " * (64 * 1024 + 1)


async def leave_mid_body(server: KassaServer, method: str, path: str, key: str) -> None:
    """Send a request's head and part of its body, then hang up."""
    host, port = server.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"status": ')
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_both_routes_are_served_by_the_front(server: KassaServer, tenant: TenantKey) -> None:
    payout_path = f"/v1/payouts/{uuid.uuid4()}/status"
    counted = [
        ("POST", CREATE, CREATE, 499),
        ("POST", payout_path, CHANGE, 499),
        ("PUT", FRAMEWORK_ROUTE, FRAMEWORK_ROUTE, 500),  # the control: FastAPI's count
    ]
    before = await scrape(server.url)
    for method, path, _, _ in counted:
        await leave_mid_body(server, method, path, tenant.key)

    def grown(samples: dict[Any, float]) -> list[float]:
        return [
            requests(samples, method, route, status) - requests(before, method, route, status)
            for method, _, route, status in counted
        ]

    # Each request is counted once the server has seen its client leave: wait for all three.
    deadline = time.monotonic() + 30
    after = await scrape(server.url)
    while grown(after) != [1, 1, 1] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        after = await scrape(server.url)
    assert grown(after) == [1, 1, 1]


def shown(response: httpx.Response) -> dict[str, Any]:
    """All a client sees of a refusal, but the Request-Id (one of its own per answer, which
    only the whole app, the front before FastAPI, gives)."""
    return {
        "status": response.status_code,
        "content-type": response.headers["content-type"],
        "www-authenticate": response.headers.get("www-authenticate"),
        "location": response.headers.get("location"),
        "body": response.json(),
    }


@pytest.fixture
async def no_write(db: Database) -> TenantKey:
    return await make_tenant(db, scopes=["payouts:read", "wallets:read"])


async def test_refusals_answer_as_the_other_routes_do(
    server: KassaServer, api: httpx.AsyncClient, no_write: TenantKey
) -> None:
    setup = await ready(api)
    payout = await preview(api, setup, 1_000)
    new_payout = {
        "wallet_id": setup.wallet["id"],
        "amount": 1_000,
        "payment_option": BANK_TRANSFER["code"],
        "instrument_id": setup.instrument["id"],
    }
    bodies = {
        CREATE: new_payout,
        f"/v1/payouts/{payout['id']}/status": {"status": "PENDING"},
        FRAMEWORK_ROUTE: {"options": [BANK_TRANSFER], "pending_ttl_seconds": 60},
    }
    key = api.headers["Authorization"]
    cases: list[tuple[str, dict[str, str], dict[str, str], bytes | None, int, str]] = [
        ("unknown query", {"dry_run": "true"}, {}, None, 400, "unknown_parameter"),
        ("text body", {}, {"Content-Type": "text/plain"}, None, 415, "unsupported_media_type"),
        ("body too big", {}, {}, BIG, 413, "payload_too_large"),
        ("no key", {}, {"Authorization": ""}, None, 401, "unauthorized"),
        ("unknown key", {}, {"Authorization": "Bearer ksk_nope_nope"}, None, 401, "unauthorized"),
        ("basic", {}, {"Authorization": f"Basic {no_write.key}"}, None, 401, "unauthorized"),
        ("no scope", {}, {"Authorization": f"Bearer {no_write.key}"}, None, 403, "forbidden"),
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as anonymous:
        for name, params, headers, content, status, code in cases:
            answers = {}
            for path, body in bodies.items():
                sent = {"Authorization": key, "Content-Type": "application/json", **headers}
                answer = await anonymous.request(
                    "PUT" if path == FRAMEWORK_ROUTE else "POST",
                    path,
                    params=params,
                    content=content if content is not None else json.dumps(body).encode(),
                    # An empty Authorization is none: the request goes without it.
                    headers={header: value for header, value in sent.items() if value},
                )
                assert answer.headers["request-id"].startswith("req_")
                answers[path] = shown(answer)
            reference = answers.pop(FRAMEWORK_ROUTE)
            assert reference["status"] == status, (name, reference)
            assert reference["body"]["code"] == code, (name, reference)
            assert (reference["www-authenticate"] == "Bearer") is (status == 401)
            for path, seen in answers.items():
                assert seen == reference, (name, path)

    # None of them changed anything: one payout, still in PREVIEW.
    listed = await api.get("/v1/payouts", params={"wallet_id": setup.wallet["id"]})
    assert [(p["id"], p["status"]) for p in listed.json()["data"]] == [(payout["id"], "PREVIEW")]


async def test_answers_carry_location_request_id_and_replays(api: httpx.AsyncClient) -> None:
    setup = await ready(api)
    created = await api.post(
        CREATE,
        json={
            "wallet_id": setup.wallet["id"],
            "amount": 1_000,
            "payment_option": BANK_TRANSFER["code"],
            "instrument_id": setup.instrument["id"],
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/payouts/{created.json()['id']}"
    assert created.headers["request-id"].startswith("req_")
    path = f"/v1/payouts/{created.json()['id']}/status"
    keyed = {"Idempotency-Key": f"move-{uuid.uuid4()}"}
    first = await api.post(path, json={"status": "PENDING"}, headers=keyed)
    again = await api.post(path, json={"status": "PENDING"}, headers=keyed)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert first.headers["request-id"] != again.headers["request-id"]
    refused = await move(api, created.json()["id"], "COMPLETED")  # not from PENDING
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"


# In-process: the front's answers beside FastAPI's own for the same routes.


@pytest.fixture
async def clients(
    database_url: str, db: Database
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    app = create_app(Settings(database_url=database_url, auth_cache_seconds=0, worker="off"))
    paths = {route.path for route in app.direct}
    assert {CREATE, CHANGE} <= paths
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://k.test") as hot,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app.app), base_url="http://k.test"
        ) as framework,
    ):
        yield hot, framework


async def test_the_front_answers_as_fastapi_did(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], db: Database
) -> None:
    hot, framework = clients
    tenant, no_write = await make_tenant(db), await make_tenant(db, scopes=["payouts:read"])
    key = f"Bearer {tenant.key}"
    hot.headers["Authorization"] = key
    setup = await ready(hot)
    payout = await preview(hot, setup, 1_000)
    del hot.headers["Authorization"]
    status_path = f"/v1/payouts/{payout['id']}/status"
    new_payout = (
        b'{"wallet_id": "%s", "amount": 1000, "payment_option": "BANK_TRANSFER",'
        b' "instrument_id": "%s"}' % (setup.wallet["id"].encode(), setup.instrument["id"].encode())
    )
    cases: list[tuple[str, bytes, dict[str, str], str]] = [
        (CREATE, new_payout, {}, "?colour=red"),
        (CREATE, new_payout, {"Content-Type": "text/plain"}, ""),
        (CREATE, BIG, {}, ""),
        (CREATE, b"{not json", {}, ""),
        (CREATE, b'{"amount": 1}', {}, ""),
        (CREATE, new_payout, {"Authorization": ""}, ""),
        (CREATE, new_payout, {"Authorization": f"Basic {tenant.key}"}, ""),
        (CREATE, new_payout, {"Authorization": f"Bearer {no_write.key}"}, ""),
        (status_path, b'{"status": "PENDING"}', {}, "?colour=red&x"),
        (status_path, b'{"status": "PENDING"}', {"Content-Type": "text/plain"}, ""),
        (status_path, b'{"status": "PENDING"}', {"Authorization": "Bearer ksk_nope"}, ""),
        (status_path, b'{"status": "PENDING"}', {"Authorization": f"Bearer {no_write.key}"}, ""),
        (status_path, b'{"status": "COMPLETED"}', {}, ""),  # not from PREVIEW
        (status_path, b'{"status": "NOPE"}', {}, ""),
        (status_path, b"", {}, ""),
        (f"/v1/payouts/{uuid.uuid4()}/status", b'{"status": "PENDING"}', {}, ""),
        ("/v1/payouts/not-an-id/status", b'{"status": "PENDING"}', {}, ""),
    ]
    for path, content, headers, query in cases:
        sent = {"Authorization": key, "Content-Type": "application/json", **headers}
        front, alone = [
            await client.post(
                path + query,
                content=content,
                headers={header: value for header, value in sent.items() if value},
            )
            for client in (hot, framework)
        ]
        assert front.status_code >= 400, (path, content, front.text)
        assert front.headers["request-id"].startswith("req_")  # the front gives it, FastAPI not
        assert shown(front) == shown(alone), (path, content, headers, query)
    current = await hot.get(f"/v1/payouts/{payout['id']}", headers={"Authorization": key})
    assert current.json()["status"] == "PREVIEW"
