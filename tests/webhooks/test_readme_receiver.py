"""The README's receiver, run as written, verifies and takes what Kassa sends."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from standardwebhooks.webhooks import Webhook

from tests.helpers import create_wallet, free_port
from tests.webhooks.conftest import Hooks

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_receiver() -> str:
    section = README.read_text().split("## Receiving webhooks", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def start_receiver(script: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def listening(port: int, process: subprocess.Popen[str], timeout: float = 30) -> bool:
    """Wait until the receiver accepts connections (False if it died or time ran out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def test_the_readme_receiver_is_about_ten_lines() -> None:
    code = [line for line in readme_receiver().splitlines() if line.strip()]
    assert len(code) <= 13


async def test_the_readme_receiver_verifies_what_kassa_sends(hooks: Hooks, tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "receiver.py"
    script.write_text(readme_receiver())
    created = await hooks.endpoint(f"http://127.0.0.1:{port}/")
    env = {**os.environ, "KASSA_WEBHOOK_SECRET": created["secret"], "PORT": str(port)}
    process = start_receiver(script, env)
    try:
        assert await asyncio.to_thread(listening, port, process), process.stderr
        await create_wallet(hooks.api)
        (event,) = (await hooks.api.get("/v1/events")).json()["data"]
        assert await hooks.drain() == 1
        (delivery,) = (await hooks.api.get(f"/v1/events/{event['id']}/deliveries")).json()["data"]
        assert delivery["status"] == "succeeded", delivery
        assert delivery["attempts"][0]["status_code"] == 204
    finally:
        process.terminate()
        out, _err = process.communicate(timeout=10)
    assert f"{event['id']} wallet.created" in out


def test_the_readme_receiver_answers_while_another_request_is_still_arriving(
    tmp_path: Path,
) -> None:
    """A request still on its way (a slow or stalled sender) must not hold up the next one:
    Kassa sends events side by side, and a receiver that served one connection at a time
    would leave the second waiting until Kassa gives up on it."""
    port = free_port()
    script = tmp_path / "receiver.py"
    script.write_text(readme_receiver())
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env = {**os.environ, "KASSA_WEBHOOK_SECRET": secret, "PORT": str(port)}
    process = start_receiver(script, env)
    try:
        assert listening(port, process), process.stderr
        with socket.create_connection(("127.0.0.1", port), timeout=5) as stalled:
            stalled.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more yet
            body = '{"id": "evt_side_by_side", "type": "wallet.created", "data": {}}'
            now = datetime.now(UTC)
            headers = {
                "webhook-id": "evt_side_by_side",
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": Webhook(secret).sign("evt_side_by_side", now, body),
            }
            answer = httpx.post(
                f"http://127.0.0.1:{port}/", content=body, headers=headers, timeout=5
            )
            assert answer.status_code == 204
    finally:
        process.terminate()
        out, _err = process.communicate(timeout=10)
    assert "evt_side_by_side wallet.created" in out
