"""One table of bad amounts and one of bad texts, sent through every route that moves money.

The routes are ``/v1`` deposits and withdrawals and each dialect's deposit and withdraw paths.
Every bad input must be a 4xx in the route's own shape (a problem document for ``/v1``, the
dialect's envelope for a dialect) and must move no money: the wallet reads the same afterwards.
A few good inputs show where the line is: they move exactly the amount they say.

Bodies are sent as raw bytes so that each value reaches the server exactly as written here: a
JSON number's own text (``1E-2``, ``10.000``) and a lone surrogate, which only a JSON escape
(``\\ud800``) can carry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from kassa.kit.errors import ValidationFailed
from kassa.kit.fields import REFERENCE, TextRule
from tests.compat.conftest import funded_wallet
from tests.compat.test_autional import SIMPLE, conforms
from tests.compat.test_salla import validate as salla_shape
from tests.compat.test_walletapi import RESPONSE_EXAMPLE
from tests.helpers import TenantKey, get_wallet

Json = dict[str, Any]
FUNDS = 100_000  # minor units in every wallet before a request


@dataclass(frozen=True)
class Route:
    """A path that moves money, and how to call it and read its refusals."""

    name: str
    path: Callable[[Json], str]
    auth: Callable[[TenantKey], dict[str, str]]
    # The body around an amount and extra members, each given as raw JSON text.
    body: Callable[[Json, str, str], str]
    amount_field: str  # the amount's member, as the route's refusals name it
    refused: Callable[[httpx.Response, str], None]  # asserts the route's refusal shape
    sign: int  # +1 deposit, -1 withdrawal
    one: str  # a good amount of 100 minor units, as JSON text
    amount_types: frozenset[str]  # the JSON types the route takes for an amount
    major: bool  # amounts in major units (else minor)
    text_fields: dict[str, str] = field(default_factory=dict)  # reference/description members


def bearer(tenant: TenantKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.key}"}


def walletapi_auth(tenant: TenantKey) -> dict[str, str]:
    return {"apikeypublic": tenant.key, "apiclientpublic": str(tenant.tenant_id)}


def members(*pairs: str) -> str:
    return "{" + ", ".join(pair for pair in pairs if pair) + "}"


def v1_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail", "code"} <= problem.keys()
    assert problem["status"] == 422
    assert problem["code"] in ("invalid_amount", "validation_failed"), problem
    assert name in [error["field"] for error in problem["errors"]], problem


def salla_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 422, response.text
    body = salla_shape(response)
    assert body["error"]["code"] == "validation_failed"
    assert name in body["error"]["fields"], body


def walletapi_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == set(RESPONSE_EXAMPLE)
    assert body["Value"] is None
    assert body["IsSuccess"] is False
    assert body["IsFailure"] is True
    assert any(message.startswith(f"{name}:") for message in body["Errors"]), body


def autional_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    conforms(body, SIMPLE)
    assert body["code"] == response.status_code
    assert name in body["message"], body


def v1_route(kind: str, sign: int) -> Route:
    return Route(
        name=f"v1-{kind}",
        path=lambda wallet: f"/v1/wallets/{wallet['id']}/{kind}",
        auth=bearer,
        body=lambda wallet, amount, extra: members(f'"amount": {amount}', extra),
        amount_field="amount",
        refused=v1_refused,
        sign=sign,
        one="100",
        amount_types=frozenset({"number"}),
        major=False,
        text_fields={"reference": "reference", "description": "description"},
    )


def salla_route(kind: str, sign: int) -> Route:
    return Route(
        name=f"salla-{kind}",
        path=lambda wallet: f"/compat/salla/admin/v2/customers/wallets/{kind}",
        auth=bearer,
        body=lambda wallet, amount, extra: members(
            f'"customer_id": {wallet["customer_id"]}', f'"amount": {amount}', extra
        ),
        amount_field="amount",
        refused=salla_refused,
        sign=sign,
        one="1",
        amount_types=frozenset({"number", "string"}),
        major=True,
    )


ROUTES = [
    v1_route("deposits", +1),
    v1_route("withdrawals", -1),
    salla_route("deposit", +1),
    salla_route("withdraw", -1),
    Route(
        name="walletapi-withdraw",
        path=lambda wallet: "/compat/walletapi/api/v1/wallet/withdraw",
        auth=walletapi_auth,
        body=lambda wallet, amount, extra: members(
            f'"Id": "{wallet["id"]}"', f'"Amount": {amount}', extra
        ),
        amount_field="Amount",
        refused=walletapi_refused,
        sign=-1,
        one="1",
        amount_types=frozenset({"number"}),
        major=True,
        text_fields={"reference": "ExternalReference", "description": "Description"},
    ),
    Route(
        name="autional-withdraw",
        path=lambda wallet: f"/compat/autional/wallets/{wallet['customer_id']}/withdraw",
        auth=bearer,
        body=lambda wallet, amount, extra: members(f'"amount": {amount}', extra),
        amount_field="amount",
        refused=autional_refused,
        sign=-1,
        one='"1.00"',
        amount_types=frozenset({"string"}),
        major=True,
        text_fields={"reference": "reference_id", "description": "description"},
    ),
]
TEXT_ROUTES = [route for route in ROUTES if route.text_fields]


# -- the tables ----------------------------------------------------------------------------------

# Each bad amount as the raw JSON text of the member's value. Every one is refused by every
# route: /v1 reads it as minor units, the dialects as major units of SAR (2 decimals).
BAD_AMOUNTS: list[tuple[str, str]] = [
    # Other digit sets: Python's Decimal() and int() read every one of them as 123.
    ("arabic-indic", '"١٢٣"'),
    ("arabic-indic-escaped", '"\\u0661\\u0662\\u0663"'),
    ("extended-arabic-indic", '"۱۲۳"'),
    ("full-width", '"\uff11\uff12\uff13"'),
    ("devanagari", '"१२३"'),
    ("bengali", '"১২৩"'),
    ("thai", '"๑๒๓"'),
    ("mathematical-bold", '"\U0001d7cf\U0001d7d0\U0001d7d1"'),
    ("mixed-digit-sets", '"1٢3"'),
    ("foreign-decimals", '"12.\u0665\u0660"'),
    ("full-width-dot", '"12\uff0e50"'),
    # Separators.
    ("underscore", '"1_000"'),
    ("underscore-decimals", '"1_000.00"'),
    ("underscore-fraction", '"10.5_0"'),
    ("comma-thousands", '"1,000"'),
    ("comma-decimal", '"1,50"'),
    ("space-thousands", '"1 000"'),
    ("narrow-space-thousands", '"1\\u202f000"'),
    # Signs.
    ("minus-string", '"-5"'),
    ("plus-string", '"+5"'),
    ("minus-number", "-5"),
    ("minus-fraction-number", "-5.50"),
    ("unicode-minus", '"\\u22125"'),
    ("minus-zero-string", '"-0"'),
    # Exponents.
    ("exponent-string", '"1e3"'),
    ("exponent-upper-string", '"1E3"'),
    ("exponent-number", "1e3"),
    ("negative-exponent-number", "1E-2"),
    ("fraction-exponent-number", "1.5e1"),
    ("zero-exponent-number", "10e0"),
    ("negative-exponent-string", '"100e-2"'),
    # Whitespace.
    ("leading-space", '" 10"'),
    ("trailing-space", '"10 "'),
    ("tab", '"\\t10"'),
    ("newline", '"10\\n"'),
    ("no-break-space", '"\\u00a010"'),
    # Dots.
    ("leading-dot", '".5"'),
    ("trailing-dot", '"5."'),
    ("dot-alone", '"."'),
    ("two-dots", '"1.2.3"'),
    # More decimals than SAR has (value-changing: refused, never rounded).
    ("three-decimals-string", '"10.001"'),
    ("three-decimals-number", "10.001"),
    ("tiny", '"0.001"'),
    ("far-decimal", '"10.0000000000000000000000000000001"'),
    # Zero.
    ("zero-string", '"0"'),
    ("zero-number", "0"),
    ("zero-decimals-string", '"0.00"'),
    ("zero-decimals-number", "0.00"),
    ("zeros", '"000"'),
    # Above 10^15 minor units.
    ("over-max-string", '"10000000000000.01"'),
    ("over-max-whole-string", '"10000000000001"'),
    ("over-max-number", "1000000000000001"),
    ("huge-number", "100000000000000000000000000000000000000"),
    ("huge-string", '"' + "9" * 5000 + '"'),
    # Not numbers at all.
    ("nan-string", '"NaN"'),
    ("nan-lower-string", '"nan"'),
    ("snan-string", '"sNaN"'),
    ("infinity-string", '"Infinity"'),
    ("minus-infinity-string", '"-Infinity"'),
    ("inf-string", '"inf"'),
    ("true", "true"),
    ("false", "false"),
    ("null", "null"),
    ("empty-string", '""'),
    ("word", '"ten"'),
    ("hex", '"0x10"'),
    ("currency-suffix", '"10 SAR"'),
    ("currency-prefix", '"$10"'),
    ("list", "[10]"),
    ("object", '{"value": 10}'),
]

# Good amounts in major units of SAR, as JSON text, and the minor units each must move exactly.
GOOD_AMOUNTS: list[tuple[str, str, int]] = [
    ("trailing-zeros-string", '"10.000"', 1_000),
    ("trailing-zeros-number", "10.000", 1_000),
    ("many-trailing-zeros-string", '"0.5000000000"', 50),
    ("leading-zeros-string", '"0010.50"', 1_050),
    ("whole-number", "12", 1_200),
    ("cents-string", '"0.01"', 1),
    ("cents-number", "0.01", 1),
]

# Each bad text as a function of the field's length limit, giving the value's raw JSON text.
BAD_TEXTS: list[tuple[str, Callable[[int], str]]] = [
    ("lone-high-surrogate", lambda limit: '"\\ud800"'),
    ("lone-low-surrogate", lambda limit: '"\\udfff"'),
    ("surrogates-reversed", lambda limit: '"\\ude00\\ud83d"'),
    ("lone-surrogate-inside", lambda limit: '"order-\\ud83d-1"'),
    ("lone-surrogate-at-end", lambda limit: '"order-1\\udbff"'),
    ("nul", lambda limit: '"a\\u0000b"'),
    ("nul-alone", lambda limit: '"\\u0000"'),
    ("one-too-long", lambda limit: '"' + "x" * (limit + 1) + '"'),
    ("one-too-long-astral", lambda limit: '"' + "😀" * (limit + 1) + '"'),
    ("number", lambda limit: "7"),
    ("boolean", lambda limit: "true"),
    ("list", lambda limit: '["a"]'),
]
LIMITS = {"reference": 255, "description": 1000}

# Good texts, raw JSON text, and what must be stored.
GOOD_TEXTS: list[tuple[str, Callable[[int], str], Callable[[int], str]]] = [
    ("surrogate-pair", lambda limit: '"\\ud83d\\ude00"', lambda limit: "😀"),
    ("astral-at-the-limit", lambda limit: '"' + "😀" * limit + '"', lambda limit: "😀" * limit),
    ("arabic", lambda limit: '"سحب"', lambda limit: "سحب"),
]


def json_type(text: str) -> str:
    return "string" if text.startswith('"') else "number"


# -- the text rule itself, without a server ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (chr(0xD800), "string_unicode"),
        (chr(0xDFFF), "string_unicode"),
        (chr(0xDE00) + chr(0xD83D), "string_unicode"),  # a pair in the wrong order
        (f"order-{chr(0xD83D)}-1", "string_unicode"),
        ("a\x00b", "invalid_character"),
        ("", "string_too_short"),
        ("x" * 256, "string_too_long"),
        ("\U0001f600" * 256, "string_too_long"),
        (7, "string_type"),
        (None, "string_type"),
        (b"bytes", "string_type"),
    ],
    ids=ascii,
)
def test_the_text_rule_refuses_what_cannot_be_stored(value: object, code: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        REFERENCE.check(value, "reference_id")
    assert [(e["field"], e["code"]) for e in raised.value.errors] == [("reference_id", code)]


@pytest.mark.parametrize(
    "value", ["x", "x" * 255, "\U0001f600" * 255, "caf\u00e9", "\u0633\u062d\u0628"], ids=ascii
)
def test_the_text_rule_accepts_any_unicode_scalar_values_up_to_the_limit(value: str) -> None:
    assert REFERENCE.check(value, "reference") == value
    assert TextRule(0, 255).fault("") is None


# -- the checks ----------------------------------------------------------------------------------


@pytest.fixture
async def wallet(native: httpx.AsyncClient) -> Json:
    """A SAR wallet with 1,000.00 in it, for a numeric customer id (as Salla needs)."""
    customer = str(uuid.uuid4().int % 10**12 + 1)
    funded = await funded_wallet(native, customer, FUNDS)
    return await get_wallet(native, funded["id"])


async def post(
    plain: httpx.AsyncClient, route: Route, tenant: TenantKey, wallet: Json, body: str
) -> httpx.Response:
    headers = {**route.auth(tenant), "Content-Type": "application/json"}
    return await plain.post(route.path(wallet), content=body.encode(), headers=headers)


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
@pytest.mark.parametrize(("case", "amount"), BAD_AMOUNTS, ids=[c for c, _ in BAD_AMOUNTS])
async def test_a_bad_amount_is_refused_in_the_routes_shape_and_moves_nothing(
    plain: httpx.AsyncClient,
    native: httpx.AsyncClient,
    sar: TenantKey,
    wallet: Json,
    route: Route,
    case: str,
    amount: str,
) -> None:
    response = await post(plain, route, sar, wallet, route.body(wallet, amount, ""))
    route.refused(response, route.amount_field)
    assert await get_wallet(native, wallet["id"]) == wallet, case


def good_amount_cases() -> list[Any]:
    """Each good amount through each dialect that takes its JSON type (``/v1`` takes only
    integers of minor units: tests/wallets/test_bad_input.py has its boundaries)."""
    return [
        pytest.param(route, amount, minor, id=f"{route.name}-{case}")
        for route in ROUTES
        if route.major
        for case, amount, minor in GOOD_AMOUNTS
        if json_type(amount) in route.amount_types
    ]


@pytest.mark.parametrize(("route", "amount", "minor"), good_amount_cases())
async def test_a_good_amount_moves_exactly_what_it_says(
    plain: httpx.AsyncClient,
    native: httpx.AsyncClient,
    sar: TenantKey,
    wallet: Json,
    route: Route,
    amount: str,
    minor: int,
) -> None:
    response = await post(plain, route, sar, wallet, route.body(wallet, amount, ""))
    assert response.status_code == 200, response.text
    after = await get_wallet(native, wallet["id"])
    assert after["balance"] == FUNDS + route.sign * minor


def text_cases() -> list[Any]:
    return [
        pytest.param(route, kind, case, make, id=f"{route.name}-{kind}-{case}")
        for route in TEXT_ROUTES
        for kind in ("reference", "description")
        for case, make in BAD_TEXTS
    ]


@pytest.mark.parametrize(("route", "kind", "case", "make"), text_cases())
async def test_a_bad_text_is_refused_in_the_routes_shape_and_moves_nothing(
    plain: httpx.AsyncClient,
    native: httpx.AsyncClient,
    sar: TenantKey,
    wallet: Json,
    route: Route,
    kind: str,
    case: str,
    make: Callable[[int], str],
) -> None:
    name = route.text_fields[kind]
    extra = f'"{name}": {make(LIMITS[kind])}'
    response = await post(plain, route, sar, wallet, route.body(wallet, route.one, extra))
    route.refused(response, name)
    assert await get_wallet(native, wallet["id"]) == wallet, case


def good_text_cases() -> list[Any]:
    return [
        pytest.param(route, kind, make, stored, id=f"{route.name}-{kind}-{case}")
        for route in TEXT_ROUTES
        for kind in ("reference", "description")
        for case, make, stored in GOOD_TEXTS
    ]


@pytest.mark.parametrize(("route", "kind", "make", "stored"), good_text_cases())
async def test_a_good_text_is_stored_exactly(
    plain: httpx.AsyncClient,
    native: httpx.AsyncClient,
    sar: TenantKey,
    wallet: Json,
    route: Route,
    kind: str,
    make: Callable[[int], str],
    stored: Callable[[int], str],
) -> None:
    name = route.text_fields[kind]
    extra = f'"{name}": {make(LIMITS[kind])}'
    response = await post(plain, route, sar, wallet, route.body(wallet, route.one, extra))
    assert response.status_code in (200, 201), response.text
    assert (await get_wallet(native, wallet["id"]))["balance"] == FUNDS + route.sign * 100
    listed = await native.get(f"/v1/wallets/{wallet['id']}/transactions", params={"limit": 1})
    (transaction,) = listed.json()["data"]
    assert transaction[kind] == stored(LIMITS[kind])


@pytest.mark.parametrize("user", ["a%00b", "u" * 256], ids=["nul", "too-long"])
async def test_an_autional_user_id_no_wallet_can_have_is_refused_in_its_shape(
    plain: httpx.AsyncClient, sar: TenantKey, user: str
) -> None:
    """The path's user_id is a wallet's customer_id: text the same rule must accept."""
    response = await plain.post(
        f"/compat/autional/wallets/{user}/withdraw",
        content=b'{"amount": "1.00"}',
        headers={**bearer(sar), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    autional_refused(response, "user_id")
