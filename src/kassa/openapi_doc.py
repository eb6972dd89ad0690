"""``/openapi.json``: FastAPI's document, completed in one place.

Kassa's routes render their own answers, and several refusals come from layers FastAPI does not
see: the bearer check, ``read_body`` and ``parse_json``, ``refuse_unknown_query`` (every ``/v1``
route), the ``Idempotency-Key`` layer, the database. :func:`complete` adds what each operation
answers from what it is:

* every ``/v1`` operation: 400 ``unknown_parameter``, 401, 403 and 503 (``Retry-After``);
* with a JSON body: 400 ``malformed_json`` and 422 for its members;
* a change (POST, PUT, PATCH, DELETE, each of which honours ``Idempotency-Key``): that header,
  413 and 415 (the body is read even when the operation takes none), 400, 409 and 422 of the key;
* a path or query parameter that can be invalid (a pattern, a number, an enum): 422. FastAPI's
  own 422 (``HTTPValidationError`` as ``application/json``) is never what Kassa answers, so it
  goes; every native refusal is a ``Problem`` (``application/problem+json``).

A dialect's operation declares its own answers in its shapes (``kit.openapi.dialect_doc``); it
gets the header and the 503's ``Retry-After`` here. A route's ``x-components`` and a request
schema's ``$defs`` move to ``components``, and examples are put in (:mod:`kassa.openapi_examples`;
a dialect's come JSON-encoded, as FastAPI drops every ``null`` from what routes declare).
``tests/openapi`` validates the result and fuzzes the real server against it.
"""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from kassa.kit.errors import KassaError
from kassa.kit.openapi import EXAMPLE_JSON, MEANINGS, problem_response
from kassa.kit.problem import PROBLEM_MEDIA_TYPE, problem_body
from kassa.openapi_examples import FIELD_ERRORS, REQUESTS, response_example

CHANGES = frozenset({"post", "put", "patch", "delete"})
COMPONENT = "#/components/schemas/"

