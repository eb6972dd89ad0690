"""Signing as Standard Webhooks does: each endpoint's secret, and the headers of a request.

``webhook-id`` is the event id, the same on every retry; ``webhook-timestamp`` the attempt's
time; ``webhook-signature`` one signature per secret: the endpoint's, and for a day after a roll
also the previous one.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

from kassa.kit.secretbox import SecretBox, SecretKeyError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
UNOPENED_SECRET = "the endpoint's secret does not open with KASSA_SECRET_KEY"  # noqa: S105


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_secrets(
    box: SecretBox,
    secret: bytes,
    previous_secret: bytes | None,
    previous_expires_at: datetime | None,
    now: datetime,
) -> tuple[list[str], str | None]:
    """The secrets to sign with, or why there are none: a secret encrypted under a key the
    operator no longer gives fails its attempts (recorded) instead of stopping the worker."""
    try:
        signing = [box.open(secret).decode()]
    except SecretKeyError:
        return [], UNOPENED_SECRET
    if (
        previous_secret is not None
        and previous_expires_at is not None
        and previous_expires_at > now
    ):
        with contextlib.suppress(SecretKeyError):
            signing.append(box.open(previous_secret).decode())
    return signing, None


def headers(event_id: str, body: bytes, signing: list[str], now: datetime) -> dict[str, str]:
    """The headers of one attempt at sending ``body``, signed with each secret of ``signing``."""
    payload = body.decode()
    signatures = " ".join(Webhook(secret).sign(event_id, now, payload) for secret in signing)
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
    }
