"""Cross-tenant sweep, generated from the server's own ``/openapi.json``.

Tenant A makes one of every object (a wallet with a deposit, so a transaction; a verified
instrument; a payout; a webhook endpoint; the events all that raised). Then, for every operation
in the OpenAPI document that names an object (a path parameter, a request-body member or a query
filter called ``*_id``, and the dialects' ``user_id`` and ``Id``), a new tenant B, whose key has
every scope, sends it twice: once with A's real id and once with a random one, everything else
equal (with several ids, also each one of A's alone, the others B's own). The two answers must be
the same (status, and the body with the id sent replaced by ``<id>``; two successes by their
shape), B's key is never refused (a 401 or 403 would make the comparison vacuous), A's object
answers 404 under ``/v1`` and never a 2xx anywhere, and no answer shows another of A's ids. A
customer id and a reference are labels in the caller's own namespace (B may have a customer "42"
and a reference "order-1" too), so B's request with A's may succeed, exactly as with a new one.
Afterwards A's objects read back byte for byte as before, A's event list is unchanged, A's wallet
holds what it held, and ``kassa verify`` is clean for A.

A new route is swept without anyone writing a case for it: its id parameters are mapped to A's
objects by name (``wallet_id`` -> the wallet, ``user_id`` -> the customer...). A parameter whose
name maps to nothing fails the test with the operation's name, so that whoever adds a route
decides what its ids are; a request body that cannot be made from the schema (a required member
of a type :func:`minimal_value` does not know) fails the same way.

What a mutation would break: a lookup that forgets ``tenant_id`` (``get_wallet`` by id alone)
answers A's object to B (a 2xx where the random id gets 404); a check that answers 403 for
"exists, not yours" differs from the random id's 404; a write that lands on A's object changes
A's reads afterwards. Tried (on a copy of ``src`` run with ``PYTHONPATH``): ``get_event`` in
``kassa.events.service`` selecting by event id without its tenant: caught, "GET
/v1/events/{event_id} ... 200 for A's object, not 404" and "the answer shows A's wallet,
customer, instrument, payout".
"""

from __future__ import annotations

import base64
import copy
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from kassa.kit.db import Database
from tests.helpers import (
    KassaServer,
    TenantKey,
    create_wallet,
    deposit,
    make_tenant,
    verify_tenant,
)

IBAN = "DE89 3704 0044 0532 0130 00"
WEBHOOK_URL = "https://93.184.215.14/kassa-sweep"
BANK_TRANSFER: dict[str, Any] = {
    "code": "BANK_TRANSFER",
    "instrument_types": ["SEPA_BANK_ACCOUNT"],
    "currencies": ["EUR"],
    "min_amount": 100,
    "max_amount": 1_000_000,
    "fee": {"fixed": 0, "bps": 0, "min": 0, "max": None},
    "connector": "manual",
}

# A parameter's name -> the kind of object it addresses. ``<kind>_id`` maps to ``<kind>`` when
# the kind is known; these are the names that do not follow that rule.
ALIASES = {
    "user_id": "customer",  # Autional: the user is the wallet's customer
    "Id": "wallet",  # WalletAPI: the wallet's Guid
    "customerId": "customer",  # Paysafe
    "withdrawalId": "payout",  # Paysafe: a withdrawal is a payout
    "brand": "brand",  # Paysafe's token endpoint: a brand name, taken as any label
    "internal_id": "customer",  # Soap: a customer record's Kassa customer id
}
KINDS = {
    "wallet",
    "transaction",
    "event",
    "endpoint",
    "instrument",
    "payout",
    "customer",
    "reference",
    "token",
    "checkout",
    "sca_event",
    "brand",
}
# Kinds that are labels in the caller's own namespace, not objects: B may have a customer "42"
# and a reference "order-1" of its own, so B's request may succeed, exactly as with a new label.
LABELS = {"customer", "reference", "brand"}

