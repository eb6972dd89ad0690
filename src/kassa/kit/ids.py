from __future__ import annotations

import uuid

from kassa.kit.errors import NotFound


def parse_id(text: str, what: str) -> uuid.UUID:
    """A public id from a URL; a malformed one names nothing, so it is 404 like an unknown one."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"{what} {text!r} not found") from None
