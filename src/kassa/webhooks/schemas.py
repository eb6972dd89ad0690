from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kassa.events.schemas import EventType
from kassa.kit.fields import Description
from kassa.ledger.schemas import Timestamp

if TYPE_CHECKING:
    from kassa.webhooks.repository import Endpoint

EVENT_TYPES = frozenset(get_args(EventType))
ALL_EVENTS = "*"
# What a Soap-format endpoint is sent: a checkout's outcome (payout.failed only for a payout a
# checkout made, sent as checkout.failed: kassa.webhooks.soap_format).
SOAP_EVENTS = frozenset({"checkout.completed", "checkout.expired", "payout.failed"})
# What a Paysafe-format endpoint is sent: a withdrawal's status changes.
PAYSAFE_EVENTS = frozenset(
    {
        "payout.created",
        "payout.pending",
        "payout.processing",
        "payout.completed",
        "payout.failed",
        "payout.cancelled",
    }
)
FORMAT_EVENTS = {"paysafe": PAYSAFE_EVENTS, "soap": SOAP_EVENTS}


def _event_types(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise PydanticCustomError("duplicate_event_type", "lists an event type twice")
    unknown = [item for item in value if item not in EVENT_TYPES and item != ALL_EVENTS]
    if unknown:
        raise PydanticCustomError(
            "unknown_event_type",
            "unknown event type {unknown}; use '*' or some of: {known}",
            {"unknown": ", ".join(unknown), "known": ", ".join(sorted(EVENT_TYPES))},
        )
    if ALL_EVENTS in value and len(value) > 1:
        raise PydanticCustomError("invalid_event_types", "'*' already means every event type")
    return value


EventTypes = Annotated[
    list[str],
    Field(min_length=1, max_length=100, description="event types to send, or ['*'] for all"),
    AfterValidator(_event_types),
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class NewEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="https URL the events are POSTed to")
    # Before event_types, which are checked against it.
    format: Literal["standard", "paysafe", "soap"] = Field(
        default="standard",
        description="standard: Standard Webhooks (every event); paysafe: Paysafe's transaction"
        " update for each payout status change, signed with `Signature`; soap: Soap's checkout"
        " webhooks, signed with `SOAP-WEBHOOK-SIGNATURE`",
    )
    event_types: EventTypes = Field(default_factory=lambda: [ALL_EVENTS])
    description: Description | None = None
    enabled: bool = True

    @field_validator("event_types")
    @classmethod
    def _formats_take_their_events(cls, value: list[str], info: ValidationInfo) -> list[str]:
        """A dialect's format takes only its own events (the refusal names ``event_types``, as
        ``PATCH`` names it)."""
        endpoint_format = info.data.get("format")
        allowed = FORMAT_EVENTS.get(endpoint_format) if endpoint_format else None
        if allowed is not None and value != [ALL_EVENTS] and not set(value) <= allowed:
            raise PydanticCustomError(
                "format_event_types",
                "a {format} endpoint takes only {allowed}",
                {"format": endpoint_format, "allowed": ", ".join(sorted(allowed))},
            )
        return value

    @model_validator(mode="after")
    def _formats_send_their_events(self) -> NewEndpoint:
        """'*' on a dialect's format: every event it takes."""
        allowed = FORMAT_EVENTS.get(self.format)
        if allowed is not None and self.event_types == [ALL_EVENTS]:
            self.event_types = sorted(allowed)
        return self


class EndpointChange(BaseModel):
    """What ``PATCH`` changes: only the members given; at least one."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = Field(default=None, description="a new https URL")
    event_types: EventTypes | None = None
    description: Description | None = Field(default=None, description="null clears it")
    enabled: bool | None = Field(
        default=None, description="false stops sending and cancels pending deliveries"
    )

    @field_validator("url", "event_types", "enabled")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for members given (defaults are not validated): null clears nothing here.
        if value is None:
            raise PydanticCustomError("null_not_allowed", "cannot be null")
        return value

    @model_validator(mode="after")
    def _something(self) -> EndpointChange:
        if not self.model_fields_set:
            raise PydanticCustomError("nothing_to_change", "give at least one member to change")
        return self


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    format: Literal["standard", "paysafe", "soap"]
    disabled_reason: str | None = Field(description="why Kassa disabled it, e.g. a 410 answer")
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: Endpoint) -> EndpointOut:
        return cls(
            id=row.id,
            url=row.url,
            description=row.description,
            event_types=list(row.event_types),
            enabled=row.enabled,
            format=row.format,
            disabled_reason=row.disabled_reason,
            created_at=row.created_at,
        )


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="the signing secret, shown this once")


class DeletedEndpoint(BaseModel):
    id: uuid.UUID
    deleted: Literal[True] = True


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: uuid.UUID | None = Field(
        default=None, description="only this endpoint; default: every enabled endpoint"
    )


class AttemptOut(BaseModel):
    attempt: int
    started_at: Timestamp
    status_code: int | None = Field(description="the receiver's HTTP status, if it answered")
    error: str | None = Field(description="why there was no answer (timeout, refused, ...)")
    latency_ms: int
    response_excerpt: str | None
    succeeded: bool


DeliveryStatus = Literal["pending", "succeeded", "failed", "canceled"]


class DeliveryOut(BaseModel):
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    status: DeliveryStatus
    next_attempt_at: Timestamp | None
    attempts: list[AttemptOut]


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
