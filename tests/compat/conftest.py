"""Dialect tests: the real server, a SAR tenant in Riyadh time, and the facts each dialect's
seed document states, kept in data/ (test_seed_data.py checks them against the documents)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kassa.kit.db import Database
from tests.helpers import KassaServer, TenantKey, create_wallet, deposit, make_tenant

DATA = Path(__file__).resolve().parent / "data"


def seed_facts(dialect: str, parse_float: Callable[[str], Any] = float) -> dict[str, Any]:
    """What a dialect's seed document says: its data/<dialect>.json (see data/README.md)."""
    facts: dict[str, Any] = json.loads(
        (DATA / f"{dialect}.json").read_text(), parse_float=parse_float
    )
    return facts


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
