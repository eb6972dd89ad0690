"""TOTP codes (RFC 6238: 6 digits, 30-second steps, SHA-1, as authenticator apps show them).

A code is checked against the step of ``now`` and one step either side (a phone's clock drifts),
comparing in constant time against all three. What is returned is the step matched, so the
caller can refuse a code at or before the last step accepted (a code is good once).
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

DIGITS = 6
STEP_SECONDS = 30
WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()


def uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def step_of(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The step ``code`` is right for, within one step of ``now``; None if it is wrong."""
    presented = code.strip().encode()
    current = step_of(now)
    matched = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(presented, code_at(secret, step).encode()) and matched is None:
            matched = step
    return matched
