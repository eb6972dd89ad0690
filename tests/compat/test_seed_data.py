"""tests/compat/data/ still holds what the seed documents say.

The dialect tests read only the facts in tests/compat/data/, so the repository runs its suite
alone. Where the seed documents sit beside the repository (``../shared/seeds``), this test takes
the same facts from them again, each document in its own format, and compares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.compat.conftest import DATA, json_type, seed_facts

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


# Soap: a Markdown page with one curl request and a table of its parameters.


def derive_soap(text: str) -> dict[str, Any]:
    curl = text.split("```bash", 1)[1].split("```", 1)[0]
    ((method, url),) = re.findall(r"-X (\w+) '([^']+)'", curl)
    (data,) = re.findall(r"--data '(.*?)'", curl, re.DOTALL)
    example = exact_json(data)
    table = text.split("## Key Parameters", 1)[1].split("\n\n", 2)[1]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()[2:]  # after the header and its rule
    ]
    names = [name.strip("`") for name, *_ in rows]
    (redirect_to,) = [name for name, (*_, says) in zip(names, rows) if "redirect" in says.lower()]
    (on_completion,) = re.findall(r"^\d+\. Upon completion, (.+)$", text, re.MULTILINE)
    return {
        "method": method,
        "origin": f"{urlparse(url).scheme}://{urlparse(url).netloc}",
        "path": urlparse(url).path,
        "headers": dict(re.findall(r"--header '([^:]+): ([^']*)'", curl)),
        "request": {
            "fields": {name: json_type(example[name]) for name in names},
            "required": [name for name, (_, required, _) in zip(names, rows) if required == "Yes"],
            "enums": {
                name: values
                for name, (*_, says) in zip(names, rows)
                if (values := re.findall(r'`"([^"`]+)"`', says))
            },
            "example": example,
        },
        "on_completion": {"webhook": "webhook" in on_completion, "redirect_to": redirect_to},
    }


DERIVE: dict[str, Callable[[str], dict[str, Any]]] = {
    "salla": derive_salla,
    "walletapi": derive_walletapi,
    "autional": derive_autional,
    "soap": derive_soap,
}


# Paysafe: a reference page flattened to text that lost most field names beside their
# constraints. The names come from its examples, so what can be taken again is compared:
# the routes, every example, the prose's required list, and every enum, length limit,
# default, date-time format and nested object in the order the page states them.

ROUTE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) ?(/[\w/{}:.-]+)")


def top_level_json(text: str) -> list[tuple[int, Any]]:
    """Each JSON object that starts a line and is not inside an earlier one, with its offset."""
    decoder = json.JSONDecoder(parse_float=Written)
    found: list[tuple[int, Any]] = []
    end = 0
    for match in re.finditer(r"^\{", text, re.MULTILINE):
        if match.start() >= end:
            value, end = decoder.raw_decode(text, match.start())
            found.append((match.start(), value))
    return found


def prose_list(text: str, heading: str) -> list[str]:
    """The names of the "- name - what it is" lines under a heading line, up to the first line
    that is neither such an item nor a route the item goes on to name."""
    names = []
    for line in text.split(f"\n{heading}\n", 1)[1].splitlines():
        if item := re.match(r"- (\w+) - ", line):
            names.append(item[1])
        elif not ROUTE.match(line):
            return names
    return names


def derive_paysafe(text: str) -> dict[str, Any]:
    # The operation's own heading runs its method and path together: "POST/v2/...".
    (heading,) = re.findall(r"^(GET|POST|PUT|PATCH|DELETE)(/\S+)$", text, re.MULTILINE)
    routes = list(dict.fromkeys(m.groups() for m in ROUTE.finditer(text)))
    objects = top_level_json(text)
    request_at = text.index("\nRequest\n")
    route_examples: dict[str, list[Any]] = {}
    for at, body in objects:
        if at < request_at:
            mentioned = [m for m in ROUTE.finditer(text, 0, at)][-1]
            route_examples.setdefault(" ".join(mentioned.groups()), []).append(body)
    (statuses,) = re.findall(r"^Responses\n((?:- \d{3}\n)+)", text, re.MULTILINE)
    tabs = re.findall(r"- Example \(from schema\)\n((?:- .+\n)+)Schema\n", text)
    answers = [body for at, body in objects if at > request_at]
    responses = {}
    for status, names in zip(re.findall(r"\d{3}", statuses), tabs, strict=True):
        named = re.findall(r"^- (.+)$", names, re.MULTILINE)
        example, *rest = answers[: 1 + len(named)]
        answers = answers[1 + len(named) :]
        responses[status] = {"example": example, "examples": dict(zip(named, rest, strict=True))}
    assert not answers, answers
    lengths = re.findall(
        r"Possible values: (?:>= (\d+) characters\nand )?<= (\d+) characters", text
    )
    return {
        "method": heading[0],
        "path": heading[1],
        "content_types": sorted(set(re.findall(r"^- (\w+/[\w.+-]+)$", text, re.MULTILINE))),
        "routes": [{"method": m, "path": p, "path_parameters": path_names(p)} for m, p in routes],
        "route_examples": route_examples,
        "required_as_written": prose_list(text, "The following parameters are required:"),
        "optional_as_written": prose_list(text, "Optional parameters:"),
        "responses": responses,
        "enums": [
            [value.strip() for value in values.split(",")]
            for values in re.findall(r"Possible values: \[(.*?)\]", text, re.DOTALL)
        ],
        "lengths": [[int(low) if low else None, int(high)] for low, high in lengths],
        "defaults": re.findall(r"^Default value: (.+)$", text, re.MULTILINE),
        "formats": ["date-time"] * text.count("RFC 3339, section 5.6 date-time"),
        "objects": [
            name + ("[]" if kind.endswith("[]") else "")
            for name, kind in re.findall(r"^(\w+)\n(object(?:\[\])?)$", text, re.MULTILINE)
        ],
    }


def path_names(path: str) -> list[str]:
    return [colon or braced for colon, braced in re.findall(r":(\w+)|\{(\w+)\}", path)]


def constraints(schema: dict[str, Any], name: str = "") -> Iterator[tuple[str, Any]]:
    """What a kept schema states, in the order of its properties (the page's order)."""
    items = schema.get("items", {})
    if schema.get("properties"):
        yield "objects", name
    elif items.get("properties"):
        yield "objects", name + "[]"
    if "enum" in schema:
        yield "enums", schema["enum"]
    for limited in [schema, *schema.get("unnamed_members", [])]:
        if "maxLength" in limited:
            yield "lengths", [limited.get("minLength"), limited["maxLength"]]
    if "default" in schema:
        yield "defaults", str(schema["default"])
    if "format" in schema:
        yield "formats", schema["format"]
    for inner, property_schema in schema.get("properties", {}).items():
        yield from constraints(property_schema, inner)
    if items:
        yield from constraints(items)


def kept_paysafe(stored: dict[str, Any]) -> dict[str, Any]:
    """The part of data/paysafe.json that ``derive_paysafe`` takes from the page again."""
    schemas = stored["schemas"]
    stated: dict[str, list[Any]] = {"objects": [], "enums": [], "lengths": [], "defaults": []}
    stated["formats"] = []
    in_order = [stored["request"]["schema"], *(r["schema"] for r in stored["responses"].values())]
    for schema_name in in_order:
        for kind, value in constraints(schemas[schema_name]):
            if kind != "objects" or value:
                stated[kind].append(value)
    return {
        "method": stored["method"],
        "path": stored["path"],
        "content_types": [stored["content_type"]],
        "routes": [
            {
                "method": r["method"],
                "path": r["path"],
                "path_parameters": list(r["path_parameters"]),
            }
            for r in stored["routes"]
        ],
        "route_examples": {
            f"{r['method']} {r['path']}": r["request_examples"]
            for r in stored["routes"]
            if "request_examples" in r
        },
        "required_as_written": stored["request"]["required_as_written"],
        "optional_as_written": stored["request"]["optional_as_written"],
        "responses": {
            status: {"example": r["example"], "examples": r["examples"]}
            for status, r in stored["responses"].items()
        },
        **stated,
    }


def property_names(schema: dict[str, Any]) -> Iterator[str]:
    for name, inner in schema.get("properties", {}).items():
        yield name
        yield from property_names(inner)
    if "items" in schema:
        yield from property_names(schema["items"])


def check_paysafe(text: str, stored: dict[str, Any]) -> None:
    assert derive_paysafe(text) == kept_paysafe(stored)
    unnamed = {
        name
        for schema in stored["schemas"].values()
        for name in property_names(schema)
        if not re.search(rf"\b{name}\b", text)
    }
    assert not unnamed, "kept field names the document never writes"


def test_the_data_still_matches_the_seed_documents() -> None:
    if not SEEDS.is_dir():
        pytest.skip("the seed documents are not beside this clone")
    assert sorted(path.stem for path in DATA.glob("*.json")) == sorted([*DERIVE, "paysafe"])
    for dialect, derive in DERIVE.items():
        stored = exact_json((DATA / f"{dialect}.json").read_text())
        source = stored.pop("source")
        assert derive((SEEDS / source).read_text()) == stored, dialect
    stored = exact_json((DATA / "paysafe.json").read_text())
    check_paysafe((SEEDS / stored["source"]).read_text(), stored)


# Runs in every clone: the kept examples agree with the kept schemas.


def conforms(value: Any, schema: dict[str, Any], where: str) -> Iterator[str]:
    """Each way ``value`` breaks ``schema`` (the JSON-Schema subset data/paysafe.json keeps)."""
    if json_type(value) != schema["type"]:
        yield f"{where}: {json_type(value)}, kept as {schema['type']}"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{where}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            yield f"{where}: {value!r} breaks its length limits"
        if schema.get("format") == "date-time":
            datetime.fromisoformat(value)
    if isinstance(value, dict):
        for name, inner in value.items():
            if name not in schema["properties"]:
                yield f"{where}.{name}: not in the kept schema"
            else:
                yield from conforms(inner, schema["properties"][name], f"{where}.{name}")
    if isinstance(value, list):
        for at, inner in enumerate(value):
            yield from conforms(inner, schema["items"], f"{where}[{at}]")


def test_paysafe_examples_follow_the_kept_schemas() -> None:
    facts = seed_facts("paysafe")
    schemas = facts["schemas"]
    broken: list[str] = []
    for status, response in facts["responses"].items():
        schema = schemas[response["schema"]]
        broken += conforms(response["example"], schema, f"{status} example")
        for name, example in response["examples"].items():
            broken += conforms(example, schema, f"{status} {name}")
    assert broken == []
    named = facts["responses"]["201"]["examples"]
    assert len(named) == 7
    assert {example["status"] for example in named.values()} == {"PREVIEW", "PENDING", "COMPLETED"}
    codes = {
        status: example["error"]["code"]
        for status in ("400", "405")
        for example in facts["responses"][status]["examples"].values()
    }
    assert codes == {"400": "DW-INVALID-WITHDRAW-ACCOUNT", "405": "DW-OPERATION-NOT-ALLOWED"}


def test_paysafe_routes_and_request_agree_with_the_kept_schemas() -> None:
    facts = seed_facts("paysafe")
    withdrawal = facts["schemas"]["Withdrawal"]
    answers = [
        example
        for response in facts["responses"].values()
        if response["schema"] == "Withdrawal"
        for example in [response["example"], *response["examples"].values()]
    ]
    for route in facts["routes"]:
        assert list(route["path_parameters"]) == path_names(route["path"]), route["path"]
        for parameter in route["path_parameters"].values():
            field = parameter["field"]
            assert withdrawal["properties"][field]["type"] == parameter["type"], field
            assert {json_type(answer[field]) for answer in answers} == {parameter["type"]}
        for body in route.get("request_examples", []):
            assert body["status"] in withdrawal["properties"]["status"]["enum"], body
    request = facts["request"]
    schema = facts["schemas"][request["schema"]]
    renamed = [request["names_as_written"].get(n, n) for n in request["required_as_written"]]
    assert renamed == schema["required"]
    assert set(schema["required"]) <= set(schema["properties"])
    assert set(request["optional_as_written"]) <= set(schema["properties"])


def test_soap_example_follows_the_kept_fields() -> None:
    request = seed_facts("soap")["request"]
    example = request["example"]
    assert {name: json_type(value) for name, value in example.items()} == request["fields"]
    assert set(request["required"]) <= set(example)
    for name, allowed in request["enums"].items():
        assert example[name] in allowed, name
    assert seed_facts("soap")["on_completion"]["redirect_to"] in request["fields"]
