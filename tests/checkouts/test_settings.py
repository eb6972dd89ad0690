"""``/v1/checkouts/settings``: the page's frame ancestors and how instruments added on it are
marked (``added_instruments``), through the API alone."""

from __future__ import annotations

import httpx

from kassa.kit.db import Database
from tests.helpers import KassaServer, make_tenant


async def test_added_instruments_is_unverified_until_the_tenant_says_verified(
    api: httpx.AsyncClient,
) -> None:
    fresh = await api.get("/v1/checkouts/settings")
    assert fresh.status_code == 200, fresh.text
    assert fresh.json() == {"frame_ancestors": [], "added_instruments": "unverified"}
    put = await api.put("/v1/checkouts/settings", json={"added_instruments": "verified"})
    assert put.status_code == 200, put.text
    assert put.json() == {"frame_ancestors": [], "added_instruments": "verified"}
    shown = (await api.get("/v1/checkouts/settings")).json()
    assert shown == {"frame_ancestors": [], "added_instruments": "verified"}
    # PUT replaces the settings: a member left out takes its default again.
    origins = {"frame_ancestors": ["https://shop.example"]}
    assert (await api.put("/v1/checkouts/settings", json=origins)).status_code == 200
    shown = (await api.get("/v1/checkouts/settings")).json()
    assert shown == {**origins, "added_instruments": "unverified"}
    both = {"frame_ancestors": ["https://shop.example"], "added_instruments": "verified"}
    assert (await api.put("/v1/checkouts/settings", json=both)).status_code == 200
    assert (await api.get("/v1/checkouts/settings")).json() == both


async def test_a_bad_added_instruments_is_refused_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    before = {"frame_ancestors": [], "added_instruments": "verified"}
    assert (await api.put("/v1/checkouts/settings", json=before)).status_code == 200
    for bad in ("VERIFIED", "trusted", None, True, ""):
        refused = await api.put("/v1/checkouts/settings", json={"added_instruments": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["code"] == "validation_failed"
        assert [item["field"] for item in refused.json()["errors"]] == ["added_instruments"]
    assert (await api.get("/v1/checkouts/settings")).json() == before


async def test_the_setting_is_the_tenants_own_and_needs_checkouts_write(
    api: httpx.AsyncClient, server: KassaServer, db: Database
) -> None:
    assert (
        await api.put("/v1/checkouts/settings", json={"added_instruments": "verified"})
    ).status_code == 200
    other = await make_tenant(db)
    reader = await make_tenant(db, scopes=["checkouts:read"])
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        theirs = await client.get(
            "/v1/checkouts/settings", headers={"Authorization": f"Bearer {other.key}"}
        )
        assert theirs.json()["added_instruments"] == "unverified"
        refused = await client.put(
            "/v1/checkouts/settings",
            json={"added_instruments": "verified"},
            headers={"Authorization": f"Bearer {reader.key}"},
        )
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"


async def test_openapi_shows_the_member(server: KassaServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        document = (await client.get("/openapi.json")).json()
    schema = document["components"]["schemas"]["PageSettings"]
    member = schema["properties"]["added_instruments"]
    assert member["enum"] == ["unverified", "verified"]
    assert member["default"] == "unverified"
    assert "added_instruments" not in schema.get("required", [])
    path = document["paths"]["/v1/checkouts/settings"]
    for method in ("get", "put"):
        answer = path[method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/PageSettings"}, (method, answer)
