from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kassa.ledger.schemas import Timestamp
from kassa.sca.policy import Mode

EventStatus = Literal["PENDING", "COMPLETED", "FAILED", "EXPIRED"]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class Verification(BaseModel):
    """How the customer can complete the event (Paysafe's vocabulary): a one-time password from
    an authenticator app for EMBEDDED; none listed for OUTSOURCED (the merchant's own way)."""

    method: Literal["OTP"]
    channel: Literal["AUTHENTICATOR"]
    target: str | None = None


class ScaEventOut(BaseModel):
    id: uuid.UUID
    payout_id: uuid.UUID
    wallet_operation_id: uuid.UUID = Field(description="the payout whose move it authorises")
    customer_id: str
    target_status: Literal["PENDING"]
    mode: Mode
    status: EventStatus
    failed_attempts: int
    attempts_left: int
    available_verifications: list[Verification]
    created_at: Timestamp
    expires_at: Timestamp
    completed_at: Timestamp | None


class Attempt(BaseModel):
    """``code`` (EMBEDDED: the customer's TOTP code) or ``result`` (OUTSOURCED: the merchant's
    own authentication of the customer, reported with its API key)."""

    model_config = ConfigDict(extra="forbid")

    code: Code | None = None
    result: Literal["VERIFIED", "FAILED"] | None = None


class TotpEnrolment(BaseModel):
    id: uuid.UUID
    customer_id: str
    method: Literal["TOTP"]
    status: Literal["pending", "active"]
    secret: str | None = Field(default=None, description="base32; shown once, at enrolment")
    otpauth_uri: str | None = Field(default=None, description="for a QR code; shown once")
    created_at: Timestamp
    activated_at: Timestamp | None = None


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