SCHEMAS: dict[str, Any] = {
    "FieldError": {
        "type": "object",
        "description": "What is wrong with one field of the request.",
        "required": ["field", "code", "message"],
        "properties": {
            "field": {"type": "string", "description": "dotted path of the member or parameter"},
            "code": {"type": "string", "description": "stable, machine-readable"},
            "message": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "Problem": {
        "type": "object",
        "description": "An RFC 9457 problem document: every refusal of the native API. Some"
        " carry more members (a conflict names the object in its way).",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "description": "`urn:kassa:problem:<code>`"},
            "title": {"type": "string", "description": "the same for every problem of a code"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "what happened to this request"},
            "code": {"type": "string", "description": "stable, machine-readable"},
            "errors": {
                "type": "array",
                "items": {"$ref": f"{COMPONENT}FieldError"},
                "description": "each invalid field, when there are some",
            },
        },
        "additionalProperties": True,
    },
}
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1 to 255 printable characters, unique per change: the first answer is"
    " stored and a retry with the same key and the same request gets it again"
    " (`Idempotent-Replayed: true`); the same key with another request is refused (422).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "example": "order-1042-try",
}
HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "seconds to wait before sending the same request again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
    "Location": {
        "description": "the created object's URL path (also on a replayed 201)",
        "required": True,
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the"
        " same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first use)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` completed as the module's docstring says."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    for _, _, operation in operations:
        for kind, entries in operation.pop("x-components", {}).items():
            _merge(components.setdefault(kind, {}), entries)
        for media in operation.get("requestBody", {}).get("content", {}).values():
            if "schema" in media:
                media["schema"] = _hoist_defs(media["schema"], schemas)
    _merge(schemas, SCHEMAS)
    titles = _titles()
    for path, method, operation in operations:
        if path.startswith("/v1/"):
            _complete_native(method, operation)
        else:
            _drop_fastapi_refusals(operation)
        _complete_headers(path, method, operation)
        _put_examples(operation, titles)
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, referred to no more
        if json.dumps(f"{COMPONENT}{unused}") not in json.dumps(document):
            schemas.pop(unused, None)
    return document


def _merge(into: dict[str, Any], entries: dict[str, Any]) -> None:
    for name, value in entries.items():
        if into.setdefault(name, value) != value:
            raise ValueError(f"two different OpenAPI components are both named {name}")


def _hoist_defs(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema's ``$defs`` as components (``#/$defs/X`` refers to nothing in an
    OpenAPI document); a def that differs from a component of its name is ``XInput``."""
    definitions = schema.pop("$defs", {})
    names = {name: name for name in definitions}

    def refer(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return {**node, "$ref": COMPONENT + names[ref.removeprefix("#/$defs/")]}
            return {key: refer(value) for key, value in node.items()}
        if isinstance(node, list):
            return [refer(value) for value in node]
        return node

    for name, value in definitions.items():
        if schemas.get(name, refer(value)) != refer(value):
            names[name] = f"{name}Input"
    for name, value in definitions.items():
        _merge(schemas, {names[name]: refer(value)})
    result: dict[str, Any] = refer(schema)
    return result


def _can_fail(parameter: dict[str, Any]) -> bool:
    """Whether FastAPI can refuse the parameter's value (anything but a plain string)."""
    schema = parameter.get("schema", {})
    for option in schema.get("anyOf", [schema]):
        constraints = set(option) - {"type", "title", "description", "default"}
        if constraints or option.get("type") not in ("string", "null"):
            return True
    return False


def _complete_native(method: str, operation: dict[str, Any]) -> None:
    body = operation.get("requestBody")
    change = method in CHANGES
    reasons: dict[int, list[str]] = defaultdict(list)
    reasons[400].append("a query parameter the operation does not take (`unknown_parameter`)")
    if body is not None:
        missing = ", or none was sent" if body.get("required") else ""
        reasons[400].append(f"the body is not JSON{missing} (`malformed_json`)")
        reasons[422].append(
            "the body has an invalid member (`validation_failed`, `invalid_amount`)"
        )
    if change:
        reasons[400].append(
            "the Idempotency-Key is not 1 to 255 printable characters (`invalid_idempotency_key`)"
        )
        reasons[409].append(
            "a request with this Idempotency-Key is in flight; retry it shortly"
            " (`idempotency_key_in_use`)"
        )
        if "413" not in operation["responses"]:  # a bulk operation says its own limit
            reasons[413].append(MEANINGS[413])
        reasons[415].append(MEANINGS[415])
        reasons[422].append(
            "the Idempotency-Key was used for another request (`idempotency_key_reused`)"
        )
    parameters = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query")]
    if any(_can_fail(parameter) for parameter in parameters):
        reasons[422].append("a parameter is not valid (`validation_failed`)")
    for status in (401, 403, 503):
        reasons[status].append(MEANINGS[status])
    responses = operation["responses"]
    for key in [key for key in responses if key.startswith(("4", "5"))]:
        if PROBLEM_MEDIA_TYPE not in responses[key].get("content", {}):
            del responses[key]  # FastAPI's HTTPValidationError: never what Kassa answers
    for status in sorted(reasons.keys() | {int(key) for key in responses if key[0] in "45"}):
        declared = responses.get(str(status), {}).get("description", "")
        # A route that gave no reason gets FastAPI's placeholder, the status's phrase.
        parts = [declared] if declared and declared != HTTPStatus(status).phrase else []
        parts += [reason for reason in reasons[status] if reason not in parts]
        responses[str(status)] = problem_response("; ".join(parts) or MEANINGS[status])
    operation["responses"] = dict(sorted(responses.items()))


def _drop_fastapi_refusals(operation: dict[str, Any]) -> None:
    """A dialect answers in its own shape: FastAPI's 422 (``HTTPValidationError``), added for
    an operation with path parameters that does not declare a 422, is never its answer."""
    responses = operation.get("responses", {})
    for key in [key for key in responses if "HTTPValidationError" in json.dumps(responses[key])]:
        del responses[key]


def _complete_headers(path: str, method: str, operation: dict[str, Any]) -> None:
    if method in CHANGES:
        parameters = operation.setdefault("parameters", [])
        if not any(p["name"].lower() == "idempotency-key" for p in parameters):
            parameters.append(dict(IDEMPOTENCY_KEY))
    for key, response in operation["responses"].items():
        names: list[str] = []
        if key == "503":
            names.append("Retry-After")
        if key == "401" and path.startswith("/v1/"):
            names.append("WWW-Authenticate")
        if key == "201" and path.startswith("/v1/"):
            names.append("Location")
        if key.startswith("2") and method in CHANGES:
            names.append("Idempotent-Replayed")
        if names:
            response["headers"] = {name: HEADERS[name] for name in names}


def _titles() -> dict[str, str]:
    """Every error's title by its code (from every ``KassaError`` Kassa has imported)."""
    found: dict[str, str] = {}
    pending: list[type[KassaError]] = [KassaError]
    while pending:
        error = pending.pop()
        found.setdefault(error.code, error.title)
        pending += error.__subclasses__()
    return found


_CODE = re.compile(r"`([a-z_]+)`")


def _problem_example(status: int, description: str, titles: dict[str, str]) -> dict[str, Any]:
    match = _CODE.search(description)
    code = match[1] if match and match[1] in titles else "error"
    title = titles.get(code, MEANINGS.get(status, "Request failed"))
    errors = FIELD_ERRORS if code in ("validation_failed", "invalid_amount") else []
    return problem_body(code, status, title, title, errors, {})


def _put_examples(operation: dict[str, Any], titles: dict[str, str]) -> None:
    media_list = [
        *operation.get("requestBody", {}).get("content", {}).values(),
        *(m for r in operation["responses"].values() for m in r.get("content", {}).values()),
    ]
    for media in media_list:
        if EXAMPLE_JSON in media:
            media["example"] = json.loads(media.pop(EXAMPLE_JSON))
    for media in operation.get("requestBody", {}).get("content", {}).values():
        example = REQUESTS.get(media.get("schema", {}).get("title", ""))
        if example is not None:
            media.setdefault("example", example)
    for key, response in operation["responses"].items():
        for media_type, media in response.get("content", {}).items():
            if "example" in media or "examples" in media:
                continue
            if media_type == PROBLEM_MEDIA_TYPE:
                media["example"] = _problem_example(int(key), response["description"], titles)
                continue
            ref = media.get("schema", {}).get("$ref", "")
            example = response_example(ref.removeprefix(COMPONENT)) if ref else None
            if example is not None:
                media["example"] = example
