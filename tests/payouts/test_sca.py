"""Strong Customer Authentication on payouts, on both backends, with an injected clock.

A payout the tenant's policy says needs SCA does not move to PENDING (nothing is held) until one
of its SCA events is completed: by the customer's TOTP code (EMBEDDED; the test makes the codes
from the enrolled secret at the clock's time, as the customer's app would) or by the merchant's
verification (OUTSOURCED). Three wrong codes fail an event; a code is good once; an event expires.

Mutations tried (on a copy of ``src`` run with ``PYTHONPATH``): ``repository.accept_step`` not
checking ``last_step`` (a replayed code accepted): caught by
``test_a_code_is_good_once``; the endpoint's SCA check skipped (``_strong_authentication``
returning None): caught by ``test_embedded_sca_holds_the_payout_until_a_right_code``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest

from kassa.kit.clock import FrozenClock
from tests.helpers import TenantKey, in_process_api
from tests.payouts.conftest import Setup, move, preview, ready

EMBEDDED = {"mode": "EMBEDDED", "rules": [{"currency": "EUR", "min_amount": 5_000}]}
OUTSOURCED = {"mode": "OUTSOURCED", "rules": [{"min_amount": 0}]}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def local_api(
    database_url: str, tenant: TenantKey, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_api(database_url, tenant.key, clock) as client:
        yield client


class Customer:
    """A funded customer with a verified instrument, its own token and (EMBEDDED) an active
    TOTP authenticator whose secret the test keeps, as the customer's phone does."""

    def __init__(self, setup: Setup, token: str, secret: str | None) -> None:
        self.setup = setup
        self.headers = {"Authorization": f"Bearer {token}"}
        self.secret = secret

    def code(self, clock: FrozenClock) -> str:
        assert self.secret is not None
        return pyotp.TOTP(self.secret).at(clock.now())


async def _customer(
    api: httpx.AsyncClient, clock: FrozenClock, policy: dict[str, Any], enrol: bool = True
) -> Customer:
    setup = await ready(api, 100_000)
    put = await api.put("/v1/sca/policy", json=policy)
    assert put.status_code == 200, put.text
    assert put.json()["enabled"] is True
    customer_id = setup.wallet["customer_id"]
    issued = await api.post(f"/v1/customers/{customer_id}/tokens")
    assert issued.status_code == 201, issued.text
    customer = Customer(setup, issued.json()["token"], None)
    if enrol:
        enrolled = await api.post(f"/v1/customers/{customer_id}/sca/totp", headers=customer.headers)
        assert enrolled.status_code == 201, enrolled.text
        assert enrolled.json()["status"] == "pending"
        assert enrolled.json()["otpauth_uri"].startswith("otpauth://totp/")
        customer.secret = enrolled.json()["secret"]
        activated = await api.post(
            f"/v1/customers/{customer_id}/sca/totp/activate",
            json={"code": customer.code(clock)},
            headers=customer.headers,
        )
        assert activated.status_code == 200, activated.text
        assert activated.json()["status"] == "active"
        assert activated.json()["secret"] is None
        clock.advance(timedelta(seconds=30))  # the activation's code is spent
    return customer


async def _held(api: httpx.AsyncClient, setup: Setup) -> int:
    wallet = await api.get(f"/v1/wallets/{setup.wallet['id']}")
    held: int = wallet.json()["held_balance"]
    return held


