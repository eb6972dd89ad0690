"""The delivery worker: claims due deliveries, POSTs each event signed, records every attempt.

A worker claims a batch of due deliveries in one short transaction: it raises each delivery's
attempt counter and pushes its due time out by a lease, with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so that workers never claim the same delivery (SQLite runs one writer at a time, so a
claim there is atomic anyway). It then loads what each needs, makes the HTTP requests with no
transaction open, and records the attempts and the outcome in one more transaction, only where
the delivery is still at the attempt it claimed. A worker that dies mid-batch loses its lease:
the delivery comes due again when the lease ends and is tried as the next attempt, never the
same one twice (each attempt number has one row, by a unique constraint).

Each delivery is its own failure domain. One that cannot be loaded, signed or sent because of
an error inside Kassa (a bug, a secret that does not open, a row that breaks recording) is
recorded as a failed attempt and retried on the same schedule as a receiver's failure, so it
backs off and, after ``MAX_ATTEMPTS``, fails; the rest of the batch goes on. If recording the
batch fails, each delivery is recorded on its own. Such failures are counted on the delivery
(``worker_failures``, ``worker_error``), logged once per attempt with the delivery's ids and
the kind of error, and after ``STUCK_AFTER`` in a row the delivery is listed as stuck.

Signing follows Standard Webhooks (``webhook-id`` is the event id, the same on every retry;
``webhook-timestamp``; ``webhook-signature`` with the endpoint's secret, and for a day after a
roll also the previous one). Time comes from the injected clock, so tests move it instead of
sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import logging
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
from sqlalchemy import ColumnElement, case, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook

from kassa import __version__
from kassa.events.schemas import EventOut
from kassa.events.tables import events
from kassa.kit.clock import Clock
from kassa.kit.db import Database
from kassa.kit.dberrors import ERROR_CHARS, error_summary
from kassa.kit.errors import KassaError, ServiceUnavailable
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
# Attempts in a row that failed inside Kassa before a pending delivery counts as stuck.
STUCK_AFTER = 3
# What the tenant sees of an attempt that failed inside Kassa (the kind is for operators).
INTERNAL_FAILURE = "Kassa could not make this attempt (an internal error); it is retried"
# Errors that are trouble rather than a bug in Kassa: logged without a traceback.
_TROUBLE = (SQLAlchemyError, OSError, KassaError, SecretKeyError)
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
    problem: str | None = None  # why it cannot be sent at all (the attempt's error)
    fault: str | None = None  # the kind of error inside Kassa behind the problem, if any


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    started_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: int
    excerpt: str | None
    retry_after: timedelta | None
    fault: str | None = None  # the attempt failed inside Kassa: the kind of error
    exception: BaseException | None = None  # ... and the error itself, for its traceback

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
        self.log = structlog.get_logger("kassa.webhooks").bind(worker=self.name)
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
        """Attempt every delivery due now (up to a batch); how many were attempted. A delivery
        that fails inside Kassa is recorded as a failed attempt; the others go on."""
        if self._client is None:
            raise RuntimeError("use the worker as 'async with Worker(...)'")
        now = self.clock.now()
        claims = await self._claim(now)
        if not claims:
            return 0
        claimed = await self._load(claims, now)
        outcomes = await asyncio.gather(*(self._attempt_safely(item) for item in claimed))
        await self._record(list(outcomes))
        return len(outcomes)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Deliver until ``stop`` is set, resting ``idle_seconds`` whenever nothing is due."""
        while not stop.is_set():
            try:
                attempted = await self.run_once()
            except (ServiceUnavailable, SQLAlchemyError, OSError) as error:  # the database
                self.log.warning("webhook_worker_failed", error=type(error).__name__)
                attempted = 0
            except Exception:  # a bug outside any one delivery: log it and keep delivering
                self.log.exception("webhook_worker_crashed")
                attempted = 0
            if attempted == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_seconds)

    async def _claim(self, now: datetime) -> dict[int, Any]:
        """Claim the due deliveries (their attempt numbers and leases), committed at once."""
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
        return {row.seq: row for row in sorted(rows, key=lambda row: row.seq)}

    async def _load(self, claims: dict[int, Any], now: datetime) -> list[Claimed]:
        """What each claimed delivery needs to be sent. A delivery that cannot be loaded (one
        bad row fails the batch's query: then each is loaded on its own) fails its attempt
        inside Kassa; one whose endpoint was disabled or deleted is canceled."""
        failed: dict[int, str] = {}
        try:
            async with self.db.read() as conn:
                details = await _details(conn, list(claims))
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - find the delivery that breaks it
            self.log.warning("webhook_batch_load_failed", error=error_summary("load", error))
            details = []
            for seq in claims:
                try:
                    async with self.db.read() as conn:
                        details += await _details(conn, [seq])
                except ServiceUnavailable:
                    raise
                except Exception as one:  # noqa: BLE001 - this one fails its attempt
                    failed[seq] = error_summary("load", one)
        found = {row.seq: row for row in details}
        claimed: list[Claimed] = []
        canceled: list[Any] = []
        for seq, state in claims.items():
            row = found.get(seq)
            if row is None:
                fault = failed.get(seq, "load: its event or endpoint is missing")
                claimed.append(self._broken(seq, state, fault))
            elif not row.enabled or row.deleted_at is not None:
                canceled.append(state)
            else:
                try:
                    claimed.append(self._ready(row, state, now))
                except Exception as error:  # noqa: BLE001 - this one fails its attempt
                    claimed.append(self._broken(seq, state, error_summary("load", error), row))
        if canceled:
            await self._cancel(canceled, now)
        return claimed

    def _ready(self, row: Any, state: Any, now: datetime) -> Claimed:
        signing, problem = self._secrets(row, now)
        event = EventOut(
            id=row.event_id, type=row.type, created_at=row.event_created_at, data=row.data
        )
        return Claimed(
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
            fault=None if problem is None else "secrets: SecretKeyError",
        )

    @staticmethod
    def _broken(seq: int, state: Any, fault: str, row: Any = None) -> Claimed:
        return Claimed(
            seq=seq,
            tenant_id=None if row is None else row.tenant_id,
            endpoint_id=None if row is None else row.endpoint_id,
            attempt=state.attempts,
            round_attempt=state.attempts - state.round_start,
            url="" if row is None else row.url,
            secrets=[],
            body=b"",
            event_id="" if row is None else str(row.event_id),
            problem=INTERNAL_FAILURE,
            fault=fault,
        )

    async def _cancel(self, canceled: list[Any], now: datetime) -> None:
        """Cancel deliveries to an endpoint disabled or deleted since they were made, giving
        back the attempt number claimed for them (a failure here: the lease ends, they come
        back and are canceled then)."""
        try:
            async with self.db.write() as conn:
                for state in canceled:
                    await conn.execute(
                        update(webhook_deliveries)
                        .where(
                            webhook_deliveries.c.seq == state.seq,
                            webhook_deliveries.c.attempts == state.attempts,
                            webhook_deliveries.c.status == DELIVERY_PENDING,
                        )
                        .values(
                            status=DELIVERY_CANCELED,
                            attempts=webhook_deliveries.c.attempts - 1,
                            next_attempt_at=None,
                            updated_at=now,
                        )
                    )
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - the rest of the batch goes on
            self.log.warning("webhook_cancel_failed", error=error_summary("cancel", error))

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

    async def _attempt_safely(self, item: Claimed) -> Outcome:
        """The attempt's outcome; an error inside Kassa (signing, say) fails this attempt only."""
        started_at = self.clock.now()
        try:
            return await self._attempt(item, started_at)
        except Exception as error:  # noqa: BLE001 - one delivery's bug must not stop the rest
            fault = error_summary("send", error)
            return Outcome(item, started_at, None, INTERNAL_FAILURE, 0, None, None, fault, error)

    async def _attempt(self, item: Claimed, started_at: datetime) -> Outcome:
        began = time.perf_counter()

        def outcome(
            status: int | None,
            error: str | None,
            excerpt: str | None = None,
            retry_after: timedelta | None = None,
        ) -> Outcome:
            latency = round((time.perf_counter() - began) * 1000)
            return Outcome(
                item, started_at, status, error, latency, excerpt, retry_after, item.fault
            )

        assert self._client is not None  # run_once checked
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
        """Record the batch in one transaction; if that fails, each delivery on its own, and one
        that still fails backs off as an attempt failed inside Kassa."""
        now = self.clock.now()
        try:
            async with self.db.write() as conn:
                failures = await self._write(conn, outcomes, now)
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - find the delivery that breaks it
            self.log.warning("webhook_batch_record_failed", error=error_summary("record", error))
            recorded = [await self._record_one(item, now) for item in outcomes]
        else:
            recorded = [(item, failures.get(item.claimed.seq)) for item in outcomes]
        for item, counted in recorded:
            self._log(item, counted)

    async def _record_one(self, item: Outcome, now: datetime) -> tuple[Outcome, int | None]:
        """One delivery's attempt recorded on its own: the outcome as recorded, and its
        failures in a row inside Kassa if it failed there."""
        try:
            async with self.db.write() as conn:
                failures = await self._write(conn, [item], now)
            return item, failures.get(item.claimed.seq)
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - it backs off instead (below)
            # The request may have reached the receiver: sending it again later is safe (the
            # same webhook-id), losing it is not.
            fault = error_summary("record", error)
            broken = dataclasses.replace(
                item, status_code=None, error=INTERNAL_FAILURE, fault=fault, exception=error
            )
        try:
            async with self.db.write() as conn:
                counted = await self._settle(conn, broken, now)
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - its lease ends and it comes due again
            self.log.error(
                "webhook_delivery_not_recorded",
                delivery=item.claimed.seq,
                event_id=item.claimed.event_id,
                error=fault,
                not_recorded=error_summary("back off", error),
            )
            return broken, None
        return broken, counted

    async def _write(
        self, conn: AsyncConnection, outcomes: list[Outcome], now: datetime
    ) -> dict[int, int]:
        """Insert the attempts and settle each delivery; the failure counts of those that
        failed inside Kassa."""
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
        failures: dict[int, int] = {}
        for item in outcomes:
            counted = await self._settle(conn, item, now)
            if counted is not None:
                failures[item.claimed.seq] = counted
        return failures

    def _log(self, item: Outcome, failures: int | None) -> None:
        self.log.info(
            "webhook_attempt",
            event_id=item.claimed.event_id,
            endpoint_id=str(item.claimed.endpoint_id),
            attempt=item.claimed.attempt,
            status_code=item.status_code,
            error=item.error,
            latency_ms=item.latency_ms,
        )
        if item.fault is None or failures is None:
            return
        # Once per attempt that failed inside Kassa, i.e. once per step of its back-off.
        bug = item.exception is not None and not isinstance(item.exception, _TROUBLE)
        self.log.log(
            logging.ERROR if failures >= STUCK_AFTER else logging.WARNING,
            "webhook_delivery_failed_in_kassa",
            delivery=item.claimed.seq,
            event_id=item.claimed.event_id,
            endpoint_id=str(item.claimed.endpoint_id),
            attempt=item.claimed.attempt,
            error=item.fault,
            failures=failures,
            stuck=failures >= STUCK_AFTER,
            exc_info=item.exception if bug else None,
        )

    async def _settle(self, conn: AsyncConnection, item: Outcome, now: datetime) -> int | None:
        """Move the delivery on after its attempt; for an attempt that failed inside Kassa,
        its failures in a row (None if the delivery had moved on meanwhile)."""
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
        if item.fault is None:
            values.update(worker_failures=0, worker_error=None)
        else:
            values.update(
                worker_failures=webhook_deliveries.c.worker_failures + 1,
                worker_error=item.fault[:ERROR_CHARS],
            )
        # Only if the delivery is still at the attempt this worker claimed (a redelivery or an
        # expired lease may have moved it on).
        settled = await conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.seq == claimed.seq,
                webhook_deliveries.c.attempts == claimed.attempt,
                webhook_deliveries.c.status == DELIVERY_PENDING,
            )
            .values(**values)
            .returning(webhook_deliveries.c.worker_failures)
        )
        failures: int | None = settled.scalar()
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
        return None if item.fault is None else failures


