"""``/v1/webhook-endpoints``: what may be created, secrets shown once and kept encrypted,
tenants apart, the scope required."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from kassa.idempotency.tables import idempotency_keys
from kassa.webhooks.tables import webhook_endpoints
from kassa.webhooks.urls import is_public
from tests.helpers import create_wallet, make_tenant
from tests.webhooks.conftest import Hooks

PUBLIC_HTTPS = "https://93.184.215.14/kassa-hooks"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://93.184.215.14/hooks", "webhook_url_not_allowed"),  # https required
        ("https://10.1.2.3/hooks", "webhook_url_not_allowed"),
        ("https://192.168.0.7/hooks", "webhook_url_not_allowed"),
        ("https://169.254.169.254/latest/meta-data", "webhook_url_not_allowed"),
        ("https://127.0.0.2/hooks", "webhook_url_not_allowed"),
        ("https://[::1]/hooks", "webhook_url_not_allowed"),
        ("https://[::ffff:10.0.0.1]/hooks", "webhook_url_not_allowed"),
        ("https://[fd00:ec2::254]/hooks", "webhook_url_not_allowed"),
        ("https://[64:ff9b::a00:1]/hooks", "webhook_url_not_allowed"),  # NAT64 of 10.0.0.1
        ("https://100.64.0.1/hooks", "webhook_url_not_allowed"),
        ("https://0.0.0.0/hooks", "webhook_url_not_allowed"),
        ("https://localhost/hooks", "webhook_url_not_allowed"),
        ("ftp://93.184.215.14/hooks", "invalid_webhook_url"),
        ("https://user:pw@93.184.215.14/hooks", "invalid_webhook_url"),
        ("https:///hooks", "invalid_webhook_url"),
        ("not a url", "invalid_webhook_url"),
        ("https://93.184.215.14:99999/", "invalid_webhook_url"),
    ],
)
async def test_urls_kassa_must_not_call_are_refused(hooks: Hooks, url: str, code: str) -> None:
    response = await hooks.api.post("/v1/webhook-endpoints", json={"url": url})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    listed = await hooks.api.get("/v1/webhook-endpoints")
    assert listed.json()["data"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": PUBLIC_HTTPS, "event_types": []},
        {"url": PUBLIC_HTTPS, "event_types": ["wallet.exploded"]},
        {"url": PUBLIC_HTTPS, "event_types": ["*", "wallet.created"]},
        {"url": PUBLIC_HTTPS, "event_types": ["wallet.created", "wallet.created"]},
        {"url": PUBLIC_HTTPS, "enabled": "maybe"},
        {"url": PUBLIC_HTTPS, "secret": "whsec_mine"},
        {"url": "x" * 3000},
    ],
)
async def test_bad_bodies_are_refused(hooks: Hooks, body: dict[str, object]) -> None:
    response = await hooks.api.post("/v1/webhook-endpoints", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"


def test_only_global_addresses_are_public() -> None:
    assert is_public(ipaddress.ip_address("93.184.215.14"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public(ipaddress.ip_address("::ffff:169.254.169.254"))
    assert not is_public(ipaddress.ip_address("224.0.0.1"))


async def test_an_endpoint_shows_its_secret_once_and_keeps_it_encrypted(hooks: Hooks) -> None:
    created = await hooks.api.post(
        "/v1/webhook-endpoints",
        json={"url": PUBLIC_HTTPS, "event_types": ["wallet.debited"], "description": "ops"},
        headers={"Idempotency-Key": "endpoint-1"},
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    secret = endpoint["secret"]
    assert endpoint["url"] == PUBLIC_HTTPS
    assert endpoint["event_types"] == ["wallet.debited"]
    assert endpoint["enabled"] is True
    assert endpoint["disabled_reason"] is None

    shown = await hooks.api.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert shown.json() == {k: v for k, v in endpoint.items() if k != "secret"}
    listed = await hooks.api.get("/v1/webhook-endpoints")
    assert [e["id"] for e in listed.json()["data"]] == [endpoint["id"]]
    assert "secret" not in listed.json()["data"][0]

    # A retry with the same key replays the answer byte for byte, secret included ...
    again = await hooks.api.post(
        "/v1/webhook-endpoints",
        json={"url": PUBLIC_HTTPS, "event_types": ["wallet.debited"], "description": "ops"},
        headers={"Idempotency-Key": "endpoint-1"},
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == created.content
    # ... yet neither the endpoint's row nor the stored answer holds the secret in the clear.
    raw_secret = secret.encode()
    async with hooks.db.read() as conn:
        stored = (await conn.execute(select(webhook_endpoints))).all()
        answers = (await conn.execute(select(idempotency_keys))).all()
    assert len(stored) == 1
    assert len(answers) == 1
    for value in (*stored[0], *answers[0]):
        if isinstance(value, bytes | str):
            text = value if isinstance(value, bytes) else value.encode()
            assert raw_secret not in text
            assert secret.removeprefix("whsec_").encode() not in text
    assert answers[0].sealed is True


async def test_endpoints_page_newest_first(hooks: Hooks) -> None:
    ids = []
    for n in range(5):
        created = await hooks.endpoint(f"{PUBLIC_HTTPS}/{n}")
        ids.append(created["id"])
        hooks.clock.advance(timedelta(seconds=1))
    first = await hooks.api.get("/v1/webhook-endpoints", params={"limit": 2})
    assert [e["id"] for e in first.json()["data"]] == ids[::-1][:2]
    assert first.json()["has_more"] is True
    rest = await hooks.api.get(
        "/v1/webhook-endpoints", params={"limit": 10, "starting_after": ids[3]}
    )
    assert [e["id"] for e in rest.json()["data"]] == ids[::-1][2:]
    assert rest.json()["has_more"] is False


async def test_another_tenants_endpoints_and_events_are_not_found(hooks: Hooks) -> None:
    mine = await hooks.endpoint(PUBLIC_HTTPS)
    await create_wallet(hooks.api)
    (event,) = (await hooks.api.get("/v1/events")).json()["data"]
    other = await make_tenant(hooks.db)
    async with await hooks.client_for(other) as theirs:
        for response in (
            await theirs.get(f"/v1/webhook-endpoints/{mine['id']}"),
            await theirs.delete(f"/v1/webhook-endpoints/{mine['id']}"),
            await theirs.post(f"/v1/webhook-endpoints/{mine['id']}/roll-secret"),
            await theirs.get(f"/v1/events/{event['id']}/deliveries"),
            await theirs.post(f"/v1/events/{event['id']}/redeliver"),
            await theirs.post(
                f"/v1/events/{event['id']}/redeliver", json={"endpoint_id": mine["id"]}
            ),
        ):
            assert response.status_code == 404, response.text
        assert (await theirs.get("/v1/webhook-endpoints")).json()["data"] == []
    assert (await hooks.api.get(f"/v1/webhook-endpoints/{mine['id']}")).status_code == 200


async def test_webhooks_need_their_scope(hooks: Hooks, fresh_database_url: str) -> None:
    limited = await make_tenant(hooks.db, scopes=["wallets:read", "wallets:write", "events:read"])
    async with await hooks.client_for(limited) as client:
        for response in (
            await client.post("/v1/webhook-endpoints", json={"url": PUBLIC_HTTPS}),
            await client.get("/v1/webhook-endpoints"),
            await client.get(f"/v1/events/{uuid.uuid4()}/deliveries"),
            await client.post(f"/v1/events/{uuid.uuid4()}/redeliver"),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["code"] == "forbidden"


async def test_malformed_ids_are_404s_or_422s_never_500s(hooks: Hooks) -> None:
    for response in (
        await hooks.api.get("/v1/webhook-endpoints/not-an-id"),
        await hooks.api.delete("/v1/webhook-endpoints/not-an-id"),
        await hooks.api.post("/v1/events/not-an-id/redeliver"),
        await hooks.api.get("/v1/webhook-endpoints", params={"starting_after": str(uuid.uuid4())}),
    ):
        assert response.status_code in (404, 422), response.text
    bad = await hooks.api.post("/v1/events/x/redeliver", json={"endpoint_id": "nope"})
    assert bad.status_code in (404, 422)


async def test_a_disabled_endpoint_cannot_be_named_for_redelivery(hooks: Hooks) -> None:
    off = await hooks.endpoint(PUBLIC_HTTPS, enabled=False)
    await create_wallet(hooks.api)
    (event,) = (await hooks.api.get("/v1/events")).json()["data"]
    response = await hooks.api.post(
        f"/v1/events/{event['id']}/redeliver", json={"endpoint_id": off["id"]}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "webhook_endpoint_disabled"
