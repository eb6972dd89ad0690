"""The delivery worker: claims due deliveries, POSTs each event signed, records every attempt.

A worker claims a batch of due deliveries in one short transaction (``queue_repository``: each
delivery's attempt number is raised and its due time pushed out by a lease). It then loads what
each needs, makes the HTTP requests with no transaction open (``sending``), and records the
attempts and the outcome in one more transaction, only where the delivery is still at the
attempt it claimed. A worker that dies mid-batch loses its lease: the delivery comes due again
when the lease ends and is tried as the next attempt, never the same one twice (each attempt
number has one row, by a unique constraint).

Each delivery is its own failure domain. One that cannot be loaded, signed or sent because of
an error inside Kassa (a bug, a secret that does not open, a row that breaks recording) is
recorded as a failed attempt and retried on the same schedule as a receiver's failure
(``schedule``), so it backs off and, after ``MAX_ATTEMPTS``, fails; the rest of the batch goes
on. If recording the batch fails, each delivery is recorded on its own. Such failures are
counted on the delivery (``worker_failures``, ``worker_error``), logged once per attempt with
the delivery's ids and the kind of error, and after ``STUCK_AFTER`` in a row the delivery is
listed as stuck. Time comes from the injected clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import socket
import uuid
from datetime import datetime, timedelta
from itertools import count

import httpx
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa import __version__
from kassa.instruments import service as instruments
from kassa.kit.clock import Clock
from kassa.kit.db import Database
from kassa.kit.dberrors import error_summary
from kassa.kit.errors import KassaError, ServiceUnavailable
from kassa.kit.secretbox import SecretBox, SecretKeyError
from kassa.webhooks import (
    paysafe_format,
    queue_repository,
    repository,
    schedule,
    sending,
    soap_format,
    urls,
)
from kassa.webhooks.queue_repository import Claim, Details, NewAttempt
from kassa.webhooks.sending import INTERNAL_FAILURE, Claimed, Outcome

# Errors that are trouble rather than a bug in Kassa: logged without a traceback.
_TROUBLE = (SQLAlchemyError, OSError, KassaError, SecretKeyError)
GONE_REASON = "the receiver answered 410 Gone"
_worker_numbers = count(1)


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
        async with self.db.write() as conn:  # committed at once: the claims and their leases
            claims = await queue_repository.claim_due(conn, now, self.lease, self.batch_size)
        if not claims:
            return 0
        claimed = await self._load(claims, now)
        client = self._client
        outcomes = await asyncio.gather(*(self._attempt(client, item) for item in claimed))
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

    async def _load(self, claims: list[Claim], now: datetime) -> list[Claimed]:
        """What each claimed delivery needs to be sent. A delivery that cannot be loaded (one
        bad row fails the batch's query: then each is loaded on its own) fails its attempt
        inside Kassa; one whose endpoint was disabled or deleted is canceled, and so is one
        a Soap-format endpoint has no Soap event for (another payout's ``payout.failed``)."""
        failed: dict[int, str] = {}
        try:
            async with self.db.read() as conn:
                loaded = await queue_repository.details(conn, [claim.seq for claim in claims])
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - find the delivery that breaks it
            self.log.warning("webhook_batch_load_failed", error=error_summary("load", error))
            loaded = []
            for claim in claims:
                try:
                    async with self.db.read() as conn:
                        loaded += await queue_repository.details(conn, [claim.seq])
                except ServiceUnavailable:
                    raise
                except Exception as one:  # noqa: BLE001 - this one fails its attempt
                    failed[claim.seq] = error_summary("load", one)
        found: dict[int, Details] = {details.seq: details for details in loaded}
        types = await self._instrument_types(loaded)
        claimed: list[Claimed] = []
        canceled: list[Claim] = []
        for claim in claims:
            details = found.get(claim.seq)
            if details is None:
                fault = failed.get(claim.seq, "load: its event or endpoint is missing")
                claimed.append(sending.broken(claim, fault))
            elif not details.enabled or details.deleted_at is not None:
                canceled.append(claim)
            elif details.format == "soap" and not soap_format.sends(
                details.event_type, details.data
            ):
                canceled.append(claim)  # a payout no checkout made: nothing to tell Soap
            else:
                try:
                    claimed.append(sending.ready(details, claim, self.box, now, types))
                except Exception as error:  # noqa: BLE001 - this one fails its attempt
                    fault = error_summary("load", error)
                    claimed.append(sending.broken(claim, fault, details))
        if canceled:
            await self._cancel(canceled, now)
        return claimed

    async def _instrument_types(self, loaded: list[Details]) -> dict[uuid.UUID, str]:
        """The instruments' types a Paysafe-format body shows (its events do not carry them).
        If they cannot be read, those attempts fail inside Kassa and are retried."""
        wanted = [
            (details.tenant_id, instrument)
            for details in loaded
            if details.format == "paysafe"
            and (instrument := paysafe_format.instrument_of(details.data)) is not None
        ]
        types: dict[uuid.UUID, str] = {}
        if not wanted:
            return types
        try:
            async with self.db.read() as conn:
                for tenant_id, instrument in wanted:
                    types |= await instruments.types_of(conn, tenant_id, [instrument])
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - those attempts fail inside Kassa
            self.log.warning("webhook_instruments_load_failed", error=error_summary("load", error))
        return types

    async def _cancel(self, canceled: list[Claim], now: datetime) -> None:
        """Cancel deliveries to an endpoint disabled or deleted since they were made (or with
        nothing to send in its format), giving back the attempt number claimed for them (a
        failure here: the lease ends, they come back and are canceled then)."""
        try:
            async with self.db.write() as conn:
                for claim in canceled:
                    await queue_repository.cancel_claimed(conn, claim, now)
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - the rest of the batch goes on
            self.log.warning("webhook_cancel_failed", error=error_summary("cancel", error))

    async def _attempt(self, client: httpx.AsyncClient, item: Claimed) -> Outcome:
        """The attempt's outcome; an error inside Kassa (signing, say) fails this attempt only."""
        started_at = self.clock.now()
        try:
            return await sending.send(
                client, item, started_at, self.allowed_hosts, self.timeout_seconds
            )
        except Exception as error:  # noqa: BLE001 - one delivery's bug must not stop the rest
            return sending.failed_inside(item, started_at, error)

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
        await queue_repository.insert_attempts(
            conn,
            [
                NewAttempt(
                    delivery_seq=item.claimed.seq,
                    attempt=item.claimed.attempt,
                    worker=self.name[:100],
                    started_at=item.started_at,
                    status_code=item.status_code,
                    error=item.error,
                    latency_ms=item.latency_ms,
                    response_excerpt=item.excerpt,
                    succeeded=item.succeeded,
                )
                for item in outcomes
            ],
        )
        failures: dict[int, int] = {}
        for item in outcomes:
            counted = await self._settle(conn, item, now)
            if counted is not None:
                failures[item.claimed.seq] = counted
        return failures

    async def _settle(self, conn: AsyncConnection, item: Outcome, now: datetime) -> int | None:
        """Move the delivery on after its attempt; for an attempt that failed inside Kassa,
        its failures in a row (None if the delivery had moved on meanwhile)."""
        claimed = item.claimed
        step = schedule.next_step(
            claimed.round_attempt, item.status_code, item.retry_after, self.rng, now
        )
        failures = await queue_repository.settle(
            conn, claimed.seq, claimed.attempt, step.status, step.next_attempt_at, item.fault, now
        )
        if item.status_code == schedule.GONE and claimed.endpoint_id is not None:
            await repository.disable_gone(conn, claimed.endpoint_id, claimed.url, GONE_REASON, now)
        return None if item.fault is None else failures

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
        stuck = failures >= schedule.STUCK_AFTER
        self.log.log(
            logging.ERROR if stuck else logging.WARNING,
            "webhook_delivery_failed_in_kassa",
            delivery=item.claimed.seq,
            event_id=item.claimed.event_id,
            endpoint_id=str(item.claimed.endpoint_id),
            attempt=item.claimed.attempt,
            error=item.fault,
            failures=failures,
            stuck=stuck,
            exc_info=item.exception if bug else None,
        )
