"""One attempt at a delivery: what it sends (made from the claimed delivery's details), the
signed POST under one deadline, and what came of it.

A delivery that cannot be loaded, signed or sent because of an error inside Kassa fails its
attempt with ``INTERNAL_FAILURE`` (what the tenant sees) and a ``fault`` (the kind of error,
for operators).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from kassa.events.schemas import EventOut
from kassa.kit.dberrors import error_summary
from kassa.kit.errors import KassaError
from kassa.kit.secretbox import SecretBox
from kassa.webhooks import paysafe_format, schedule, signing, soap_format, urls
from kassa.webhooks.queue_repository import Claim, Details

EXCERPT_CHARS = 500
READ_LIMIT = 4096
# What the tenant sees of an attempt that failed inside Kassa (the kind is for operators).
INTERNAL_FAILURE = "Kassa could not make this attempt (an internal error); it is retried"


@dataclass(frozen=True)
class Claimed:
    seq: int
    tenant_id: uuid.UUID | None
    endpoint_id: uuid.UUID | None
    attempt: int
    round_attempt: int  # the attempt's number within its round (1 is the first try)
    url: str
    secrets: list[str]
    body: bytes
    event_id: str
    problem: str | None = None  # why it cannot be sent at all (the attempt's error)
    fault: str | None = None  # the kind of error inside Kassa behind the problem, if any
    format: str = "standard"  # the endpoint's: how the body is written and signed


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


def ready(
    details: Details,
    claim: Claim,
    box: SecretBox,
    now: datetime,
    instrument_types: dict[uuid.UUID, str] | None = None,
) -> Claimed:
    """The attempt to make; one whose secret does not open fails without being sent. A
    Paysafe-format endpoint's body is Paysafe's transaction update (``instrument_types``: the
    payout's instrument's type, which the event does not carry)."""
    secrets, problem = signing.signing_secrets(
        box, details.secret, details.previous_secret, details.previous_secret_expires_at, now
    )
    event = EventOut(
        id=details.event_id,
        type=details.event_type,
        created_at=details.event_created_at,
        data=details.data,
    )
    return Claimed(
        seq=details.seq,
        tenant_id=details.tenant_id,
        endpoint_id=details.endpoint_id,
        attempt=claim.attempts,
        round_attempt=claim.attempts - claim.round_start,
        url=details.url,
        secrets=secrets,
        body=_body(details.format, event, instrument_types or {}),
        event_id=str(details.event_id),
        problem=problem,
        fault=None if problem is None else "secrets: SecretKeyError",
        format=details.format,
    )


def _body(format_: str, event: EventOut, instrument_types: dict[uuid.UUID, str]) -> bytes:
    if format_ == "paysafe":
        return paysafe_format.body(event, instrument_types)
    if format_ == "soap":
        return soap_format.body(event)
    return event.model_dump_json().encode()


def broken(claim: Claim, fault: str, details: Details | None = None) -> Claimed:
    """An attempt that fails inside Kassa before it is sent (``fault`` says why)."""
    return Claimed(
        seq=claim.seq,
        tenant_id=None if details is None else details.tenant_id,
        endpoint_id=None if details is None else details.endpoint_id,
        attempt=claim.attempts,
        round_attempt=claim.attempts - claim.round_start,
        url="" if details is None else details.url,
        secrets=[],
        body=b"",
        event_id="" if details is None else str(details.event_id),
        problem=INTERNAL_FAILURE,
        fault=fault,
    )


def failed_inside(item: Claimed, started_at: datetime, error: Exception) -> Outcome:
    """The outcome of an attempt that an error inside Kassa stopped."""
    fault = error_summary("send", error)
    return Outcome(item, started_at, None, INTERNAL_FAILURE, 0, None, None, fault, error)


async def send(
    client: httpx.AsyncClient,
    item: Claimed,
    started_at: datetime,
    allowed_hosts: frozenset[str],
    timeout_seconds: float,
) -> Outcome:
    """POST the delivery, signed, and read the start of the answer."""
    began = time.perf_counter()

    def outcome(
        status: int | None,
        error: str | None,
        excerpt: str | None = None,
        retry_after: timedelta | None = None,
    ) -> Outcome:
        latency = round((time.perf_counter() - began) * 1000)
        return Outcome(item, started_at, status, error, latency, excerpt, retry_after, item.fault)

    if item.problem is not None:
        return outcome(None, item.problem)
    try:
        # The addresses are checked as the connection is made (urls.CheckedNetwork).
        urls.check_form(item.url, allowed_hosts)
    except KassaError as error:
        return outcome(None, error.detail[:200])
    if item.format == "paysafe":
        headers = paysafe_format.headers(item.body, item.secrets[0])
    elif item.format == "soap":
        headers = soap_format.headers(item.body, item.secrets[0], started_at)
    else:
        headers = signing.headers(item.event_id, item.body, item.secrets, started_at)
    try:
        # One deadline for the whole attempt (a receiver that sends its answer a byte at a
        # time included), well inside the claim's lease.
        async with (
            asyncio.timeout(timeout_seconds),
            client.stream("POST", item.url, content=item.body, headers=headers) as response,
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
                schedule.retry_after(response.headers.get("retry-after"), started_at),
            )
    except (httpx.TimeoutException, TimeoutError):
        return outcome(None, f"timed out after {timeout_seconds:g} s")
    except httpx.HTTPError as error:
        return outcome(None, f"{type(error).__name__}: {error}"[:200])