# A body that makes each operation succeed for the caller's own objects, where the schema's
# required members alone would not (``{id}`` marks where an id goes; the sweep fills it).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/wallets"): {"currency": "EUR"},
    ("POST", "/v1/wallets/{wallet_id}/deposits"): {"amount": 100},
    ("POST", "/v1/wallets/{wallet_id}/withdrawals"): {"amount": 100},
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): {"description": "changed by B"},
    ("POST", "/v1/customers/{customer_id}/instruments"): {
        "type": "SEPA_BANK_ACCOUNT",
        "holder_name": "B's customer",
        "iban": IBAN,  # the same account as A's instrument: a fingerprint must not match across
    },
    ("POST", "/v1/payouts"): {"amount": 100, "payment_option": "BANK_TRANSFER"},
    ("POST", "/v1/payouts/{payout_id}/status"): {"status": "PENDING"},
    ("POST", "/compat/salla/admin/v2/customers/wallets/withdraw"): {"amount": 1},
    ("POST", "/compat/salla/admin/v2/customers/wallets/deposit"): {"amount": 1},
    ("POST", "/compat/walletapi/api/v1/wallet/withdraw"): {"Amount": 1},
    ("POST", "/compat/autional/wallets/{user_id}/withdraw"): {"amount": "1.00"},
    ("POST", "/v1/checkouts"): {"type": "withdrawal", "return_url": "https://example.com/back"},
    ("POST", "/v1/customers/{customer_id}/sca/totp/activate"): {"code": "123456"},
    ("POST", "/compat/paysafe/v2/customers/{customerId}/withdrawals"): {
        "amount": 100,
        "currencyCode": "EUR",
        "paymentOption": "BANK_TRANSFER",
        "paymentInstrumentReference": {
            "id": "6f1d3a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
            "instrumentType": "SEPA_BANK_ACCOUNT",
        },
        "deviceInfo": {"appType": "API"},
    },
    ("POST", "/compat/paysafe/v2/customers/{customerId}/withdrawals/{withdrawalId}/status"): {
        "status": "PENDING"
    },
    ("POST", "/compat/paysafe/profile/withdrawals/{withdrawalId}/status"): {"status": "PENDING"},
    ("POST", "/compat/soap/api/v1/customers"): {
        "email": "{fresh}",  # each request its own: a repeated email is refused
        "first_name": "B",
        "last_name": "Customer",
    },
    ("POST", "/compat/soap/api/v1/checkouts"): {
        "type": "withdrawal",
        "balance_amount_cents": 100,
        "return_url": "https://example.com/back",
    },
}

# Members of an answer that differ between any two answers whatever the ids (a clock).
VOLATILE = {"timestamp", "created_at", "updated_at", "date", "id", "fingerprint"}


FRESH = object()  # a new reference, made for each request


def kind_of(name: str) -> str | None:
    if name in ALIASES:
        return ALIASES[name]
    stem = name.removesuffix("_id")
    return stem if stem != name and stem in KINDS else None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    name: str
    path_ids: list[str]
    query_ids: list[str]
    body_ids: list[str]
    body_schema: dict[str, Any] | None

    @property
    def id_names(self) -> list[str]:
        return self.path_ids + self.query_ids + self.body_ids


def operations(document: dict[str, Any]) -> tuple[list[Operation], list[str]]:
    """Every operation that names an object, and the names of those that name none."""
    found: list[Operation] = []
    without: list[str] = []
    for path, items in document["paths"].items():
        for method, spec in items.items():
            params = spec.get("parameters", [])
            path_ids = [p["name"] for p in params if p["in"] == "path"]
            query_ids = [
                p["name"] for p in params if p["in"] == "query" and p["name"].endswith("_id")
            ]
            content = spec.get("requestBody", {}).get("content", {}).get("application/json", {})
            schema = content.get("schema")
            members = set((schema or {}).get("properties", {})) | set(content.get("example", {}))
            body_ids = sorted(m for m in members if m.endswith("_id") or m == "Id")
            op = Operation(
                method.upper(),
                path,
                spec.get("operationId", f"{method} {path}"),
                path_ids,
                query_ids,
                body_ids,
                schema,
            )
            if op.id_names:
                found.append(op)
            else:
                without.append(f"{op.method} {path}")
    return found, without


