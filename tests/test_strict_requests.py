"""Strict requests, over HTTP against the real server on both backends: a query parameter an
operation does not take is refused (400 ``unknown_parameter``, naming it), never ignored; a body
that says it is not JSON is refused (415), never read as JSON behind the client's back. Either
way nothing changes."""

from __future__ import annotations

import httpx

from tests.helpers import create_wallet, deposit, get_wallet


async def test_an_unknown_query_parameter_is_refused_by_name(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    for path, params in (
        ("/v1/payouts", {"colour": "red"}),
        ("/v1/wallets", {"customer_id": wallet["customer_id"], "bogus": "1"}),
        (f"/v1/wallets/{wallet['id']}/transactions", {"limit": "5", "sort": "asc"}),
        ("/v1/events", {"typ": "wallet.created"}),
    ):
        answer = await api.get(path, params=params)
        assert answer.status_code == 400, (path, answer.text)
        problem = answer.json()
        assert problem["code"] == "unknown_parameter"
        unknown = sorted(set(params) - {"customer_id", "limit"})
        assert [item["field"] for item in problem["errors"]] == unknown
        assert answer.headers["content-type"] == "application/problem+json"
    # Declared parameters still work.
    listed = await api.get("/v1/wallets", params={"customer_id": wallet["customer_id"]})
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["data"]] == [wallet["id"]]


async def test_money_routes_take_no_query_parameter_and_move_nothing(
    api: httpx.AsyncClient,
) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1_000)
    for route in ("withdrawals", "deposits"):
        answer = await api.post(
            f"/v1/wallets/{wallet['id']}/{route}", params={"dry_run": "true"}, json={"amount": 5}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "unknown_parameter"
    assert (await get_wallet(api, wallet["id"]))["balance"] == 1_000


async def test_a_body_that_is_not_said_to_be_json_is_415_and_moves_nothing(
    api: httpx.AsyncClient,
) -> None:
    wallet = await create_wallet(api)
    await deposit(api, wallet["id"], 1_000)
    url = f"/v1/wallets/{wallet['id']}/withdrawals"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        answer = await api.post(
            url, content=b'{"amount": 100}', headers={"Content-Type": content_type}
        )
        assert answer.status_code == 415, (content_type, answer.text)
        problem = answer.json()
        assert problem["code"] == "unsupported_media_type"
        assert "application/json" in problem["detail"]
    form = await api.post(url, data={"amount": "100"})
    assert form.status_code == 415
    assert "not forms" in form.json()["detail"]
    refused = await api.post(
        "/v1/wallets",
        content=b'{"customer_id": "c-415", "currency": "EUR"}',
        headers={"Content-Type": "text/plain"},
    )
    assert refused.status_code == 415
    assert (await get_wallet(api, wallet["id"]))["balance"] == 1_000

    # JSON said as JSON (with a charset, or as a +json type) is taken.
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        taken = await api.post(
            url, content=b'{"amount": 100}', headers={"Content-Type": content_type}
        )
        assert taken.status_code == 201, taken.text
    assert (await get_wallet(api, wallet["id"]))["balance"] == 800


async def test_a_dialect_refuses_a_text_body_in_its_own_shape(
    api: httpx.AsyncClient,
) -> None:
    wallet = await create_wallet(api, "EUR")
    await deposit(api, wallet["id"], 1_000)
    answer = await api.post(
        f"/compat/autional/wallets/{wallet['customer_id']}/withdraw",
        content=b'{"amount": "1.00", "currency": "EUR"}',
        headers={"Content-Type": "text/plain"},
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert (await get_wallet(api, wallet["id"]))["balance"] == 1_000


async def test_head_answers_every_get_without_a_body(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    for path in (f"/v1/wallets/{wallet['id']}", "/v1/wallets", "/healthz", "/openapi.json"):
        got = await api.get(path)
        head = await api.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]


async def test_a_405_says_which_methods_are_allowed(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    for method, path, allowed in (
        ("PUT", "/v1/wallets", "GET, HEAD, POST"),
        ("GET", f"/v1/wallets/{wallet['id']}/withdrawals", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
    ):
        answer = await api.request(method, path)
        assert answer.status_code == 405, (method, path, answer.text)
        assert answer.headers["allow"] == allowed
        assert answer.json()["code"] == "method_not_allowed"


async def test_a_trailing_slash_is_404_never_a_redirect(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    for path in ("/v1/wallets/", f"/v1/wallets/{wallet['id']}/"):
        answer = await api.get(path)
        assert answer.status_code == 404, answer.text
        assert "location" not in answer.headers
        assert answer.json()["code"] == "not_found"
    posted = await api.post(f"/v1/wallets/{wallet['id']}/deposits/", json={"amount": 5})
    assert posted.status_code == 404
    assert (await get_wallet(api, wallet["id"]))["balance"] == 0


async def test_every_answer_carries_its_own_request_id(api: httpx.AsyncClient) -> None:
    wallet = await create_wallet(api)
    answers = [
        await api.post(f"/v1/wallets/{wallet['id']}/deposits", json={"amount": 5}),
        await api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 10**9}),
        await api.get(f"/v1/wallets/{wallet['id']}"),
        await api.get("/v1/nowhere"),
        await api.put("/v1/wallets"),
        await api.get("/healthz", headers={"Authorization": "Bearer nope"}),
        await api.post(
            f"/compat/autional/wallets/{wallet['customer_id']}/withdraw",
            json={"amount": "0.01", "currency": "EUR"},
        ),
    ]
    ids = [answer.headers.get("request-id") for answer in answers]
    assert all(rid is not None and rid.startswith("req_") and len(rid) == 28 for rid in ids), ids
    assert len(set(ids)) == len(ids)


async def test_a_body_that_is_not_an_object_says_so_in_jsons_words(
    api: httpx.AsyncClient,
) -> None:
    wallet = await create_wallet(api)
    for path in ("/v1/wallets", f"/v1/wallets/{wallet['id']}/deposits", "/v1/payouts"):
        for body in (b"[1, 2]", b'"text"', b"7"):
            answer = await api.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 422, answer.text
            problem = answer.json()
            assert problem["errors"] == [
                {"field": "body", "code": "object_expected", "message": "must be an object"}
            ]
            assert "NewWallet" not in answer.text
            assert "DepositIn" not in answer.text
    assert (await get_wallet(api, wallet["id"]))["balance"] == 0
