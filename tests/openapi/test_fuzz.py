"""Schemathesis against the real server: every operation answers what ``/openapi.json`` says.

``kassa serve`` runs as its own process (the suite's ``server`` fixture, on SQLite and on
PostgreSQL); a tenant whose API key holds every scope gets one object of each kind (a funded
wallet, a transaction, a verified instrument, a payout, a webhook endpoint, events). Then
``st run`` reads the server's own document and sends every operation (the ``/compat`` dialects
too) a bounded number of cases in each phase: the document's examples, its coverage phase
(boundary values, and requests that break the schema on purpose: wrong types, missing members,
unknown query parameters, other methods), random fuzzing and stateful sequences. Path, query
and body ids are drawn half of the time from the tenant's real objects (``schemathesis.toml``
dictionaries), so that cases reach the code behind the 404. Checks: ``not_a_server_error`` (no
5xx), ``status_code_conformance`` (every status is documented for its operation),
``content_type_conformance`` and ``response_schema_conformance`` (the body has the documented
media type and matches its schema). Any finding fails the test with schemathesis's report:
each failure with a curl command that reproduces it.

Deterministic: one seed (``KASSA_FUZZ_SEED``), one worker, no example database; the server's
answers depend on what earlier cases did, so a run is repeatable on a fresh database, not on
a reused one. ``KASSA_FUZZ_EXAMPLES`` (default 10) is the number of cases per operation and
phase; raise it to search longer (see docs/testing.md).

Mutations tried (on SQLite, default seed and size; reverted): ``get_event`` answering its
event with status 418, and ``list_events`` raising a bug when ``limit`` is 1. Both caught in one
run (52 s): "ST103 Undocumented status code ... Received: 418" for ``GET /v1/events/{id}``, and
"ST101 Server error ... Received: 500" for ``GET /v1/events?type=wallet.created&limit=1`` (the
coverage phase sends each bound of ``limit``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from kassa.kit.db import Database
from tests.helpers import KassaServer, TenantKey, create_wallet, deposit, make_tenant

SEED = int(os.environ.get("KASSA_FUZZ_SEED", "20261125"))
EXAMPLES = int(os.environ.get("KASSA_FUZZ_EXAMPLES", "10"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
HOOKS = Path(__file__).resolve().parent / "schemathesis_hooks.py"
IBAN = "DE89 3704 0044 0532 0130 00"
CUSTOMER = "1042"  # digits: Salla's customer_id is an integer


async def make_objects(api: httpx.AsyncClient) -> dict[str, Any]:
    """One of each object the operations name, in the tenant's default currency (EUR)."""
    wallet = await create_wallet(api, "EUR", customer_id=CUSTOMER)
    transaction = await deposit(api, wallet["id"], 1_000_000)
    options = {
        "options": [
            {
                "code": "BANK_TRANSFER",
                "instrument_types": ["SEPA_BANK_ACCOUNT"],
                "currencies": ["EUR"],
                "min_amount": 1,
                "max_amount": 1_000_000,
            }
        ]
    }
    responses = [await api.put("/v1/payment-options", json=options)]
    instrument = await api.post(
        f"/v1/customers/{CUSTOMER}/instruments",
        json={"type": "SEPA_BANK_ACCOUNT", "holder_name": "Fuzz", "iban": IBAN},
    )
    responses.append(instrument)
    instrument_id = instrument.json()["id"]
    responses.append(await api.post(f"/v1/customers/{CUSTOMER}/instruments/{instrument_id}/verify"))
    payout = await api.post(
        "/v1/payouts",
        json={
            "wallet_id": wallet["id"],
            "amount": 100,
            "payment_option": "BANK_TRANSFER",
            "instrument_id": instrument_id,
        },
    )
    endpoint = await api.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/kassa-fuzz"}
    )
    responses += [payout, endpoint]
    assert all(r.is_success for r in responses), [r.text for r in responses if not r.is_success]
    events = (await api.get("/v1/events")).json()["data"]
    return {
        "wallet": wallet["id"],
        "transaction": transaction["id"],
        "instrument": instrument_id,
        "payout": payout.json()["id"],
        "endpoint": endpoint.json()["id"],
        "event": events[0]["id"],
    }


def config(objects: dict[str, Any]) -> str:
    """``schemathesis.toml``: each id parameter drawn from the real object half of the time."""
    dictionaries = {**objects, "customer": CUSTOMER, "customer_number": int(CUSTOMER)}
    bindings = {
        "path.wallet_id": "wallet",
        "query.wallet_id": "wallet",
        "body.wallet_id": "wallet",
        "body.Id": "wallet",
        "path.transaction_id": "transaction",
        "path.instrument_id": "instrument",
        "body.instrument_id": "instrument",
        "path.payout_id": "payout",
        "path.endpoint_id": "endpoint",
        "body.endpoint_id": "endpoint",
        "path.event_id": "event",
        "path.customer_id": "customer",
        "query.customer_id": "customer",
        "path.user_id": "customer",
        "body.customer_id": "customer_number",
    }
    lines = []
    for name, value in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = [{json.dumps(value)}]", ""]
    lines.append("[parameters]")
    lines += [
        f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}'
        for key, name in bindings.items()
    ]
    return "\n".join(lines) + "\n"


def command(server: KassaServer, tenant: TenantKey, folder: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(folder / "schemathesis.toml"),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--generation-with-security-parameters",
        "false",
        "--request-timeout",
        "30",
        "--no-color",
        "-H",
        f"Authorization: Bearer {tenant.key}",
        "-H",
        f"apikeypublic: {tenant.key}",
        "-H",
        f"apiclientpublic: {tenant.tenant_id}",
    ]


async def test_the_server_answers_as_its_document_says(
    server: KassaServer, db: Database, tmp_path: Path
) -> None:
    tenant = await make_tenant(db)  # every scope, the default currency EUR
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=60
    ) as api:
        objects = await make_objects(api)
        document = (await api.get("/openapi.json")).json()
    (tmp_path / "schemathesis.toml").write_text(config(objects))
    began = time.monotonic()
    result = await asyncio.to_thread(
        subprocess.run,
        command(server, tenant, tmp_path),
        cwd=tmp_path,  # schemathesis keeps a cache (.schemathesis/) in its working directory
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=1_200,
        check=False,
    )
    report = result.stdout + result.stderr
    print(f"schemathesis seed {SEED}, {EXAMPLES} examples: {time.monotonic() - began:.0f} s")
    print(report[-3_000:])
    assert result.returncode == 0, f"KASSA_FUZZ_SEED={SEED}\n{report[-25_000:]}"
    # Every operation of the document was tested, the dialects' too.
    count = sum(len(item) for item in document["paths"].values())
    assert f"Operations:       {count} selected / {count} total" in report, report[:2_000]
    assert f"Tested: {count}" in report, report[-3_000:]
    assert any(path.startswith("/compat/") for path in document["paths"])
