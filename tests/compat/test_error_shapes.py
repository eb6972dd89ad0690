"""Errors no dialect document foresees (a bug, a database outage) in each dialect's own shape,
for the errors its endpoints catch and, once registered, for those that reach the app.

The app-level path itself (the middleware that calls a registered renderer) is tested in
tests/test_errors.py; here: what each dialect renders, and that the dialects Kassa serves are
the ones registered for their base paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from kassa import compat
from kassa.compat.autional import endpoints as autional
from kassa.compat.salla import endpoints as salla
from kassa.compat.walletapi import endpoints as walletapi
from kassa.config import Settings
from kassa.idempotency.service import Answer
from kassa.kit.clock import FrozenClock
from kassa.kit.errors import (
    InternalError,
    InvalidAmount,
    KassaError,
    MalformedJson,
    ServiceUnavailable,
)
from kassa.kit.http import loads
from kassa.kit.money import DecimalLiteral, major_to_minor
from kassa.kit.problem import renderer_for

Json = dict[str, Any]


def salla_shape(body: Json, status: int) -> None:
    # The document's 403 shape (its only one with an integer error code), the code the status.
    assert body == {
        "status": status,
        "success": False,
        "error": {"code": status, "message": body["error"]["message"]},
    }
    assert isinstance(body["error"]["message"], str)


def walletapi_shape(body: Json, status: int) -> None:
    assert body == {"Value": None, "Errors": body["Errors"], "IsSuccess": False, "IsFailure": True}
    assert body["Errors"]
    assert all(isinstance(message, str) for message in body["Errors"])


def autional_shape(body: Json, status: int) -> None:
    assert set(body) == {"code", "message", "timestamp"}
    assert body["code"] == status
    assert body["timestamp"] == "2026-01-01T00:00:00Z"  # the renderer's clock


DIALECTS: list[tuple[str, Callable[[KassaError], Answer], Callable[[Json, int], None]]] = [
    ("salla", salla.render_error, salla_shape),
    ("walletapi", walletapi.render_error, walletapi_shape),
    ("autional", autional.error_renderer(FrozenClock()), autional_shape),
]
IDS = [name for name, _, _ in DIALECTS]


@pytest.mark.parametrize(("name", "render", "shape"), DIALECTS, ids=IDS)
def test_an_outage_is_a_503_with_retry_after_in_the_dialects_shape(
    name: str, render: Callable[[KassaError], Answer], shape: Callable[[Json, int], None]
) -> None:
    answer = render(ServiceUnavailable())
    assert answer.status == 503
    assert answer.media_type == "application/json"
    assert answer.headers == [("Retry-After", str(ServiceUnavailable.retry_after))]
    shape(json.loads(answer.body), 503)


@pytest.mark.parametrize(("name", "render", "shape"), DIALECTS, ids=IDS)
def test_a_bug_is_a_500_in_the_dialects_shape(
    name: str, render: Callable[[KassaError], Answer], shape: Callable[[Json, int], None]
) -> None:
    answer = render(InternalError("Kassa hit a bug; it was logged."))
    assert answer.status == 500
    assert answer.media_type == "application/json"
    assert answer.headers == []
    body = json.loads(answer.body)
    shape(body, 500)
    assert "urn:kassa:problem" not in answer.body.decode()  # never the native problem shape


def test_autional_names_a_bug_as_its_document_does() -> None:
    answer = autional.error_renderer(FrozenClock())(InternalError())
    assert json.loads(answer.body)["message"].startswith("Internal server error")


@pytest.mark.parametrize(
    ("dialects", "path", "shape"),
    [
        ({"salla"}, "/compat/salla/admin/v2/customers/wallets/withdraw", salla_shape),
        ({"walletapi"}, "/compat/walletapi/api/v1/wallet/withdraw", walletapi_shape),
        ({"autional"}, "/compat/autional/wallets/u1/withdraw", autional_shape),
    ],
    ids=["salla", "walletapi", "autional"],
)
def test_each_served_dialect_registers_its_renderer_for_its_base_path(
    dialects: set[str], path: str, shape: Callable[[Json, int], None]
) -> None:
    compat.routers(Settings(dialects=frozenset(dialects)))
    render = renderer_for(path)
    assert render is not None
    status, media_type, body, headers = render(ServiceUnavailable())
    assert (status, media_type) == (503, "application/json")
    assert ("Retry-After", "1") in headers
    document = json.loads(body)
    if shape is autional_shape:  # rendered with the system clock at the app level
        document["timestamp"] = "2026-01-01T00:00:00Z"
    shape(document, 503)
    assert renderer_for("/v1/wallets") is None  # the native API keeps its problem documents


def test_the_dialect_loader_keeps_each_numbers_text() -> None:
    body = loads(b'{"a": 1E-2, "b": 10.000, "c": 12, "d": "1.5", "e": [-0.0]}')
    assert isinstance(body["a"], DecimalLiteral)
    assert body["a"].literal == "1E-2"
    assert body["a"] == Decimal("0.01")
    assert body["b"].literal == "10.000"
    assert body["c"] == 12
    assert type(body["c"]) is int
    assert body["d"] == "1.5"
    assert body["e"][0].literal == "-0.0"
    # The grammar judges the text: 1E-2 is refused although its value is 0.01.
    with pytest.raises(InvalidAmount):
        major_to_minor(body["a"], "SAR")
    assert major_to_minor(body["b"], "SAR") == 1_000


@pytest.mark.parametrize(
    "raw",
    [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1, "a": 2}', b'{"a":', b'{"a": "\xff"}', b""],
    ids=["nan", "infinity", "duplicate-key", "truncated", "not-utf8", "empty"],
)
def test_the_dialect_loader_refuses_what_the_native_loader_refuses(raw: bytes) -> None:
    with pytest.raises(MalformedJson):
        loads(raw)
