"""Events reach webhook endpoints signed, once per success, retried on the schedule by the
injected clock, never for a change that rolled back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from kassa.kit.secretbox import SecretBox, new_operator_key
from kassa.webhooks.schedule import MAX_ATTEMPTS, RETRY_SCHEDULE
from kassa.webhooks.tables import webhook_attempts
from kassa.webhooks.worker import Worker
from tests.helpers import create_wallet, deposit, free_port
from tests.webhooks.conftest import LOOPBACK, Hooks
from tests.webhooks.receiver import Received, Receiver, Reply


def signed_with(secret: str, request: Received) -> bool:
    """Whether one of the request's signatures is ``secret``'s, at the timestamp it states
    (the signature itself, checked with the standardwebhooks package; no clock tolerance)."""
    moment = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(request.headers["webhook-id"], moment, request.body.decode())
    return expected in request.headers["webhook-signature"].split(" ")


async def event_ids(api: httpx.AsyncClient) -> list[str]:
    listed = await api.get("/v1/events", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return [event["id"] for event in reversed(listed.json()["data"])]


async def deliveries_of(api: httpx.AsyncClient, event_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/events/{event_id}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def test_each_event_arrives_once_signed_and_a_refused_withdrawal_sends_nothing(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint = await hooks.endpoint(receiver.url + "/hooks", description="back office")
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    wallet = await create_wallet(hooks.api)
    await deposit(hooks.api, wallet["id"], 500)
    paid = await hooks.api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 200})
    assert paid.status_code == 201, paid.text
    refused = await hooks.api.post(
        f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 10**6}
    )
    assert refused.status_code == 409, refused.text

    assert await hooks.drain() == 3
    assert await hooks.drain() == 0  # nothing is sent twice

    ids = await event_ids(hooks.api)
    assert len(ids) == 3
    # One request per event (sent side by side, so in no promised order).
    assert sorted(request.headers["webhook-id"] for request in receiver.received) == sorted(ids)
    verifier = Webhook(secret)
    for request in receiver.received:
        assert request.path == "/hooks"
        assert request.headers["content-type"] == "application/json"
        payload = verifier.verify(request.body, request.headers)  # signature and timestamp
        shown = await hooks.api.get(f"/v1/events/{request.headers['webhook-id']}")
        assert payload == shown.json()
    types = sorted(verifier.verify(r.body, r.headers)["type"] for r in receiver.received)
    assert types == ["wallet.created", "wallet.credited", "wallet.debited"]

    for event_id in ids:
        (delivery,) = await deliveries_of(hooks.api, event_id)
        assert delivery["endpoint_id"] == endpoint["id"]
        assert delivery["status"] == "succeeded"
        assert delivery["next_attempt_at"] is None
        (attempt,) = delivery["attempts"]
        assert attempt["attempt"] == 1
        assert attempt["status_code"] == 200
        assert attempt["succeeded"] is True
        assert attempt["response_excerpt"] == "ok"
        assert attempt["latency_ms"] >= 0


async def test_failed_attempts_are_retried_on_the_schedule_as_the_clock_moves(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.replies = [
        Reply(500, body=b"boom"),
        Reply(500),
        Reply(503, headers=(("Retry-After", "3600"),)),
    ]
    endpoint = await hooks.endpoint(receiver.url)
    await create_wallet(hooks.api)
    (event_id,) = await event_ids(hooks.api)
    start = hooks.clock.now()

    assert await hooks.worker.run_once() == 1
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "pending"
    first_wait = datetime.fromisoformat(delivery["next_attempt_at"]) - start
    # 5 s, give or take the 10 % jitter.
    assert RETRY_SCHEDULE[0] * 0.9 <= first_wait <= RETRY_SCHEDULE[0] * 1.1

    hooks.clock.advance(RETRY_SCHEDULE[0] * 0.85)
    assert await hooks.worker.run_once() == 0  # not due yet
    hooks.clock.advance(RETRY_SCHEDULE[0] * 0.3)
    assert await hooks.worker.run_once() == 1  # second attempt: 500 again
    hooks.clock.advance(RETRY_SCHEDULE[1] * 1.1)
    assert await hooks.worker.run_once() == 1  # third: 503 asking for an hour
    third_at = hooks.clock.now()

    hooks.clock.advance(RETRY_SCHEDULE[2] * 1.1)  # the schedule's 30 min are not enough
    assert await hooks.worker.run_once() == 0
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert datetime.fromisoformat(delivery["next_attempt_at"]) == third_at + timedelta(hours=1)
    hooks.clock.advance(timedelta(hours=1) - RETRY_SCHEDULE[2] * 1.1)
    assert await hooks.worker.run_once() == 1  # fourth: 200
    assert await hooks.drain() == 0

    assert [request.headers["webhook-id"] for request in receiver.received] == [event_id] * 4
    assert all(signed_with(endpoint["secret"], request) for request in receiver.received)
    # Each attempt is stamped with the time it was made.
    stamps = [int(request.headers["webhook-timestamp"]) for request in receiver.received]
    assert stamps == sorted(stamps)
    assert stamps[0] == int(start.timestamp())
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 503, 200]
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3, 4]
    assert delivery["attempts"][0]["response_excerpt"] == "boom"
    assert [a["succeeded"] for a in delivery["attempts"]] == [False, False, False, True]


async def test_a_delivery_is_given_up_after_the_last_retry(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.default = Reply(500)
    await hooks.endpoint(receiver.url)
    await create_wallet(hooks.api)
    (event_id,) = await event_ids(hooks.api)

    for _ in range(MAX_ATTEMPTS + 2):
        await hooks.drain()
        hooks.clock.advance(timedelta(hours=11))

    assert len(receiver.received) == MAX_ATTEMPTS == 8
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "failed"
    assert len(delivery["attempts"]) == 8


async def test_no_answer_is_logged_and_retried(hooks: Hooks) -> None:
    closed = f"http://127.0.0.1:{free_port()}/nobody-listens"
    await hooks.endpoint(closed)
    await create_wallet(hooks.api)
    (event_id,) = await event_ids(hooks.api)

    assert await hooks.worker.run_once() == 1
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "pending"
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] is None
    assert attempt["succeeded"] is False
    assert "ConnectError" in attempt["error"]


async def test_a_410_disables_the_endpoint(hooks: Hooks, receiver: Receiver) -> None:
    receiver.replies = [Reply(410, body=b"gone")]
    endpoint = await hooks.endpoint(receiver.url)
    wallet = await create_wallet(hooks.api)

    assert await hooks.drain() == 1
    shown = await hooks.api.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert shown.json()["enabled"] is False
    assert "410" in shown.json()["disabled_reason"]
    (event_id,) = await event_ids(hooks.api)
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "failed"

    await deposit(hooks.api, wallet["id"], 100)  # a new event: no delivery to a disabled endpoint
    hooks.clock.advance(timedelta(days=2))
    assert await hooks.drain() == 0
    assert len(receiver.received) == 1
    redo = await hooks.api.post(f"/v1/events/{event_id}/redeliver")
    assert redo.status_code == 409
    assert redo.json()["code"] == "no_webhook_endpoint"


async def test_redeliver_sends_again_with_the_same_webhook_id(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint = await hooks.endpoint(receiver.url)
    await create_wallet(hooks.api)
    (event_id,) = await event_ids(hooks.api)
    assert await hooks.drain() == 1

    redo = await hooks.api.post(
        f"/v1/events/{event_id}/redeliver", json={"endpoint_id": endpoint["id"]}
    )
    assert redo.status_code == 202, redo.text
    (delivery,) = redo.json()["data"]
    assert delivery["status"] == "pending"
    assert await hooks.drain() == 1

    assert [r.headers["webhook-id"] for r in receiver.received] == [event_id, event_id]
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "succeeded"
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2]

    # An endpoint made after the event gets it on redelivery too.
    later = await hooks.endpoint(receiver.url + "/later")
    redo = await hooks.api.post(f"/v1/events/{event_id}/redeliver")
    assert redo.status_code == 202, redo.text
    assert {d["endpoint_id"] for d in redo.json()["data"]} == {endpoint["id"], later["id"]}
    assert await hooks.drain() == 2
    assert sorted(r.path for r in receiver.received[2:]) == ["/", "/later"]


async def test_event_types_filter_and_disabled_and_deleted_endpoints(
    hooks: Hooks, receiver: Receiver
) -> None:
    await hooks.endpoint(receiver.url + "/debits", event_types=["wallet.debited"])
    await hooks.endpoint(receiver.url + "/off", enabled=False)
    doomed = await hooks.endpoint(receiver.url + "/doomed")
    wallet = await create_wallet(hooks.api)
    await deposit(hooks.api, wallet["id"], 300)
    gone = await hooks.api.delete(f"/v1/webhook-endpoints/{doomed['id']}")
    assert gone.status_code == 200, gone.text
    assert gone.json() == {"id": doomed["id"], "deleted": True}
    assert (await hooks.api.get(f"/v1/webhook-endpoints/{doomed['id']}")).status_code == 404
    paid = await hooks.api.post(f"/v1/wallets/{wallet['id']}/withdrawals", json={"amount": 100})
    assert paid.status_code == 201

    assert await hooks.drain() == 1
    (request,) = receiver.received
    assert request.path == "/debits"
    # The deleted endpoint's deliveries were canceled, and their history stays.
    created_event = (await event_ids(hooks.api))[0]
    (canceled,) = await deliveries_of(hooks.api, created_event)
    assert canceled["endpoint_id"] == doomed["id"]
    assert canceled["status"] == "canceled"
    assert canceled["attempts"] == []


async def test_a_rolled_secret_signs_beside_the_old_one_for_a_day(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint = await hooks.endpoint(receiver.url)
    old = endpoint["secret"]
    rolled = await hooks.api.post(f"/v1/webhook-endpoints/{endpoint['id']}/roll-secret")
    assert rolled.status_code == 200, rolled.text
    new = rolled.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old

    wallet = await create_wallet(hooks.api)
    assert await hooks.drain() == 1
    first = receiver.received[0]
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    assert signed_with(old, first)
    assert signed_with(new, first)
    Webhook(old).verify(first.body, first.headers)
    Webhook(new).verify(first.body, first.headers)

    hooks.clock.advance(timedelta(hours=24, seconds=1))
    await deposit(hooks.api, wallet["id"], 100)
    assert await hooks.drain() == 1
    second = receiver.received[1]
    assert signed_with(new, second)
    assert not signed_with(old, second)


async def test_a_worker_records_no_attempt_it_did_not_claim(
    hooks: Hooks, receiver: Receiver
) -> None:
    await hooks.endpoint(receiver.url)
    for _ in range(30):
        await create_wallet(hooks.api)
    hooks.worker.batch_size = 7
    assert await hooks.drain() == 30
    async with hooks.db.read() as conn:
        rows = (
            await conn.execute(select(webhook_attempts.c.delivery_seq, webhook_attempts.c.attempt))
        ).all()
    assert len(rows) == 30
    assert {row.attempt for row in rows} == {1}
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 30


async def test_an_unknown_event_has_no_deliveries(hooks: Hooks) -> None:
    missing = await hooks.api.get(f"/v1/events/{uuid.uuid4()}/deliveries")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


async def test_a_secret_that_does_not_open_fails_its_attempt_not_the_worker(
    hooks: Hooks, receiver: Receiver
) -> None:
    await hooks.endpoint(receiver.url)
    await create_wallet(hooks.api)
    (event_id,) = await event_ids(hooks.api)
    async with Worker(
        hooks.db, SecretBox([new_operator_key()]), hooks.clock, allowed_hosts=LOOPBACK
    ) as stranger:
        assert await stranger.run_once() == 1
    assert receiver.received == []
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "pending"
    assert "KASSA_SECRET_KEY" in delivery["attempts"][0]["error"]
    hooks.clock.advance(timedelta(seconds=6))
    assert await hooks.drain() == 1  # with the right key the retry goes through
    assert len(receiver.received) == 1
