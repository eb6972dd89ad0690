"""Dialects: facades of other services' withdrawal APIs over Kassa's own services.

Each dialect lives in ``compat/<name>/`` and only translates (paths, fields, units, envelopes,
status codes, error shapes): a withdrawal made through any of them is the same wallet, journal
transaction and event as through ``/v1``. ``docs/dialects.md`` maps every field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kassa.config import Settings

if TYPE_CHECKING:
    from fastapi import APIRouter

KNOWN = ("salla", "walletapi", "autional", "paysafe", "soap")


def check_names(settings: Settings) -> None:
    """Refuse a ``KASSA_DIALECTS`` that names a dialect Kassa does not have (cheap: imports
    none of them)."""
    unknown = settings.dialects - set(KNOWN)
    if unknown:
        raise ValueError(
            f"KASSA_DIALECTS names unknown dialects: {', '.join(sorted(unknown))};"
            f" known: {', '.join(KNOWN)}"
        )


def routers(settings: Settings) -> list[APIRouter]:
    """The routers of the dialects ``KASSA_DIALECTS`` switches on; each one's error shape is
    registered for its base path, so that even an error no endpoint catches (a bug, an
    outage) reaches its clients in that shape."""
    from kassa.compat.autional import endpoints as autional
    from kassa.compat.common import register_renderer
    from kassa.compat.paysafe import documents as paysafe_documents
    from kassa.compat.paysafe import endpoints as paysafe
    from kassa.compat.salla import endpoints as salla
    from kassa.compat.soap import endpoints as soap
    from kassa.compat.walletapi import endpoints as walletapi
    from kassa.kit.clock import SystemClock

    available = {
        "salla": (salla.router, salla.BASE, salla.render_error),
        "walletapi": (walletapi.router, walletapi.BASE, walletapi.render_error),
        "autional": (autional.router, autional.BASE, autional.error_renderer(SystemClock())),
        "paysafe": (paysafe.router, paysafe.BASE, paysafe_documents.render_error),
        "soap": (soap.router, soap.BASE, soap.render_error),
    }
    check_names(settings)
    served = []
    for name, (router, base, render_error) in available.items():
        if name in settings.dialects:
            register_renderer(base, render_error)
            served.append(router)
    return served
