"""``/v1/sca/...`` and ``/v1/customers/{customer_id}/sca/totp``: Strong Customer Authentication.

The policy is the merchant's (API key only). A customer enrols and uses its authenticator with
its own customer token, or the merchant's server does it for the customer with the API key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth import repository as auth_repository
from kassa.auth.deps import PayoutsRead, PayoutsReadOrCustomer, PayoutsWrite, PayoutsWriteOrCustomer
from kassa.auth.service import Principal
from kassa.idempotency.http import respond
from kassa.kit.errors import NotFound
from kassa.kit.http import body_schema, json_response, parse_json, read_body, refuse_unknown_query
from kassa.kit.ids import parse_id
from kassa.kit.openapi import doc
from kassa.sca import policy as sca_policy
from kassa.sca import service
from kassa.sca.schemas import Attempt, ScaEventOut, TotpCode, TotpEnrolment
from kassa.state import app_state

router = APIRouter(prefix="/v1", tags=["sca"], dependencies=[Depends(refuse_unknown_query)])
CustomerId = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[^\x00]+$")]


@router.get("/sca/policy", **doc(sca_policy.ScaPolicyOut, 200, summary="Get the SCA policy"))
async def get_policy(request: Request, principal: PayoutsRead) -> Response:
    """When payouts need Strong Customer Authentication, and how (off by default)."""
    state = app_state(request)
    async with state.db.read() as conn:
        tenant = await auth_repository.get_tenant(conn, principal.tenant_id)
    stored = None if tenant is None else tenant.sca_policy
    return json_response(sca_policy.shown(sca_policy.load(stored)))


@router.put(
    "/sca/policy",
    openapi_extra=body_schema(sca_policy.ScaPolicy),
    **doc(sca_policy.ScaPolicyOut, 200, 422, summary="Set the SCA policy"),
)
async def put_policy(request: Request, principal: PayoutsWrite) -> Response:
    """Replace the policy. Payout requests in this process follow it at once; other processes
    within ``KASSA_AUTH_CACHE_SECONDS`` (it is loaded with the API key)."""
    raw = await read_body(request)
    body = parse_json(raw, sca_policy.ScaPolicy)
    state = app_state(request)
    now = state.clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        await auth_repository.set_sca_policy(
            conn, principal.tenant_id, body.model_dump(mode="json")
        )
        return 200, sca_policy.shown(body)

    answer = await respond(request, state, principal, raw, now, work)
    state.authenticator.forget_all()
    return answer


@router.delete("/sca/policy", **doc(sca_policy.ScaPolicyOut, 200, summary="Turn SCA off"))
async def delete_policy(request: Request, principal: PayoutsWrite) -> Response:
    """No payout needs SCA any more (events already open stay as they are)."""
    state = app_state(request)
    async with state.db.write() as conn:
        await auth_repository.set_sca_policy(conn, principal.tenant_id, None)
    state.authenticator.forget_all()
    return json_response(sca_policy.shown(None))


def _own(principal: Principal, customer_id: str) -> None:
    if not principal.owns(customer_id):
        raise NotFound(f"customer {customer_id} not found")


@router.post(
    "/customers/{customer_id}/sca/totp",
    **doc(
        TotpEnrolment,
        201,
        404,
        (409, "the customer has an active authenticator (`sca_already_enrolled`)"),
        summary="Enrol a TOTP authenticator",
    ),
)
async def enrol_totp(
    request: Request, customer_id: CustomerId, principal: PayoutsWriteOrCustomer
) -> Response:
    """A TOTP secret and its ``otpauth://`` URI, shown once (stored encrypted); the
    authenticator is ``pending`` until a first code from the app activates it."""
    _own(principal, customer_id)
    raw = await read_body(request)
    state = app_state(request)
    now = state.clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 201, await service.enrol_totp(conn, principal.tenant_id, customer_id, state.box, now)

    return await respond(request, state, principal, raw, now, work, sealed=True)


@router.post(
    "/customers/{customer_id}/sca/totp/activate",
    openapi_extra=body_schema(TotpCode),
    **doc(
        TotpEnrolment,
        200,
        404,
        (409, "the authenticator is active already (`sca_already_enrolled`)"),
        (422, "the code is wrong (`sca_code_invalid`)"),
        summary="Activate a TOTP authenticator",
    ),
)
async def activate_totp(
    request: Request, customer_id: CustomerId, principal: PayoutsWriteOrCustomer
) -> Response:
    """Activate the pending authenticator with a code the app shows now."""
    _own(principal, customer_id)
    body = parse_json(await read_body(request), TotpCode)
    state = app_state(request)
    now = state.clock.now()
    async with state.db.write() as conn:
        done = await service.activate_totp(
            conn, principal.tenant_id, customer_id, body.code, state.box, now
        )
    return json_response(done)


@router.get(
    "/customers/{customer_id}/sca/totp",
    **doc(TotpEnrolment, 200, 404, summary="Get a customer's TOTP authenticator"),
)
async def get_totp(
    request: Request, customer_id: CustomerId, principal: PayoutsReadOrCustomer
) -> Response:
    """Whether the customer has one, pending or active (never its secret)."""
    _own(principal, customer_id)
    state = app_state(request)
    async with state.db.read() as conn:
        return json_response(await service.totp_status(conn, principal.tenant_id, customer_id))


@router.delete(
    "/customers/{customer_id}/sca/totp",
    **doc(TotpEnrolment, 200, 404, summary="Remove a customer's TOTP authenticator"),
)
async def remove_totp(
    request: Request, customer_id: CustomerId, principal: PayoutsWrite
) -> Response:
    """The merchant resets the customer's authenticator (a lost phone); the customer enrols
    again. A customer token cannot."""
    state = app_state(request)
    async with state.db.write() as conn:
        found = await service.totp_status(conn, principal.tenant_id, customer_id)
        await service.remove_totp(conn, principal.tenant_id, customer_id)
    return json_response(found)


@router.get("/sca/events/{sca_event_id}", **doc(ScaEventOut, 200, 404, summary="Get an SCA event"))
async def get_event(
    request: Request, sca_event_id: str, principal: PayoutsReadOrCustomer
) -> Response:
    """An SCA event: its status (EXPIRED once past ``expires_at`` unfinished) and attempts."""
    state = app_state(request)
    found = await service.get_event(
        state.db, principal, parse_id(sca_event_id, "SCA event"), state.clock.now()
    )
    return json_response(found)


@router.post(
    "/sca/events/{sca_event_id}/attempts",
    openapi_extra=body_schema(Attempt),
    **doc(
        ScaEventOut,
        200,
        404,
        (
            409,
            "the event is completed, failed or expired (`sca_event_completed`,"
            " `sca_event_failed`, `sca_event_expired`), or the customer has no active"
            " authenticator (`sca_not_enrolled`)",
        ),
        (
            422,
            "the code is wrong or used already (`sca_code_invalid`), or the event is verified"
            " another way (`sca_wrong_verification`)",
        ),
        summary="Attempt an SCA event",
    ),
)
async def attempt(
    request: Request, sca_event_id: str, principal: PayoutsWriteOrCustomer
) -> Response:
    """Complete the event: the customer's TOTP code (EMBEDDED) or the merchant's result
    (OUTSOURCED, API key only). After 3 wrong codes it fails. Once it is COMPLETED, move the
    payout to PENDING again: that move goes through."""
    body = parse_json(await read_body(request), Attempt)
    state = app_state(request)
    done = await service.attempt(
        state.db, principal, parse_id(sca_event_id, "SCA event"), body, state.box, state.clock.now()
    )
    return json_response(done)
