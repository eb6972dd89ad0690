"""One delivery that breaks inside Kassa (its signing, its loading, its recording) never stops
the worker or the other deliveries: it fails that attempt only, backs off on the retry schedule,
and once stuck is logged as such, counted in /metrics and listed by ``kassa stuck``.

The faults are written into the database, so they are real and the same every time: an
endpoint whose stored secret is empty (signing raises), an event whose stored data is not an
event's (loading raises), an attempt row already taken (recording raises).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import MutableMapping
from typing import Any

from sqlalchemy import insert, literal_column, select, update
from structlog.testing import capture_logs

from kassa.events.tables import events
from kassa.kit.clock import isoformat
from kassa.kit.secretbox import SecretBox
from kassa.webhooks.schedule import RETRY_SCHEDULE, STUCK_AFTER
from kassa.webhooks.sending import INTERNAL_FAILURE
from kassa.webhooks.tables import webhook_attempts, webhook_deliveries, webhook_endpoints
from tests.helpers import TEST_SECRET_KEY, create_wallet, deposit, run_cli
from tests.test_metrics import gauge, samples_of
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import deliveries_of, event_ids

Logs = list[MutableMapping[str, Any]]


async def delivery_state(hooks: Hooks, event_id: str, endpoint_id: str) -> Any:
    async with hooks.db.read() as conn:
        return (
            await conn.execute(
                select(
                    webhook_deliveries.c.seq,
                    webhook_deliveries.c.tenant_id,
                    webhook_deliveries.c.status,
                    webhook_deliveries.c.attempts,
                    webhook_deliveries.c.next_attempt_at,
                    webhook_deliveries.c.worker_failures,
                    webhook_deliveries.c.worker_error,
                )
                .join(events, events.c.seq == webhook_deliveries.c.event_seq)
                .where(
                    events.c.id == uuid.UUID(event_id),
                    webhook_deliveries.c.endpoint_id == uuid.UUID(endpoint_id),
                )
            )
        ).one()


async def store_secret(hooks: Hooks, endpoint_id: str, secret: str) -> None:
    sealed = SecretBox([TEST_SECRET_KEY]).seal(secret.encode())
    async with hooks.db.write() as conn:
        await conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == uuid.UUID(endpoint_id))
            .values(secret=sealed)
        )


def failures_logged(logs: Logs) -> Logs:
    return [entry for entry in logs if entry["event"] == "webhook_delivery_failed_in_kassa"]


def within_first_retry(waited: Any) -> bool:
    return bool(RETRY_SCHEDULE[0] * 0.9 <= waited <= RETRY_SCHEDULE[0] * 1.1)


async def kassa_stuck(hooks: Hooks) -> dict[str, Any]:
    result = await asyncio.to_thread(run_cli, hooks.db.url.raw, "stuck", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    listed: dict[str, Any] = json.loads(result.stdout)
    return listed


async def failing_gauges(hooks: Hooks) -> tuple[float, float]:
    response = await hooks.api.get("/metrics")
    assert response.status_code == 200, response.text
    samples = samples_of(response.text)
    return (
        gauge(samples, "kassa_webhook_deliveries_failing"),
        gauge(samples, "kassa_webhook_deliveries_stuck"),
    )


async def test_a_delivery_whose_signing_breaks_backs_off_and_the_others_are_delivered(
    hooks: Hooks, receiver: Receiver
) -> None:
    broken = await hooks.endpoint(receiver.url + "/broken", event_types=["wallet.created"])
    healthy = await hooks.endpoint(receiver.url + "/healthy")
    await store_secret(hooks, broken["id"], "whsec_")  # empty: signing with it raises
    wallet = await create_wallet(hooks.api)
    (event_id,) = await event_ids(hooks.api)

    with capture_logs() as logs:
        first_at = hooks.clock.now()
        assert await hooks.worker.run_once() == 2
        assert [request.path for request in receiver.received] == ["/healthy"]
        assert (await delivery_state(hooks, event_id, healthy["id"])).status == "succeeded"
        state = await delivery_state(hooks, event_id, broken["id"])
        assert (state.status, state.attempts, state.worker_failures) == ("pending", 1, 1)
        assert state.worker_error == "send: standardwebhooks.EmptyWebhookSecretError"
        assert within_first_retry(state.next_attempt_at - first_at)
        # The tenant sees a failed attempt, not Kassa's insides.
        deliveries = await deliveries_of(hooks.api, event_id)
        (shown,) = [found for found in deliveries if found["endpoint_id"] == broken["id"]]
        (attempt,) = shown["attempts"]
        assert (attempt["status_code"], attempt["error"]) == (None, INTERNAL_FAILURE)
        (logged,) = failures_logged(logs)
        assert (logged["delivery"], logged["event_id"]) == (state.seq, event_id)
        assert (logged["endpoint_id"], logged["failures"], logged["stuck"]) == (
            broken["id"],
            1,
            False,
        )
        assert type(logged["exc_info"]).__name__ == "EmptyWebhookSecretError"  # a traceback

        # Not tried again before its retry is due; meanwhile the other endpoint gets its events.
        await deposit(hooks.api, wallet["id"], 100)
        assert await hooks.worker.run_once() == 1
        assert [request.path for request in receiver.received] == ["/healthy", "/healthy"]

        # Tried once per step of the schedule, it is stuck after STUCK_AFTER failures.
        hooks.clock.advance(RETRY_SCHEDULE[0] * 1.1)
        assert await hooks.worker.run_once() == 1
        hooks.clock.advance(RETRY_SCHEDULE[1] * 1.1)
        assert await hooks.worker.run_once() == 1
        assert await hooks.worker.run_once() == 0
    assert [(entry["failures"], entry["stuck"]) for entry in failures_logged(logs)] == [
        (1, False),
        (2, False),
        (STUCK_AFTER, True),
    ]
    assert failures_logged(logs)[-1]["log_level"] == "error"
    state = await delivery_state(hooks, event_id, broken["id"])
    assert (state.status, state.attempts, state.worker_failures) == ("pending", 3, STUCK_AFTER)
    assert [request.path for request in receiver.received] == ["/healthy", "/healthy"]

    assert await kassa_stuck(hooks) == {
        "payouts": [],
        "webhook_deliveries": [
            {
                "delivery": state.seq,
                "tenant_id": str(hooks.tenant.tenant_id),
                "event_id": event_id,
                "endpoint_id": broken["id"],
                "attempts": 3,
                "failures": STUCK_AFTER,
                "last_error": "send: standardwebhooks.EmptyWebhookSecretError",
                "next_attempt_at": isoformat(state.next_attempt_at),
            }
        ],
    }
    assert await failing_gauges(hooks) == (1, 1)

    # Given a good secret again, its next attempt goes out and it is no longer failing.
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    await store_secret(hooks, broken["id"], secret)
    hooks.clock.advance(RETRY_SCHEDULE[2] * 1.1)
    assert await hooks.worker.run_once() == 1
    assert [request.path for request in receiver.received][-1] == "/broken"
    state = await delivery_state(hooks, event_id, broken["id"])
    assert (state.status, state.worker_failures, state.worker_error) == ("succeeded", 0, None)
    assert await failing_gauges(hooks) == (0, 0)


async def test_a_delivery_whose_recording_breaks_backs_off_and_the_others_are_recorded(
    hooks: Hooks, receiver: Receiver
) -> None:
    taken = await hooks.endpoint(receiver.url + "/taken")
    other = await hooks.endpoint(receiver.url + "/other")
    await create_wallet(hooks.api)
    (event_id,) = await event_ids(hooks.api)
    seq = (await delivery_state(hooks, event_id, taken["id"])).seq
    async with hooks.db.write() as conn:  # attempt 1 already has a row: recording it fails
        await conn.execute(
            insert(webhook_attempts).values(
                delivery_seq=seq,
                attempt=1,
                worker="elsewhere",
                started_at=hooks.clock.now(),
                latency_ms=0,
                succeeded=False,
            )
        )

    with capture_logs() as logs:
        first_at = hooks.clock.now()
        assert await hooks.worker.run_once() == 2
    assert sorted(request.path for request in receiver.received) == ["/other", "/taken"]
    recorded = await delivery_state(hooks, event_id, other["id"])
    assert (recorded.status, recorded.worker_failures) == ("succeeded", 0)
    state = await delivery_state(hooks, event_id, taken["id"])
    assert (state.status, state.attempts, state.worker_failures) == ("pending", 1, 1)
    assert state.worker_error == "record: IntegrityError (uq_webhook_attempts_delivery_seq_attempt)"
    assert within_first_retry(state.next_attempt_at - first_at)
    (logged,) = failures_logged(logs)
    assert (logged["delivery"], logged["failures"]) == (seq, 1)
    assert logged["exc_info"] is None  # a database error: its text may quote values

    # Its next attempt is recorded: sent again with the same webhook-id (receivers dedupe).
    hooks.clock.advance(RETRY_SCHEDULE[0] * 1.1)
    assert await hooks.worker.run_once() == 1
    state = await delivery_state(hooks, event_id, taken["id"])
    assert (state.status, state.attempts, state.worker_failures) == ("succeeded", 2, 0)
    sent = [
        request.headers["webhook-id"] for request in receiver.received if request.path == "/taken"
    ]
    assert sent == [event_id, event_id]


async def test_a_delivery_whose_event_does_not_load_backs_off_and_the_others_are_delivered(
    hooks: Hooks, receiver: Receiver, backend: str
) -> None:
    endpoint = await hooks.endpoint(receiver.url)
    wallet = await create_wallet(hooks.api)
    await deposit(hooks.api, wallet["id"], 100)
    unreadable, readable = await event_ids(hooks.api)
    # SQLite keeps JSON as text, so it can hold text that is no JSON at all: then the batch's
    # query fails and each delivery is loaded on its own. PostgreSQL's jsonb holds only JSON:
    # there the data is JSON but no event's (not an object).
    data = "'{not json'" if backend == "sqlite" else "'[1]'::jsonb"
    async with hooks.db.write() as conn:
        await conn.execute(
            update(events)
            .where(events.c.id == uuid.UUID(unreadable))
            .values(data=literal_column(data))
        )

    first_at = hooks.clock.now()
    with capture_logs() as logs:
        assert await hooks.worker.run_once() == 2
    assert [request.headers["webhook-id"] for request in receiver.received] == [readable]
    assert (await delivery_state(hooks, readable, endpoint["id"])).status == "succeeded"
    state = await delivery_state(hooks, unreadable, endpoint["id"])
    assert (state.status, state.attempts, state.worker_failures) == ("pending", 1, 1)
    kind = "json.JSONDecodeError" if backend == "sqlite" else "pydantic_core.ValidationError"
    assert state.worker_error == f"load: {kind}"
    assert within_first_retry(state.next_attempt_at - first_at)
    (logged,) = failures_logged(logs)
    assert logged["delivery"] == state.seq
    batch_failed = [entry for entry in logs if entry["event"] == "webhook_batch_load_failed"]
    assert len(batch_failed) == (1 if backend == "sqlite" else 0)
    assert await hooks.worker.run_once() == 0  # it waits for its retry like any other
