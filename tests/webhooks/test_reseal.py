"""``kassa reseal``: after a new operator key is put first, every stored secret is encrypted
again under it, so that the old key can be dropped and everything still opens."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import pyotp

from kassa.app import create_app
from kassa.config import Settings
from kassa.kit.secretbox import SecretBox, new_operator_key
from kassa.webhooks.worker import Worker
from tests.helpers import TEST_SECRET_KEY, create_wallet, kassa_env
from tests.payouts.conftest import IBAN
from tests.webhooks.conftest import LOOPBACK, Hooks
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import signed_with


def reseal(url: str, secret_key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kassa", "reseal", "--json"],
        env=kassa_env(url, KASSA_SECRET_KEY=secret_key),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_after_a_reseal_the_new_key_alone_opens_everything(
    hooks: Hooks, receiver: Receiver, fresh_database_url: str
) -> None:
    """``hooks`` runs on ``fresh_database_url`` with TEST_SECRET_KEY as its only key."""
    body = {"url": receiver.url}
    made = await hooks.api.post(
        "/v1/webhook-endpoints", json=body, headers={"Idempotency-Key": "hook-1"}
    )
    assert made.status_code == 201, made.text
    endpoint = made.json()
    rolled = await hooks.api.post(f"/v1/webhook-endpoints/{endpoint['id']}/roll-secret")
    new_secret = rolled.json()["secret"]
    instrument = {"holder_name": "Ada", "type": "SEPA_BANK_ACCOUNT", "iban": IBAN}
    first = await hooks.api.post("/v1/customers/c1/instruments", json=instrument)
    assert first.status_code == 201, first.text
    enrolled = await hooks.api.post("/v1/customers/c1/sca/totp")
    assert enrolled.status_code == 201, enrolled.text

    newest = new_operator_key()
    stranger = await asyncio.to_thread(reseal, fresh_database_url, new_operator_key())
    assert stranger.returncode == 1  # no listed key opens them: nothing is changed
    assert all(json.loads(stranger.stdout)["unopened"].values())

    done = await asyncio.to_thread(reseal, fresh_database_url, f"{newest},{TEST_SECRET_KEY}")
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["resealed"] == {
        "webhook_endpoints.secret": 1,
        "webhook_endpoints.previous_secret": 1,
        "tenants.fingerprint_key": 1,
        "sca_authenticators.secret": 1,
        "idempotency_keys.body": 1,  # the keyed creation's answer shows the secret: sealed
    }
    assert not any(report["unopened"].values())

    # Now with the newest key only: webhooks are signed, the stored answer replays, and the
    # fingerprint key still gives the same fingerprints.
    await create_wallet(hooks.api)
    async with Worker(hooks.db, SecretBox([newest]), hooks.clock, allowed_hosts=LOOPBACK) as worker:
        assert await worker.run_once() == 1
    (request,) = receiver.received
    assert signed_with(new_secret, request)
    assert signed_with(endpoint["secret"], request)  # the previous secret, for a day

    settings = Settings(
        database_url=fresh_database_url,
        worker="off",
        secret_key=newest,
        webhook_allowed_hosts=LOOPBACK,
    )
    app = create_app(settings)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://kassa.test",
            headers={"Authorization": f"Bearer {hooks.tenant.key}"},
        ) as only_newest,
    ):
        replayed = await only_newest.post(
            "/v1/webhook-endpoints", json=body, headers={"Idempotency-Key": "hook-1"}
        )
        assert replayed.status_code == 201
        assert replayed.json() == endpoint
        again = await only_newest.post("/v1/customers/c2/instruments", json=instrument)
        assert again.status_code == 201, again.text
        assert again.json()["fingerprint"] == first.json()["fingerprint"]
        # The TOTP secret opens under the newest key: the app's code activates it.
        code = pyotp.TOTP(enrolled.json()["secret"]).now()
        activated = await only_newest.post(
            "/v1/customers/c1/sca/totp/activate", json={"code": code}
        )
        assert activated.status_code == 200, activated.text
