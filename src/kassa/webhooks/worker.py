"""The delivery worker: claims due deliveries, POSTs each event signed, records every attempt.

A worker claims a batch of due deliveries in one short transaction: it raises each delivery's
attempt counter and pushes its due time out by a lease, with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so that workers never claim the same delivery (SQLite runs one writer at a time, so a
claim there is atomic anyway). It then makes the HTTP requests with no transaction open, and
records the attempts and the outcome in a second transaction, only where the delivery is still
at the attempt it claimed. A worker that dies mid-batch loses its lease: the delivery comes due
again when the lease ends and is tried as the next attempt, never the same one twice (each
attempt number has one row, by a unique constraint).

Signing follows Standard Webhooks (``webhook-id`` is the event id, the same on every retry;
``webhook-timestamp``; ``webhook-signature`` with the endpoint's secret, and for a day after a
roll also the previous one). Time comes from the injected clock, so tests move it instead of
sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import httpx
import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook

from kassa import __version__
from kassa.events.schemas import EventOut
from kassa.events.tables import events
from kassa.kit.clock import Clock
from kassa.kit.db import Database
from kassa.kit.errors import KassaError
from kassa.webhooks import urls
from kassa.webhooks.secrets import SecretBox, SecretKeyError
from kassa.webhooks.service import cancel_pending
from kassa.webhooks.tables import (
    DELIVERY_CANCELED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SUCCEEDED,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

log = structlog.get_logger("kassa.webhooks")

# Waits before each retry after the first attempt: 7 retries, about 28 hours in all.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.1  # each wait is stretched or shrunk by up to 10 %
MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT_CHARS = 500
READ_LIMIT = 4096
_worker_numbers = count(1)


@dataclass(frozen=True)
class Claimed:
    seq: int
    tenant_id: Any
    endpoint_id: Any
    attempt: int
    round_attempt: int  # the attempt's number within its round (1 is the first try)
    url: str
    secrets: list[str]
    body: bytes
    event_id: str
    problem: str | None = None  # why it cannot be sent at all


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    started_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: int
    excerpt: str | None
    retry_after: timedelta | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Worker:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        clock: Clock,
        *,
        allowed_hosts: frozenset[str] = frozenset(),
        timeout_seconds: float = 10.0,
        batch_size: int = 50,
        rng: random.Random | None = None,
        name: str | None = None,
        resolver: urls.Resolver | None = None,
    ) -> None:
        self.db = db
        self.box = box
        self.clock = clock
        self.allowed_hosts = allowed_hosts
        self.resolver = resolver  # host names to addresses; the system's resolver unless given
        self.timeout_seconds = timeout_seconds
        self.batch_size = batch_size
        self.rng = rng or random.Random()  # jitter, not a secret
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{next(_worker_numbers)}"
        # Longer than any batch of requests can take, so a live worker never loses its claim.
        self.lease = timedelta(seconds=2 * timeout_seconds + 60)
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Worker:
        self._client = httpx.AsyncClient(
            transport=urls.checked_transport(self.allowed_hosts, self.resolver),
            timeout=self.timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": f"Kassa-Webhooks/{__version__}"},
        )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run_once(self) -> int:
        """Attempt every delivery due now (up to a batch); how many were attempted."""
        claimed = await self._claim(self.clock.now())
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(item) for item in claimed))
        await self._record(outcomes)
        return len(outcomes)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Deliver until ``stop`` is set, resting ``idle_seconds`` whenever nothing is due."""
        while not stop.is_set():
            try:
                attempted = await self.run_once()
            except (SQLAlchemyError, OSError) as error:
                log.warning("webhook_worker_failed", worker=self.name, error=str(error))
                attempted = 0
            except Exception:  # a bug: log it and keep delivering the rest
                log.exception("webhook_worker_crashed", worker=self.name)
                attempted = 0
            if attempted == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_seconds)

    async def _claim(self, now: datetime) -> list[Claimed]:
        due = (
            select(webhook_deliveries.c.seq)
            .where(
                webhook_deliveries.c.status == DELIVERY_PENDING,
                webhook_deliveries.c.next_attempt_at <= now,
            )
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.seq.in_(due.scalar_subquery()))
                    .values(
                        attempts=webhook_deliveries.c.attempts + 1,
                        next_attempt_at=now + self.lease,
                        updated_at=now,
                    )
                    .returning(
                        webhook_deliveries.c.seq,
                        webhook_deliveries.c.attempts,
                        webhook_deliveries.c.round_start,
                    )
                )
            ).all()
            if not rows:
                return []
            return await self._load(conn, {row.seq: row for row in rows}, now)

    async def _load(
        self, conn: AsyncConnection, rows: dict[int, Any], now: datetime
    ) -> list[Claimed]:
        details = (
            await conn.execute(
                select(
                    webhook_deliveries.c.seq,
                    webhook_deliveries.c.tenant_id,
                    webhook_deliveries.c.endpoint_id,
                    webhook_endpoints.c.url,
                    webhook_endpoints.c.enabled,
                    webhook_endpoints.c.deleted_at,
                    webhook_endpoints.c.secret,
                    webhook_endpoints.c.previous_secret,
                    webhook_endpoints.c.previous_secret_expires_at,
                    events.c.id.label("event_id"),
                    events.c.type,
                    events.c.created_at.label("event_created_at"),
                    events.c.data,
                )
                .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
                .join(events, events.c.seq == webhook_deliveries.c.event_seq)
                .where(webhook_deliveries.c.seq.in_(list(rows)))
                .order_by(webhook_deliveries.c.seq)
            )
        ).all()
        claimed: list[Claimed] = []
        for row in details:
            if not row.enabled or row.deleted_at is not None:
                await conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.seq == row.seq)
                    .values(
                        status=DELIVERY_CANCELED,
                        attempts=webhook_deliveries.c.attempts - 1,
                        next_attempt_at=None,
                    )
                )
                continue
            signing, problem = self._secrets(row, now)
            event = EventOut(
                id=row.event_id, type=row.type, created_at=row.event_created_at, data=row.data
            )
            state = rows[row.seq]
            claimed.append(
                Claimed(
                    seq=row.seq,
                    tenant_id=row.tenant_id,
                    endpoint_id=row.endpoint_id,
                    attempt=state.attempts,
                    round_attempt=state.attempts - state.round_start,
                    url=row.url,
                    secrets=signing,
                    body=event.model_dump_json().encode(),
                    event_id=str(row.event_id),
                    problem=problem,
                )
            )
        return claimed

    def _secrets(self, row: Any, now: datetime) -> tuple[list[str], str | None]:
        """The secrets to sign with, or why there are none: a secret encrypted under a key the
        operator no longer gives fails its attempts (recorded) instead of stopping the worker."""
        try:
            signing = [self.box.open(row.secret).decode()]
        except SecretKeyError:
            return [], "the endpoint's secret does not open with KASSA_SECRET_KEY"
        expires = row.previous_secret_expires_at
        if row.previous_secret is not None and expires is not None and expires > now:
            with contextlib.suppress(SecretKeyError):
                signing.append(self.box.open(row.previous_secret).decode())
        return signing, None

    def headers(self, item: Claimed, now: datetime) -> dict[str, str]:
        payload = item.body.decode()
        signatures = " ".join(
            Webhook(secret).sign(item.event_id, now, payload) for secret in item.secrets
        )
        return {
            "content-type": "application/json",
            "webhook-id": item.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }

    async def _attempt(self, item: Claimed) -> Outcome:
        started_at = self.clock.now()
        began = time.perf_counter()

        def outcome(
            status: int | None,
            error: str | None,
            excerpt: str | None = None,
            retry_after: timedelta | None = None,
        ) -> Outcome:
            latency = round((time.perf_counter() - began) * 1000)
            return Outcome(item, started_at, status, error, latency, excerpt, retry_after)

        if self._client is None:
            raise RuntimeError("use the worker as 'async with Worker(...)'")
        if item.problem is not None:
            return outcome(None, item.problem)
        try:
            # The addresses are checked as the connection is made (urls.CheckedNetwork).
            urls.check_form(item.url, self.allowed_hosts)
        except KassaError as error:
            return outcome(None, error.detail[:200])
        try:
            # One deadline for the whole attempt (a receiver that sends its answer a byte at a
            # time included), well inside the claim's lease.
            async with (
                asyncio.timeout(self.timeout_seconds),
                self._client.stream(
                    "POST", item.url, content=item.body, headers=self.headers(item, started_at)
                ) as response,
            ):
                head = b""
                async for chunk in response.aiter_raw():
                    head += chunk
                    if len(head) >= READ_LIMIT:
                        break
                excerpt = head.decode("utf-8", "replace")[:EXCERPT_CHARS] or None
                return outcome(
                    response.status_code,
                    None,
                    excerpt,
                    _retry_after(response.headers.get("retry-after"), started_at),
                )
        except (httpx.TimeoutException, TimeoutError):
            return outcome(None, f"timed out after {self.timeout_seconds:g} s")
        except httpx.HTTPError as error:
            return outcome(None, f"{type(error).__name__}: {error}"[:200])

    async def _record(self, outcomes: list[Outcome]) -> None:
        now = self.clock.now()
        async with self.db.write() as conn:
            await conn.execute(
                insert(webhook_attempts),
                [
                    {
                        "delivery_seq": item.claimed.seq,
                        "attempt": item.claimed.attempt,
                        "worker": self.name[:100],
                        "started_at": item.started_at,
                        "status_code": item.status_code,
                        "error": item.error,
                        "latency_ms": item.latency_ms,
                        "response_excerpt": item.excerpt,
                        "succeeded": item.succeeded,
                    }
                    for item in outcomes
                ],
            )
            for item in outcomes:
                await self._settle(conn, item, now)
        for item in outcomes:
            log.info(
                "webhook_attempt",
                worker=self.name,
                event_id=item.claimed.event_id,
                endpoint_id=str(item.claimed.endpoint_id),
                attempt=item.claimed.attempt,
                status_code=item.status_code,
                error=item.error,
                latency_ms=item.latency_ms,
            )

    async def _settle(self, conn: AsyncConnection, item: Outcome, now: datetime) -> None:
        claimed = item.claimed
        values: dict[str, Any] = {"updated_at": now}
        if item.succeeded:
            values.update(status=DELIVERY_SUCCEEDED, next_attempt_at=None)
        elif item.status_code == 410 or claimed.round_attempt >= MAX_ATTEMPTS:
            values.update(status=DELIVERY_FAILED, next_attempt_at=None)
        else:
            wait = RETRY_SCHEDULE[claimed.round_attempt - 1]
            wait *= 1 + self.rng.uniform(-JITTER, JITTER)
            if item.retry_after is not None:
                wait = max(wait, item.retry_after)
            values.update(next_attempt_at=now + wait)
        # Only if the delivery is still at the attempt this worker claimed (a redelivery or an
        # expired lease may have moved it on).
        await conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.seq == claimed.seq,
                webhook_deliveries.c.attempts == claimed.attempt,
                webhook_deliveries.c.status == DELIVERY_PENDING,
            )
            .values(**values)
        )
        if item.status_code == 410:  # the receiver says the endpoint is gone for good
            disabled = await conn.execute(
                update(webhook_endpoints)
                # Not if the endpoint was pointed elsewhere meanwhile (PATCH): that URL may live.
                .where(
                    webhook_endpoints.c.id == claimed.endpoint_id,
                    webhook_endpoints.c.url == claimed.url,
                )
                .values(enabled=False, disabled_reason="the receiver answered 410 Gone")
            )
            if disabled.rowcount:
                await cancel_pending(conn, claimed.endpoint_id, now)


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date, capped at a day; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            return None
        wait = moment - now
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)
