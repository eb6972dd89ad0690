"""Dialects: facades of other services' withdrawal APIs over Kassa's own services.

Each dialect lives in ``compat/<name>/`` and only translates (paths, fields, units, envelopes,
status codes, error shapes): a withdrawal made through any of them is the same wallet, journal
transaction and event as through ``/v1``. ``docs/dialects.md`` maps every field.
"""

from __future__ import annotations

from fastapi import APIRouter

from kassa.config import Settings


def routers(settings: Settings) -> list[APIRouter]:
    """The routers of the dialects ``KASSA_DIALECTS`` switches on."""
    from kassa.compat.autional.endpoints import router as autional
    from kassa.compat.salla.endpoints import router as salla
    from kassa.compat.walletapi.endpoints import router as walletapi

    available = {"salla": salla, "walletapi": walletapi, "autional": autional}
    unknown = settings.dialects - set(available)
    if unknown:
        raise ValueError(
            f"KASSA_DIALECTS names unknown dialects: {', '.join(sorted(unknown))};"
            f" known: {', '.join(sorted(available))}"
        )
    return [router for name, router in available.items() if name in settings.dialects]
