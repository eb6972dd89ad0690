"""Schemathesis hooks for ``test_fuzz.py``, loaded by the ``st`` process through
``SCHEMATHESIS_HOOKS``.

Schemathesis draws the ``Idempotency-Key`` header from a small space ("0", "00"...), so most
changes would be refused as ``idempotency_key_reused`` and never reach the code behind them:
each request's key gets a number of its own here (the drawn text is kept, so a key that is too
long or not printable is still refused, as 400). The ``st`` process runs with the repository
root as its working directory, so ``kassa`` and ``tests`` import.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import schemathesis

from kassa.idempotency.service import MAX_KEY_LENGTH

_NUMBER = re.compile(r"~#[0-9]+$")
_sent = itertools.count()


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and key and len(key) <= MAX_KEY_LENGTH:
        # Numbered once per request (a retried or shrunk case drops its old number first).
        suffix = f"~#{next(_sent)}"
        case.headers["Idempotency-Key"] = (
            _NUMBER.sub("", key)[: MAX_KEY_LENGTH - len(suffix)] + suffix
        )
