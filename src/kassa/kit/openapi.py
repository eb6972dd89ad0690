"""How a route documents its answers in ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from kassa.kit.problem import PROBLEM_MEDIA_TYPE


def doc(model: Any, status: int, *problems: int) -> dict[str, Any]:
    """Route arguments: ``model`` answered with ``status``; 401, 403 and ``problems`` as
    problem+json. Routes render their answers themselves (``Response``)."""
    return {
        "status_code": status,
        "response_class": Response,
        "responses": {
            status: {"model": model},
            **{
                code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": "problem+json"}
                for code in (401, 403, *problems)
            },
        },
    }