def minimal_value(name: str, schema: dict[str, Any], op: Operation) -> Any:
    options = schema.get("anyOf")
    if options:
        schema = next(s for s in options if s.get("type") != "null")
    if "enum" in schema:
        return schema["enum"][0]
    match schema.get("type"):
        case "integer" | "number":
            return max(1, int(schema.get("minimum", 1)))
        case "string":
            return "x" * max(1, int(schema.get("minLength", 1)))
        case "boolean":
            return True
    raise AssertionError(f"{op.name}: cannot make a value for body member {name!r}: {schema}")


def base_body(op: Operation) -> dict[str, Any] | None:
    if op.body_schema is None and not op.body_ids:
        return None
    if (op.method, op.path) in BODIES:
        return copy.deepcopy(BODIES[(op.method, op.path)])
    schema = op.body_schema or {}
    properties = schema.get("properties", {})
    return {
        name: minimal_value(name, properties[name], op)
        for name in schema.get("required", [])
        if name not in op.body_ids
    }


@dataclass
class Objects:
    """One tenant's ids by kind; customer ids are digits, as Salla's validation wants."""

    ids: dict[str, str]

    def value(self, name: str) -> Any:
        kind = kind_of(name)
        assert kind is not None
        return self.ids[kind]


def random_objects() -> Objects:
    ids = {kind: str(uuid.uuid4()) for kind in KINDS}
    ids["customer"] = str(secrets.randbelow(10**12) + 10**11)
    ids["reference"] = f"ref-{uuid.uuid4().hex}"
    ids["brand"] = f"brand-{uuid.uuid4().hex[:8]}"
    return Objects(ids)


def fill(op: Operation, chosen: dict[str, Any]) -> tuple[str, dict[str, str], Any]:
    chosen = {k: (f"ref-{uuid.uuid4().hex}" if v is FRESH else v) for k, v in chosen.items()}
    path = op.path
    for name in op.path_ids:
        path = path.replace("{" + name + "}", str(chosen[name]))
    query = {name: str(chosen[name]) for name in op.query_ids}
    body = base_body(op)
    if body is not None and body.get("email") == "{fresh}":
        body["email"] = f"{uuid.uuid4().hex}@example.com"
    if body is not None:
        for name in op.body_ids:
            value = chosen[name]
            # Salla's customer id is a JSON number in its document.
            body[name] = int(value) if op.path.startswith("/compat/salla") else value
    return path, query, body