async def _events(api: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    found = await api.get("/v1/events", params={"type": kind})
    assert found.status_code == 200, found.text
    events: list[dict[str, Any]] = found.json()["data"]
    return events


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_embedded_sca_holds_the_payout_until_a_right_code(
    local_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    customer = await _customer(local_api, clock, EMBEDDED)
    payout = await preview(local_api, customer.setup, 6_000)
    key = {"Idempotency-Key": uuid.uuid4().hex}

    asked = await local_api.post(
        f"/v1/payouts/{payout['id']}/status",
        json={"status": "PENDING"},
        headers={**customer.headers, **key},
    )
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert body["status"] == "PREVIEW"
    assert body["action"] == "SCA"
    sca = body["sca"]
    assert sca["status"] == "PENDING"
    assert sca["mode"] == "EMBEDDED"
    assert sca["wallet_operation_id"] == payout["id"]
    assert sca["attempts_left"] == 3
    assert sca["available_verifications"] == [
        {"method": "OTP", "channel": "AUTHENTICATOR", "target": None}
    ]
    assert await _held(local_api, customer.setup) == 0, "no money moves before SCA"
    required = await _events(local_api, "payout.sca_required")
    assert [event["data"]["id"] for event in required] == [sca["id"]]
    # Asking again answers the same open event.
    again = await move(local_api, payout["id"], "PENDING")
    assert again.json()["sca"]["id"] == sca["id"]

    attempts = f"/v1/sca/events/{sca['id']}/attempts"
    for left in (2, 1):
        wrong = await local_api.post(
            attempts, json={"code": _wrong(customer.code(clock))}, headers=customer.headers
        )
        assert wrong.status_code == 422, wrong.text
        assert wrong.json()["code"] == "sca_code_invalid"
        assert f"{left} attempt(s) left" in wrong.json()["detail"]
    right = await local_api.post(
        attempts, json={"code": customer.code(clock)}, headers=customer.headers
    )
    assert right.status_code == 200, right.text
    assert right.json()["status"] == "COMPLETED"
    assert await _held(local_api, customer.setup) == 0
    assert len(await _events(local_api, "payout.sca_completed")) == 1

    # The same request, with the same Idempotency-Key, now moves the payout.
    moved = await local_api.post(
        f"/v1/payouts/{payout['id']}/status",
        json={"status": "PENDING"},
        headers={**customer.headers, **key},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "PENDING"
    assert moved.json()["action"] == "NONE"
    assert "sca" not in moved.json()
    assert await _held(local_api, customer.setup) == payout["total"]
    done = await local_api.post(attempts, json={"code": customer.code(clock)})
    assert done.status_code == 409
    assert done.json()["code"] == "sca_event_completed"


async def test_three_wrong_codes_fail_the_event(
    local_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    customer = await _customer(local_api, clock, EMBEDDED)
    payout = await preview(local_api, customer.setup, 5_000)  # at the threshold: needs SCA
    sca = (await move(local_api, payout["id"], "PENDING")).json()["sca"]
    attempts = f"/v1/sca/events/{sca['id']}/attempts"
    codes = []
    for _ in range(3):
        wrong = _wrong(customer.code(clock))
        codes.append((await local_api.post(attempts, json={"code": wrong})).json()["code"])
    assert codes == ["sca_code_invalid", "sca_code_invalid", "sca_event_failed"]
    # Failed: even the right code is refused now, and nothing moved.
    late = await local_api.post(attempts, json={"code": customer.code(clock)})
    assert late.status_code == 409
    assert late.json()["code"] == "sca_event_failed"
    assert (await local_api.get(f"/v1/sca/events/{sca['id']}")).json()["status"] == "FAILED"
    assert len(await _events(local_api, "payout.sca_failed")) == 1
    assert await _held(local_api, customer.setup) == 0
    # A new move to PENDING opens a new event, which a right code completes.
    fresh = (await move(local_api, payout["id"], "PENDING")).json()["sca"]
    assert fresh["id"] != sca["id"]
    ok = await local_api.post(
        f"/v1/sca/events/{fresh['id']}/attempts", json={"code": customer.code(clock)}
    )
    assert ok.status_code == 200, ok.text
    assert (await move(local_api, payout["id"], "PENDING")).json()["status"] == "PENDING"


async def test_a_code_is_good_once(local_api: httpx.AsyncClient, clock: FrozenClock) -> None:
    customer = await _customer(local_api, clock, EMBEDDED)
    first = await preview(local_api, customer.setup, 6_000)
    second = await preview(local_api, customer.setup, 7_000)
    one = (await move(local_api, first["id"], "PENDING")).json()["sca"]
    two = (await move(local_api, second["id"], "PENDING")).json()["sca"]
    code = customer.code(clock)
    used = await local_api.post(f"/v1/sca/events/{one['id']}/attempts", json={"code": code})
    assert used.status_code == 200, used.text
    replayed = await local_api.post(f"/v1/sca/events/{two['id']}/attempts", json={"code": code})
    assert replayed.status_code == 422, replayed.text
    assert replayed.json()["code"] == "sca_code_invalid"
    # A code of the step before (the window's lower edge) is older than the one used: refused.
    earlier = pyotp.TOTP(customer.secret or "").at(clock.now() - timedelta(seconds=30))
    older = await local_api.post(f"/v1/sca/events/{two['id']}/attempts", json={"code": earlier})
    assert older.status_code == 422, older.text
    # The next step's code is new: accepted (a phone's clock a step ahead).
    ahead = pyotp.TOTP(customer.secret or "").at(clock.now() + timedelta(seconds=30))
    fine = await local_api.post(f"/v1/sca/events/{two['id']}/attempts", json={"code": ahead})
    assert fine.status_code == 200, fine.text
    # Two steps ahead is outside the window.
    third = await preview(local_api, customer.setup, 8_000)
    three = (await move(local_api, third["id"], "PENDING")).json()["sca"]
    far = pyotp.TOTP(customer.secret or "").at(clock.now() + timedelta(seconds=90))
    refused = await local_api.post(f"/v1/sca/events/{three['id']}/attempts", json={"code": far})
    assert refused.status_code == 422, refused.text


async def test_an_event_expires(local_api: httpx.AsyncClient, clock: FrozenClock) -> None:
    customer = await _customer(local_api, clock, EMBEDDED)
    payout = await preview(local_api, customer.setup, 6_000)
    sca = (await move(local_api, payout["id"], "PENDING")).json()["sca"]
    clock.advance(timedelta(minutes=5))
    late = await local_api.post(
        f"/v1/sca/events/{sca['id']}/attempts", json={"code": customer.code(clock)}
    )
    assert late.status_code == 409, late.text
    assert late.json()["code"] == "sca_event_expired"
    assert (await local_api.get(f"/v1/sca/events/{sca['id']}")).json()["status"] == "EXPIRED"
    fresh = (await move(local_api, payout["id"], "PENDING")).json()["sca"]
    assert fresh["id"] != sca["id"]
    assert await _held(local_api, customer.setup) == 0


async def test_outsourced_sca_is_completed_by_the_merchant(
    local_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    customer = await _customer(local_api, clock, OUTSOURCED, enrol=False)
    payout = await preview(local_api, customer.setup, 200)
    asked = await move(local_api, payout["id"], "PENDING")
    sca = asked.json()["sca"]
    assert sca["mode"] == "OUTSOURCED"
    assert sca["available_verifications"] == []
    attempts = f"/v1/sca/events/{sca['id']}/attempts"
    # The customer cannot vouch for itself, and a code is the wrong way for this event.
    itself = await local_api.post(attempts, json={"result": "VERIFIED"}, headers=customer.headers)
    assert itself.status_code == 403, itself.text
    coded = await local_api.post(attempts, json={"code": "123456"})
    assert coded.status_code == 422
    assert coded.json()["code"] == "sca_wrong_verification"
    verified = await local_api.post(attempts, json={"result": "VERIFIED"})
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "COMPLETED"
    moved = await move(
        local_api,
        payout["id"],
        "PENDING",
    )
    assert moved.json()["status"] == "PENDING"
    # A result of FAILED fails its event at once.
    other = await preview(local_api, customer.setup, 300)
    failing = (await move(local_api, other["id"], "PENDING")).json()["sca"]
    failed = await local_api.post(
        f"/v1/sca/events/{failing['id']}/attempts", json={"result": "FAILED"}
    )
    assert failed.status_code == 200, failed.text
    assert failed.json()["status"] == "FAILED"
    assert (await move(local_api, other["id"], "PENDING")).json()["status"] == "PREVIEW"


async def test_the_policy_decides(local_api: httpx.AsyncClient, clock: FrozenClock) -> None:
    customer = await _customer(local_api, clock, EMBEDDED, enrol=False)
    # Under the threshold: no SCA.
    small = await preview(local_api, customer.setup, 4_999)
    assert (await move(local_api, small["id"], "PENDING")).json()["status"] == "PENDING"
    # Above it, with no authenticator enrolled: refused, nothing held beyond the small one.
    big = await preview(local_api, customer.setup, 9_000)
    refused = await move(local_api, big["id"], "PENDING")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "sca_not_enrolled"
    assert await _held(local_api, customer.setup) == small["total"]
    # Off: the policy removed, the big one moves.
    off = await local_api.delete("/v1/sca/policy")
    assert off.json() == {"enabled": False, "mode": None, "rules": [], "event_ttl_seconds": None}
    assert (await move(local_api, big["id"], "PENDING")).json()["status"] == "PENDING"
    # A bad policy is refused in the native shape.
    bad = await local_api.put("/v1/sca/policy", json={"mode": "SMS", "rules": []})
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_failed"
