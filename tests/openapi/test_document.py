"""``/openapi.json`` is a valid OpenAPI 3.1 document and says what each operation answers.

Built in-process from ``create_app`` (no database is opened: only the document is read); the
real server's answers are checked against it by ``test_fuzz.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit.problem import PROBLEM_MEDIA_TYPE

CHANGES = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(database_url=f"sqlite:///{folder / 'unused.db'}"))
    built: dict[str, Any] = app.app.openapi()
    return built


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # raises on the first error
    assert document["openapi"].startswith("3.1")
    assert len(operations(document)) >= 38


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    """No ``#/$defs/...`` left from a pydantic schema, and every component a ref names exists."""
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    schemas = document["components"]["schemas"]
    assert refs
    assert [ref for ref in refs if not ref.startswith("#/components/schemas/")] == []
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(schemas)
    assert "HTTPValidationError" not in schemas


def test_every_operation_is_described_with_an_example(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(document):
        media = [
            *operation.get("requestBody", {}).get("content", {}).values(),
            *(m for r in operation["responses"].values() for m in r.get("content", {}).values()),
        ]
        if not operation.get("summary") or not operation.get("description"):
            missing.append(f"{method} {path}: summary or description")
        if not any("example" in m or "examples" in m for m in media):
            missing.append(f"{method} {path}: example")
        if not any(status.startswith("2") for status in operation["responses"]):
            missing.append(f"{method} {path}: success")
    assert missing == []


def test_errors_have_their_schemas(document: dict[str, Any]) -> None:
    """Native refusals are ``Problem`` documents; a dialect's are in its own error shape."""
    wrong = []
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status < "400":
                continue
            content = response.get("content", {})
            if path.startswith("/v1/"):
                ok = list(content) == [PROBLEM_MEDIA_TYPE] and content[PROBLEM_MEDIA_TYPE][
                    "schema"
                ] == {"$ref": "#/components/schemas/Problem"}
            else:
                ok = bool(content) and all("schema" in media for media in content.values())
            if not ok:
                wrong.append(f"{method} {path} {status}: {content}")
    assert wrong == []


def test_statuses_every_operation_of_a_kind_answers(document: dict[str, Any]) -> None:
    """401/403 where a key is needed, 503 with Retry-After where the database is used, 413/415
    and the Idempotency-Key header on every change, 400 malformed_json where a body is parsed."""
    problems = []
    for method, path, operation in operations(document):
        responses = operation["responses"]
        name = f"{method} {path}"
        if path != "/healthz" and "Retry-After" not in responses.get("503", {}).get("headers", {}):
            problems.append(f"{name}: 503 with Retry-After")
        needs_key = path.startswith(("/v1/", "/compat/"))
        if needs_key and not (operation.get("security") and {"401", "403"} <= set(responses)):
            problems.append(f"{name}: security, 401, 403")
        if method in CHANGES:
            headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            if "Idempotency-Key" not in headers:
                problems.append(f"{name}: Idempotency-Key")
            if path.startswith("/v1/") and not {"413", "415"} <= set(responses):
                problems.append(f"{name}: 413, 415")
        if path.startswith("/v1/"):
            if "unknown_parameter" not in responses["400"]["description"]:
                problems.append(f"{name}: 400 unknown_parameter")
            if (
                "requestBody" in operation
                and "malformed_json" not in responses["400"]["description"]
            ):
                problems.append(f"{name}: 400 malformed_json")
    assert problems == []


def test_bodies_the_server_may_go_without_are_optional(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert paths["/v1/wallets/{wallet_id}/freeze"]["post"]["requestBody"]["required"] is False
    assert paths["/v1/events/{event_id}/redeliver"]["post"]["requestBody"]["required"] is False
    assert paths["/v1/wallets"]["post"]["requestBody"]["required"] is True


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    checked, wrong = 0, []
    for method, path, operation in operations(document):
        body = operation.get("requestBody", {}).get("content", {}).values()
        media_list = [("request", media) for media in body]
        media_list += [
            (status, media)
            for status, response in operation["responses"].items()
            for media in response.get("content", {}).values()
        ]
        for where, media in media_list:
            if "example" not in media:
                continue
            validator = Draft202012Validator(absolute(media["schema"]), registry=registry)
            errors = [error.message for error in validator.iter_errors(media["example"])]
            checked += 1
            if errors:
                wrong.append(f"{method} {path} {where}: {errors[:3]}")
    assert wrong == []
    assert checked >= 100


DOCUMENT = "urn:kassa:openapi"


def absolute(node: Any) -> Any:
    """``node`` with its ``#/components/...`` references made to name the whole document."""
    if isinstance(node, dict):
        return {
            key: DOCUMENT + value if key == "$ref" and value.startswith("#/") else absolute(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [absolute(value) for value in node]
    return node
