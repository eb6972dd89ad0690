"""How a route documents its answers in ``/openapi.json``.

Routes render their answers themselves, so FastAPI knows only what they declare here: the
success model and the refusals particular to the operation (a 404, a 409 and why). What every
operation of a kind answers (a bearer key's 401 and 403, a body's 400, 413, 415 and 422, an
``Idempotency-Key``'s 400, 409 and 422, the database's 503) is added to the whole document once,
by :mod:`kassa.openapi_doc`, from what each operation is (authenticated, with a body, a change).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from kassa.kit.problem import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
UNAVAILABLE = (
    "the database cannot be reached; nothing was done: send the same request again after"
    " `Retry-After` seconds"
)

# What a native refusal means when the route says nothing more about it.
MEANINGS: dict[int, str] = {
    400: "the request is malformed",
    401: "no API key, or an unknown or revoked one; an expired or revoked customer token"
    " (`unauthorized`)",
    403: "the API key lacks the scope this operation needs, or a customer token may not make it"
    " (`forbidden`)",
    404: "no such object for this API key's tenant; a malformed id names none (`not_found`)",
    409: "the object's state does not allow it",
    413: "the body is over 64 KiB (`payload_too_large`)",
    415: "the body is not sent as JSON (`unsupported_media_type`)",
    422: "the request is not valid (`validation_failed`)",
    503: f"{UNAVAILABLE} (`service_unavailable`)",
}

Problem = int | tuple[int, str]


def problem_response(description: str) -> dict[str, Any]:
    """A refusal answered as a ``Problem`` document (``application/problem+json``)."""
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


def doc(model: Any, status: int, *problems: Problem, summary: str | None = None) -> dict[str, Any]:
    """Route arguments: ``model`` answered with ``status``; each of ``problems`` (a status, or a
    status and why) as a problem document. An empty description is completed by
    :mod:`kassa.openapi_doc` with the reasons every operation of the kind has, or ``MEANINGS``."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": model, "description": "success"}
    }
    for problem in problems:
        code, why = problem if isinstance(problem, tuple) else (problem, "")
        responses[code] = problem_response(why)
    extra: dict[str, Any] = {} if summary is None else {"summary": summary}
    return {"status_code": status, "response_class": Response, "responses": responses, **extra}


def dialect_doc(
    *,
    summary: str,
    security: list[dict[str, list[str]]],
    body: dict[str, Any],
    success: dict[str, Any],
    error: dict[str, Any],
    refusals: dict[int, str],
    components: dict[str, Any],
) -> dict[str, Any]:
    """Route arguments for a dialect's operation: its JSON ``body`` (schema and example), its
    200 answer's ``success`` media entry, and each of ``refusals`` in the dialect's own ``error``
    shape (503, with ``Retry-After``, included). The dialect's schemas and security schemes go
    in ``components`` (moved to the document's components by :mod:`kassa.openapi_doc`)."""
    body, success, error = _keep_nulls(body), _keep_nulls(success), _keep_nulls(error)
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "success", "content": {"application/json": success}}
    }
    for status, why in {**refusals, 503: UNAVAILABLE}.items():
        responses[status] = {"description": why, "content": {"application/json": error}}
    return {
        "summary": summary,
        "response_class": Response,
        "responses": responses,
        "openapi_extra": {
            "security": security,
            "requestBody": {"required": True, "content": {"application/json": body}},
            "x-components": components,
        },
    }


# FastAPI drops every null from what a route declares (``exclude_none``), an example's too:
# an example travels JSON-encoded under this key and ``kassa.openapi_doc`` decodes it.
EXAMPLE_JSON = "x-example-json"


def _keep_nulls(media: dict[str, Any]) -> dict[str, Any]:
    if "example" not in media:
        return media
    rest = {key: value for key, value in media.items() if key != "example"}
    return {**rest, EXAMPLE_JSON: json.dumps(media["example"])}
