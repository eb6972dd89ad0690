"""``PATCH /v1/webhook-endpoints/{id}``: an endpoint Kassa disabled on a 410 can be enabled
again, disabling cancels what is pending, a new URL passes the same policy, members left out
stay, and other tenants' endpoints are not found."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import create_wallet, deposit, make_tenant
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.test_delivery import deliveries_of, event_ids
from tests.webhooks.test_endpoints_api import PUBLIC_HTTPS


async def change(hooks: Hooks, endpoint_id: str, body: Any, status: int = 200) -> Any:
    response = await hooks.api.patch(f"/v1/webhook-endpoints/{endpoint_id}", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def test_an_endpoint_disabled_on_a_410_is_enabled_again(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.replies = [Reply(410, body=b"gone")]
    endpoint = await hooks.endpoint(receiver.url)
    wallet = await create_wallet(hooks.api)
    assert await hooks.drain() == 1
    shown = await hooks.api.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert shown.json()["enabled"] is False

    enabled = await change(hooks, endpoint["id"], {"enabled": True})
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] is None
    assert enabled["url"] == receiver.url  # left out, so unchanged
    await deposit(hooks.api, wallet["id"], 100)
    assert await hooks.drain() == 1
    assert [json.loads(r.body)["type"] for r in receiver.received] == [
        "wallet.created",
        "wallet.credited",
    ]


async def test_disabling_cancels_pending_deliveries_and_makes_no_new_ones(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint = await hooks.endpoint(receiver.url)
    wallet = await create_wallet(hooks.api)
    disabled = await change(hooks, endpoint["id"], {"enabled": False})
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] is None  # the tenant disabled it, not Kassa
    (event_id,) = await event_ids(hooks.api)
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "canceled"
    await deposit(hooks.api, wallet["id"], 100)
    assert await hooks.drain() == 0
    assert receiver.received == []


async def test_url_event_types_and_description_change_alone(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint = await hooks.endpoint(PUBLIC_HTTPS, description="old", event_types=["*"])
    refused = await hooks.api.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"url": "https://10.0.0.8/hooks"}
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "webhook_url_not_allowed"

    moved = await change(hooks, endpoint["id"], {"url": receiver.url})
    assert (moved["url"], moved["description"]) == (receiver.url, "old")
    narrowed = await change(hooks, endpoint["id"], {"event_types": ["wallet.credited"]})
    assert narrowed["event_types"] == ["wallet.credited"]
    cleared = await change(hooks, endpoint["id"], {"description": None})
    assert (cleared["description"], cleared["url"]) == (None, receiver.url)

    wallet = await create_wallet(hooks.api)  # wallet.created: not wanted any more
    await deposit(hooks.api, wallet["id"], 100)
    assert await hooks.drain() == 1
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["wallet.credited"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": None},
        {"enabled": None},
        {"event_types": None},
        {"event_types": []},
        {"event_types": ["wallet.exploded"]},
        {"enabled": "maybe"},
        {"secret": "whsec_mine"},
        {"url": "not a url"},
        [],
    ],
)
async def test_bad_changes_are_refused_and_change_nothing(hooks: Hooks, body: Any) -> None:
    endpoint = await hooks.endpoint(PUBLIC_HTTPS, description="kept")
    response = await hooks.api.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("validation_failed", "invalid_webhook_url")
    shown = await hooks.api.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    unchanged = {k: endpoint[k] for k in ("url", "event_types", "description", "enabled")}
    assert {k: shown.json()[k] for k in unchanged} == unchanged


async def test_another_tenants_or_a_deleted_endpoint_is_not_found(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint(PUBLIC_HTTPS)
    other = await make_tenant(hooks.db)
    async with await hooks.client_for(other) as theirs:
        response = await theirs.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}
        )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert (await hooks.api.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()["enabled"]

    assert (await hooks.api.delete(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 200
    await change(hooks, endpoint["id"], {"enabled": True}, status=404)


async def test_event_types_dropped_cancel_their_pending_deliveries(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.default = Reply(503)  # nothing succeeds: every delivery stays pending
    endpoint = await hooks.endpoint(receiver.url)
    wallet = await create_wallet(hooks.api)
    await deposit(hooks.api, wallet["id"], 100)
    assert await hooks.drain() == 2
    created, credited = await event_ids(hooks.api)

    await change(hooks, endpoint["id"], {"event_types": ["wallet.credited", "wallet.debited"]})
    assert [d["status"] for d in await deliveries_of(hooks.api, created)] == ["canceled"]
    assert [d["status"] for d in await deliveries_of(hooks.api, credited)] == ["pending"]
    await change(hooks, endpoint["id"], {"event_types": ["*"]})  # widening cancels nothing
    assert [d["status"] for d in await deliveries_of(hooks.api, credited)] == ["pending"]


@pytest.mark.parametrize("endpoint_format", ["paysafe", "soap"])
async def test_a_dialect_format_refuses_kassa_events_alike_on_create_and_change(
    hooks: Hooks, endpoint_format: str
) -> None:
    """An endpoint in a dialect's format takes only that dialect's events: asked for another on
    creation or on a change, the refusal names the same field with the same code."""
    created = await hooks.api.post(
        "/v1/webhook-endpoints",
        json={"url": PUBLIC_HTTPS, "format": endpoint_format, "event_types": ["wallet.credited"]},
    )
    assert created.status_code == 422, created.text
    endpoint = await hooks.endpoint(PUBLIC_HTTPS, format=endpoint_format)
    changed = await hooks.api.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"event_types": ["wallet.credited"]}
    )
    assert changed.status_code == 422, changed.text
    for refused in (created.json(), changed.json()):
        assert refused["code"] == "validation_failed"
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [
            ("event_types", "format_event_types")
        ]
    shown = await hooks.api.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert shown.json()["event_types"] == endpoint["event_types"]
