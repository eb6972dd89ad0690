"""Dialect tests: the real server, a SAR tenant in Riyadh time, and the seed documents."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kassa.kit.db import Database
from tests.helpers import KassaServer, TenantKey, create_wallet, deposit, make_tenant

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"
SALLA_SEED = SEEDS / "000_269790150fef2cfc.txt"
WALLETAPI_SEED = SEEDS / "001_455e0e19bb2b0e12.txt"
AUTIONAL_SEED = SEEDS / "002_cc023ebe61e88433.txt"


def json_objects(text: str) -> list[Any]:
    """Every JSON object that starts a line of a document, in order."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"^\{", text, re.MULTILINE):
        try:
            found.append(decoder.raw_decode(text, match.start())[0])
        except json.JSONDecodeError:
            continue
    return found


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


@pytest.fixture
async def sar(db: Database) -> TenantKey:
    return await make_tenant(db, "SAR", timezone="Asia/Riyadh")


@pytest.fixture
async def plain(server: KassaServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials: each dialect authenticates its own way."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture
async def native(server: KassaServer, sar: TenantKey) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {sar.key}"}, timeout=60
    ) as client:
        yield client


async def funded_wallet(
    native: httpx.AsyncClient, customer_id: str, amount: int = 10_000
) -> dict[str, Any]:
    wallet = await create_wallet(native, "SAR", customer_id=customer_id, name="juzdan1")
    await deposit(native, wallet["id"], amount)
    return wallet
