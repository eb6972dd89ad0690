"""What the dialects share: exact JSON numbers in and out, finding the wallet, the withdrawal's
unit of work under an Idempotency-Key, and every error answered in the dialect's own shape."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request

from kassa.auth.service import Principal
from kassa.idempotency import service as idempotency
from kassa.kit.errors import KassaError, NotFound, ServiceUnavailable
from kassa.kit.http import JSON_MEDIA_TYPE
from kassa.kit.money import minor_to_major
from kassa.kit.problem import Rendered, register_error_renderer
from kassa.ledger.schemas import TransactionOut
from kassa.state import AppState
from kassa.wallets import lookup, movements
from kassa.wallets.money import WalletRef
from kassa.wallets.schemas import WalletOut


def json_number(value: Decimal) -> orjson.Fragment:
    """A JSON number written exactly as the decimal reads (never through a float)."""
    return orjson.Fragment(format(value, "f").encode())


def major(amount: int, currency: str) -> Decimal:
    """Minor units as the currency's major units, with its decimal places (``1.00``)."""
    return minor_to_major(amount, currency)


def plain_major(amount: int, currency: str) -> Decimal:
    """The same without trailing zeros (``1``, ``12.5``), as some documents show amounts."""
    value = minor_to_major(amount, currency).normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def dumps(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


def json_answer(
    status: int, document: dict[str, Any], headers: list[tuple[str, str]] | None = None
) -> idempotency.Answer:
    return idempotency.Answer(status, JSON_MEDIA_TYPE, dumps(document), headers or [])


def retry_after(error: KassaError) -> list[tuple[str, str]]:
    """The ``Retry-After`` header an outage's answer carries, in every dialect as in ``/v1``."""
    if isinstance(error, ServiceUnavailable):
        return [("Retry-After", str(error.retry_after))]
    return []


def register_renderer(base: str, render_error: Callable[[KassaError], idempotency.Answer]) -> None:
    """Render the errors that reach the app's handlers under ``base`` (a bug, an outage) in the
    dialect's shape too, as its endpoints render the ones they catch."""

    def render(error: KassaError) -> Rendered:
        answer = render_error(error)
        return answer.status, answer.media_type, answer.body, list(answer.headers)

    register_error_renderer(base, render)


async def wallet_by_customer(
    state: AppState, tenant_id: uuid.UUID, customer_id: str, currency: str
) -> WalletRef | None:
    return await lookup.find(state.db, tenant_id, customer_id=customer_id, currency=currency)


async def wallet_by_id(state: AppState, tenant_id: uuid.UUID, wallet_id: uuid.UUID) -> WalletRef:
    found = await lookup.find(state.db, tenant_id, wallet_id=wallet_id)
    if found is None:
        raise NotFound(f"wallet {wallet_id} not found")
    return found


@dataclass(frozen=True)
class Move:
    """A dialect's deposit or withdrawal, once its body is understood."""

    movement: movements.Movement
    wallet: WalletRef
    amount: int  # minor units
    reference: str | None
    description: str | None


Render = Callable[[TransactionOut, WalletOut, datetime], tuple[int, dict[str, Any]]]


async def move_money(
    request: Request,
    state: AppState,
    principal: Principal,
    raw: bytes,
    move: Move,
    render: Render,
    render_error: Callable[[KassaError], idempotency.Answer],
) -> idempotency.Answer:
    """The move through the one movement function (as ``/v1``'s, with the same events), with
    the request's Idempotency-Key if it has one; the answer and any refusal are rendered by
    the dialect."""
    key = idempotency.key_for(
        principal.tenant_id,
        request.headers.get(idempotency.HEADER),
        request.method,
        request.scope["path"],
        raw,
    )
    now = state.clock.now()
    money = movements.MoneyRequest(
        principal.tenant_id,
        move.wallet.id,
        move.movement,
        move.amount,
        reference=move.reference,
        description=move.description,
    )

    def answer_for(outcome: movements.Outcome) -> idempotency.Answer:
        if isinstance(outcome, KassaError):
            return render_error(outcome)
        status, document = render(outcome.transaction, outcome.wallet(move.wallet), now)
        return json_answer(status, document)

    ttl = timedelta(hours=state.settings.idempotency_ttl_hours)
    return await movements.move(state.db, money, now, answer_for, key=key, ttl=ttl)
