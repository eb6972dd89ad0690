"""Webhook tests: a database of their own, Kassa in process with a frozen clock, a worker
driven by hand, and a real HTTP receiver."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit.clock import FrozenClock
from kassa.kit.db import Database
from kassa.kit.secretbox import SecretBox
from kassa.webhooks.worker import Worker
from tests.helpers import TEST_SECRET_KEY, TenantKey, make_tenant
from tests.webhooks.receiver import Receiver, running_receiver

LOOPBACK = frozenset({"127.0.0.1"})


@dataclass
class Hooks:
    api: httpx.AsyncClient
    clock: FrozenClock
    db: Database
    worker: Worker
    tenant: TenantKey
    app: Any

    async def drain(self) -> int:
        """Run the worker until nothing is due now; how many attempts it made."""
        total = 0
        while attempted := await self.worker.run_once():
            total += attempted
        return total

    async def endpoint(self, url: str, **extra: Any) -> dict[str, Any]:
        response = await self.api.post("/v1/webhook-endpoints", json={"url": url, **extra})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def client_for(self, tenant: TenantKey) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://kassa.test",
            headers={"Authorization": f"Bearer {tenant.key}"},
        )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
async def hooks(fresh_database_url: str) -> AsyncIterator[Hooks]:
    # Starts at the real time, so the first attempts' timestamps also pass a receiver's
    # tolerance check against its own clock.
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    settings = Settings(
        database_url=fresh_database_url,
        auth_cache_seconds=0,
        worker="off",
        secret_key=TEST_SECRET_KEY,
        webhook_allowed_hosts=LOOPBACK,
    )
    app = create_app(settings, clock=clock)
    db = Database(fresh_database_url)
    await db.open()
    tenant = await make_tenant(db)
    try:
        async with (
            app.lifespan(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://kassa.test",
                headers={"Authorization": f"Bearer {tenant.key}"},
            ) as api,
            Worker(
                db,
                SecretBox([TEST_SECRET_KEY]),
                clock,
                allowed_hosts=LOOPBACK,
                timeout_seconds=5,
                rng=random.Random(7),
            ) as worker,
        ):
            yield Hooks(api, clock, db, worker, tenant, app)
    finally:
        await db.close()
