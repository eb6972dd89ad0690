"""tests/compat/data/ still holds what the seed documents say.

The dialect tests read only the facts in tests/compat/data/, so the repository runs its suite
alone. Where the seed documents sit beside the repository (``../shared/seeds``), this test takes
the same facts from them again, each document in its own format, and compares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.compat.conftest import DATA

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"


@dataclass(frozen=True)
class Written:
    """A number with a fraction, as written: the document's ``1.00`` is not ``1.0``."""

    text: str


def exact_json(text: str) -> Any:
    return json.loads(text, parse_float=Written)


def json_objects(text: str) -> list[Any]:
    """Every JSON object that starts a line of a document, in order."""
    decoder = json.JSONDecoder(parse_float=Written)
    found = []
    for match in re.finditer(r"^\{", text, re.MULTILINE):
        try:
            found.append(decoder.raw_decode(text, match.start())[0])
        except json.JSONDecodeError:
            continue
    return found


# Salla: an OpenAPI 3 document in a YAML block.

# The keywords that constrain a value; descriptions, titles and the editor's x- keys are prose.
SCHEMA_KEYWORDS = {
    "$ref",
    "type",
    "required",
    "enum",
    "format",
    "nullable",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
}


class ExactLoader(yaml.SafeLoader):
    """YAML with its numbers' fractions kept as written, as ``exact_json`` keeps JSON's."""


ExactLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Written(str(node.value))
)


def schema_facts(schema: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword == "properties":
            facts[keyword] = {name: schema_facts(inner) for name, inner in value.items()}
        elif keyword in ("items", "additionalProperties") and isinstance(value, dict):
            facts[keyword] = schema_facts(value)
        elif keyword in ("allOf", "anyOf", "oneOf"):
            facts[keyword] = [schema_facts(inner) for inner in value]
        elif keyword in SCHEMA_KEYWORDS:
            facts[keyword] = value
    return facts


def only_content(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((content_type, media),) = content.items()
    return content_type, media


def derive_salla(text: str) -> dict[str, Any]:
    spec = yaml.load(text.split("```yaml", 1)[1].split("```", 1)[0], Loader=ExactLoader)
    ((path, operations),) = spec["paths"].items()
    ((method, operation),) = operations.items()
    (base_path,) = {urlparse(server["url"]).path for server in spec["servers"] if server["url"]}
    content_type, request = only_content(operation["requestBody"]["content"])
    responses = {}
    for status, response in operation["responses"].items():
        answered_as, media = only_content(response["content"])
        assert answered_as == content_type, status
        responses[status] = {"schema": schema_facts(media["schema"]), "example": media["example"]}
    schemas = spec["components"]["schemas"]
    return {
        "method": method.upper(),
        "base_path": base_path,
        "path": path,
        "content_type": content_type,
        "request": {"schema": schema_facts(request["schema"]), "example": request["example"]},
        "responses": responses,
        "components": {"schemas": {name: schema_facts(s) for name, s in schemas.items()}},
    }


# WalletAPI: prose with two JSON examples and tables written one cell per paragraph.


def paragraph_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each table (its header's column names, its rows): a header paragraph of column names
    starting with "Parameter", then one paragraph per cell while a row starts with a name and
    a type."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    tables = []
    for start, paragraph in enumerate(paragraphs):
        columns = paragraph.splitlines()
        if columns[0] != "Parameter":
            continue
        rows = []
        at = start + 1
        while at + len(columns) <= len(paragraphs):
            row = paragraphs[at : at + len(columns)]
            if not (re.fullmatch(r"\w+", row[0]) and re.fullmatch(r"[\w<>]+", row[1])):
                break
            rows.append(row)
            at += len(columns)
        tables.append((columns, rows))
    return tables


def derive_walletapi(text: str) -> dict[str, Any]:
    ((method, path),) = re.findall(r"^([A-Z]+) \{\{\w+\}\}(/\S+)$", text, re.MULTILINE)
    request_example, response_example = json_objects(text)
    tables = paragraph_tables(text)
    assert len(tables) == 4, [columns for columns, _ in tables]
    (columns, headers), (_, request), (_, response), (_, value) = tables
    required = columns.index("Required")

    def types(rows: list[list[str]]) -> dict[str, str]:
        return {row[0]: row[1] for row in rows}

    return {
        "method": method,
        "path": path,
        "headers": {
            "fields": types(headers),
            "required": [row[0] for row in headers if row[required] == "Yes"],
        },
        "request": {"fields": types(request), "example": request_example},
        "response": {"fields": types(response), "example": response_example},
        "response_value": {"fields": types(value)},
    }


# Autional: an API reference page flattened to text, one table row a line.


def table_rows(lines: list[str], header: int) -> list[list[str]]:
    """The rows under the header line at ``header``, up to the first blank line."""
    rows = []
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def field_table(lines: list[str], header: int) -> dict[str, dict[str, Any]]:
    fields = {}
    for name, kind, required, *_ in table_rows(lines, header):
        assert required in ("Yes", "No"), (name, required)
        fields[name] = {"type": kind, "required": required == "Yes"}
    return fields


def derive_autional(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    ((method, path),) = re.findall(r"^([A-Z]+) (/\S+)$", text, re.MULTILINE)
    # A table's header is its column names run together: "FieldTypeRequiredExample...".
    headers = [
        at for at, line in enumerate(lines) if re.fullmatch(r"(Name|Field|Status)[A-Za-z]+", line)
    ]
    parameters, request, statuses, *referenced = headers
    (request_schema,) = re.findall(r"^Schema: (\S+)$", text, re.MULTILINE)
    schemas = {request_schema: field_table(lines, request)}
    for header in referenced:
        # The schema's name is the nearest single dotted word above its table.
        name = next(
            line.strip()
            for line in reversed(lines[:header])
            if re.fullmatch(r"\w+(\.\w+)+", line.strip())
        )
        schemas[name] = field_table(lines, header)
    responses = {}
    for row in table_rows(lines, statuses):
        line = " ".join(row)
        status = line[:3]
        assert status.isdigit(), line
        (responses[status],) = [name for name in schemas if line.endswith(name)]
    # Each request row: name, type, required, the example, then a one-word description.
    example = {row[0]: " ".join(row[3:-1]) for row in table_rows(lines, request)}
    return {
        "method": method,
        "path": path,
        "path_parameters": {
            name: kind for name, where, kind, *_ in table_rows(lines, parameters) if where == "path"
        },
        "request": {"schema": request_schema, "example": example},
        "responses": responses,
        "schemas": schemas,
    }


DERIVE: dict[str, Callable[[str], dict[str, Any]]] = {
    "salla": derive_salla,
    "walletapi": derive_walletapi,
    "autional": derive_autional,
}


def test_the_data_still_matches_the_seed_documents() -> None:
    if not SEEDS.is_dir():
        pytest.skip("the seed documents are not beside this clone")
    assert sorted(path.stem for path in DATA.glob("*.json")) == sorted(DERIVE)
    for dialect, derive in DERIVE.items():
        stored = exact_json((DATA / f"{dialect}.json").read_text())
        source = stored.pop("source")
        assert derive((SEEDS / source).read_text()) == stored, dialect