async def _details(conn: AsyncConnection, seqs: list[int]) -> list[Any]:
    return list(
        (
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
                .where(webhook_deliveries.c.seq.in_(seqs))
                .order_by(webhook_deliveries.c.seq)
            )
        ).all()
    )


# ---- what operators see: deliveries the worker keeps failing at ------------------------------


@dataclass(frozen=True)
class StuckDelivery:
    seq: int
    tenant_id: Any
    endpoint_id: Any
    event_id: Any
    attempts: int
    failures: int
    last_error: str | None
    next_attempt_at: datetime | None


def _failing(at_least: int = 1) -> list[ColumnElement[bool]]:
    # ``worker_failures > 0`` as written lets SQLite use the partial index too.
    return [
        webhook_deliveries.c.worker_failures > 0,
        webhook_deliveries.c.worker_failures >= at_least,
        webhook_deliveries.c.status == DELIVERY_PENDING,
    ]


async def stuck_deliveries(conn: AsyncConnection, limit: int) -> list[StuckDelivery]:
    """Pending deliveries whose last ``STUCK_AFTER`` attempts or more failed inside Kassa."""
    rows = await conn.execute(
        select(
            webhook_deliveries.c.seq,
            webhook_deliveries.c.tenant_id,
            webhook_deliveries.c.endpoint_id,
            events.c.id,
            webhook_deliveries.c.attempts,
            webhook_deliveries.c.worker_failures,
            webhook_deliveries.c.worker_error,
            webhook_deliveries.c.next_attempt_at,
        )
        .outerjoin(events, events.c.seq == webhook_deliveries.c.event_seq)
        .where(*_failing(STUCK_AFTER))
        .order_by(webhook_deliveries.c.seq)
        .limit(limit)
    )
    return [StuckDelivery(*row) for row in rows]


async def failing_counts(conn: AsyncConnection) -> tuple[int, int]:
    """How many pending deliveries last failed inside Kassa, and how many of them are stuck."""
    stuck = case((webhook_deliveries.c.worker_failures >= STUCK_AFTER, 1), else_=0)
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(stuck), 0)).where(*_failing())
        )
    ).one()
    return int(row[0]), int(row[1])


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
