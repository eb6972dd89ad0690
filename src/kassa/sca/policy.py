"""A tenant's SCA policy: when a payout needs Strong Customer Authentication, and how.

Stored as JSON on the tenant (``tenants.sca_policy``) and loaded with the API key, so deciding
costs no read. ``None`` (the default) means SCA is never asked for. A payout needs SCA when any
rule matches it: the rule's currency (or any, if none is given) and an ``amount`` (minor units,
before fees) at or above the rule's ``min_amount``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kassa.kit.fields import Currency
from kassa.kit.money import MAX_MINOR_UNITS

Mode = Literal["EMBEDDED", "OUTSOURCED"]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: Currency | None = Field(default=None, description="only this currency; default any")
    min_amount: int = Field(
        default=0, ge=0, le=MAX_MINOR_UNITS, description="minor units; payouts from this amount up"
    )


class ScaPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(
        description="EMBEDDED: Kassa checks a TOTP code from the customer's authenticator;"
        " OUTSOURCED: the merchant authenticates the customer and reports the result"
    )
    rules: list[Rule] = Field(min_length=1, max_length=50)
    event_ttl_seconds: int = Field(
        default=300, ge=60, le=3_600, description="how long an SCA event can be completed"
    )


class ScaPolicyOut(BaseModel):
    """The policy in force; ``enabled: false`` (and no mode) when SCA is off."""

    enabled: bool
    mode: Mode | None = None
    rules: list[Rule] = Field(default_factory=list)
    event_ttl_seconds: int | None = None


def load(stored: dict[str, Any] | None) -> ScaPolicy | None:
    return None if stored is None else ScaPolicy.model_validate(stored)


def shown(policy: ScaPolicy | None) -> ScaPolicyOut:
    if policy is None:
        return ScaPolicyOut(enabled=False)
    return ScaPolicyOut(enabled=True, **policy.model_dump())


def required(policy: ScaPolicy | None, amount: int, currency: str) -> bool:
    if policy is None:
        return False
    return any(
        (rule.currency is None or rule.currency == currency) and amount >= rule.min_amount
        for rule in policy.rules
    )