def normalise(value: Any, sent: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: normalise(v, sent) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalise(v, sent) for v in value]
    if isinstance(value, str):
        for item in sent:
            value = value.replace(item, "<id>")
    return value


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def variants(
    op: Operation, a_objects: Objects, b_objects: Objects | None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(which id is A's, values): every id A's at once, then, for an operation with several ids,
    each one A's alone with the others B's own (so that B's own objects are not what refuses)."""
    names = op.id_names
    yield "all", {name: a_objects.value(name) for name in names}
    if b_objects is not None:
        for name in names:
            # B's own reference would be refused as a repeat: a new one stands for B's.
            values = {
                other: FRESH if kind_of(other) == "reference" else b_objects.value(other)
                for other in names
            }
            values[name] = a_objects.value(name)
            yield name, values


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


async def send(
    client: httpx.AsyncClient, b: TenantKey, op: Operation, values: dict[str, Any]
) -> httpx.Response:
    path, query, body = fill(op, values)
    headers = {"Authorization": f"Bearer {b.key}"}
    if op.path.startswith("/compat/walletapi"):
        headers = {"apikeypublic": b.key, "apiclientpublic": str(b.tenant_id)}
    if op.path.startswith("/compat/paysafe/profile/"):
        # The /profile routes act for a customer: a token of one of B's customers.
        issued = await client.post(
            "/v1/customers/b-customer/tokens", headers={"Authorization": f"Bearer {b.key}"}
        )
        assert issued.status_code == 201, issued.text
        headers = {"Authorization": f"Bearer {issued.json()['token']}"}
    if op.path.endswith("/token"):
        basic = base64.b64encode(f"{b.tenant_id}:{b.key}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
        form = "grant_type=client_credentials"
        content_type = {"Content-Type": "application/x-www-form-urlencoded"}
        return await client.post(path, content=form, headers=headers | content_type)
    return await client.request(op.method, path, params=query, json=body, headers=headers)


async def make_objects(api: httpx.AsyncClient, funds: int) -> Objects:
    """A funded EUR wallet of a numeric customer, its deposit, a verified instrument, a payout
    in PREVIEW, a webhook endpoint, and the newest of the events all that raised."""
    response = await api.put(
        "/v1/payment-options", json={"options": [BANK_TRANSFER], "pending_ttl_seconds": 86_400}
    )
    assert response.status_code == 200, response.text
    customer = str(secrets.randbelow(10**12) + 10**11)
    wallet = await create_wallet(api, "EUR", customer_id=customer)
    reference = f"ref-{uuid.uuid4().hex}"
    transaction = await deposit(api, wallet["id"], funds, reference=reference)
    response = await api.post(
        f"/v1/customers/{customer}/instruments",
        json={"type": "SEPA_BANK_ACCOUNT", "holder_name": "Ada L.", "iban": IBAN},
    )
    assert response.status_code == 201, response.text
    instrument = response.json()["id"]
    response = await api.post(f"/v1/customers/{customer}/instruments/{instrument}/verify")
    assert response.status_code == 200, response.text
    response = await api.post(
        "/v1/payouts",
        json={
            "wallet_id": wallet["id"],
            "amount": 1_000,
            "payment_option": "BANK_TRANSFER",
            "instrument_id": instrument,
        },
    )
    assert response.status_code == 201, response.text
    payout = response.json()["id"]
    response = await api.post(
        "/v1/webhook-endpoints", json={"url": WEBHOOK_URL, "event_types": ["*"]}
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()["id"]
    response = await api.get("/v1/events", params={"limit": 1})
    assert response.status_code == 200, response.text
    event = response.json()["data"][0]["id"]
    response = await api.post(f"/v1/customers/{customer}/tokens")
    assert response.status_code == 201, response.text
    token = response.json()["id"]
    response = await api.post(
        "/v1/checkouts",
        json={
            "customer_id": customer,
            "type": "withdrawal",
            "return_url": "https://example.com/back",
        },
    )
    assert response.status_code == 201, response.text
    checkout = response.json()["id"]
    # An SCA event: the payout's move to PENDING under an OUTSOURCED policy (then turned off).
    policy = {"mode": "OUTSOURCED", "rules": [{"min_amount": 0}]}
    response = await api.put("/v1/sca/policy", json=policy)
    assert response.status_code == 200, response.text
    response = await api.post(f"/v1/payouts/{payout}/status", json={"status": "PENDING"})
    assert response.status_code == 200, response.text
    sca_event = response.json()["sca"]["id"]
    response = await api.delete("/v1/sca/policy")
    assert response.status_code == 200, response.text
    return Objects(
        {
            "wallet": wallet["id"],
            "customer": customer,
            "reference": reference,
            "transaction": transaction["id"],
            "instrument": instrument,
            "payout": payout,
            "endpoint": endpoint,
            "event": event,
            "token": token,
            "checkout": checkout,
            "sca_event": sca_event,
            "brand": "acme",
        }
    )


async def reads(api: httpx.AsyncClient, objects: Objects) -> dict[str, Any]:
    """Everything A can read about its objects, as A's key sees it."""
    ids = objects.ids
    paths = [
        f"/v1/wallets/{ids['wallet']}",
        f"/v1/wallets/{ids['wallet']}/transactions",
        f"/v1/transactions/{ids['transaction']}",
        f"/v1/customers/{ids['customer']}/instruments",
        f"/v1/customers/{ids['customer']}/instruments/{ids['instrument']}",
        f"/v1/payouts/{ids['payout']}",
        "/v1/payouts",
        "/v1/wallets",
        "/v1/webhook-endpoints",
        f"/v1/webhook-endpoints/{ids['endpoint']}",
        f"/v1/events/{ids['event']}",
        f"/v1/events/{ids['event']}/deliveries",
        "/v1/events?limit=100",
        "/v1/payment-options",
    ]
    seen: dict[str, Any] = {}
    for path in paths:
        response = await api.get(path)
        assert response.status_code == 200, f"A reads {path}: {response.text}"
        seen[path] = response.json()
    return seen


async def sweep(server: KassaServer, db: Database, op: Operation, a_objects: Objects) -> list[str]:
    """One operation, sent by a tenant B of its own (so that one operation's labels, say a wallet
    B made for A's customer id, do not change what the next one answers)."""
    b = await make_tenant(db, "EUR")
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as b_api:
        b_api.headers["Authorization"] = f"Bearer {b.key}"
        b_objects = await make_objects(b_api, funds=50_000) if len(op.id_names) > 1 else None
        for which, values in variants(op, a_objects, b_objects):
            random_values = {
                name: (random_objects().value(name) if value in a_objects.ids.values() else value)
                for name, value in values.items()
            }
            a_answer = await send(b_api, b, op, values)
            r_answer = await send(b_api, b, op, random_values)
            a_sent = [str(v) for v in values.values() if v in a_objects.ids.values()]
            r_sent = [str(v) for v in random_values.values() if v not in values.values()]
            a_body = normalise(_json(a_answer), a_sent)
            r_body = normalise(_json(r_answer), r_sent)
            label = f"{op.method} {op.path} [{op.name}; A's {which}]"
            a_kinds = {kind_of(n) for n, v in values.items() if v in a_objects.ids.values()}
            if a_answer.status_code in (401, 403):
                # B has every scope: a refusal of B's key would make every comparison vacuous.
                failures.append(f"{label}: B's key refused ({a_answer.status_code})")
            if op.path.startswith("/v1/") and not a_kinds <= LABELS and a_answer.status_code != 404:
                failures.append(f"{label}: {a_answer.status_code} for A's object, not 404")
            if a_answer.is_success and r_answer.is_success:
                # Two successes differ in their new ids and balances: compare their shape.
                a_body, r_body = shape(a_body), shape(r_body)
            if a_answer.status_code != r_answer.status_code or a_body != r_body:
                failures.append(
                    f"{label}: A's id -> {a_answer.status_code} {a_body!r}; "
                    f"random -> {r_answer.status_code} {r_body!r}"
                )
            if a_answer.is_success and not a_kinds <= LABELS:
                failures.append(f"{label}: {a_answer.status_code} for A's id")
            text = a_answer.text
            leaked = [k for k, v in a_objects.ids.items() if v not in a_sent and v in text]
            if leaked:
                failures.append(f"{label}: the answer shows A's {leaked}")
    return failures


async def test_tenant_b_cannot_tell_tenant_a_objects_from_random_ids(
    server: KassaServer, db: Database
) -> None:
    a = await make_tenant(db, "EUR")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {a.key}"}, timeout=60
    ) as a_api:
        document = (await a_api.get("/openapi.json")).json()
        swept, unswept = operations(document)
        unmapped = [
            f"{op.name} ({name})" for op in swept for name in op.id_names if kind_of(name) is None
        ]
        assert not unmapped, f"id parameters the sweep cannot map to an object: {unmapped}"
        dialects = [op for op in swept if op.path.startswith("/compat/")]
        assert {op.path.split("/")[2] for op in dialects} == {
            "salla",
            "walletapi",
            "autional",
            "paysafe",
            "soap",
        }
        assert len(swept) >= 25, [op.name for op in swept]

        a_objects = await make_objects(a_api, funds=50_000)
        before = await reads(a_api, a_objects)
        failures: list[str] = []
        for op in swept:
            failures += await sweep(server, db, op, a_objects)
        assert not failures, "\n".join(failures)

        after = await reads(a_api, a_objects)
        changed = [path for path in before if before[path] != after[path]]
        assert not changed, {path: (before[path], after[path]) for path in changed}
        wallet = after[f"/v1/wallets/{a_objects.ids['wallet']}"]
        assert wallet["balance"] == 50_000, wallet
        await verify_tenant(server, a)
        print(f"swept {len(swept)} operations; without an id: {unswept}")


def test_a_parameter_without_an_object_fails_the_sweep() -> None:
    """The guard a new route trips: an id the names do not map is reported by name."""
    document = {
        "paths": {
            "/v1/refunds/{refund_id}": {
                "get": {
                    "operationId": "get_refund",
                    "parameters": [{"name": "refund_id", "in": "path"}],
                }
            }
        }
    }
    swept, _ = operations(document)
    assert [op.name for op in swept] == ["get_refund"]
    assert [n for op in swept for n in op.id_names if kind_of(n) is None] == ["refund_id"]
    assert kind_of("wallet_id") == "wallet"
