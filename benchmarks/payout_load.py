"""The payout benchmark's load: a lean HTTP/1.1 keep-alive client on asyncio (one connection per
simulated client, so that the load generator costs little CPU on a small machine) and the
clients' loops: the payout lifecycle, payouts handed to the sandbox rail, and `/v1` immediate
withdrawals. Latencies are measured per request. Used by `payouts.py`."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import orjson

OPTION: dict[str, Any] = {
    "code": "BANK_TRANSFER",
    "instrument_types": ["SEPA_BANK_ACCOUNT"],
    "currencies": ["EUR"],
    "min_amount": 1,
    "max_amount": 10**9,
    "fee": {"fixed": 25, "bps": 50},
    "connector": "manual",
}
SANDBOX_OPTION: dict[str, Any] = {**OPTION, "code": "RAPID_TRANSFER", "connector": "sandbox"}
CHANGES = ("PREVIEW", "PENDING", "PROCESSING", "COMPLETED")


# --- a lean HTTP/1.1 client ------------------------------------------------------------------


class Client:
    """One keep-alive connection; ``post`` answers (status, body)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._host, self._port = host, port
        self._auth = f"Authorization: Bearer {token}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any], key: str | None) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        payload = orjson.dumps(body)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
        ).encode() + self._auth
        if key is not None:
            head += f"Idempotency-Key: {key}\r\n".encode()
        self._writer.write(head + b"\r\n" + payload)
        status_line = await self._reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


@dataclasses.dataclass
class Tally:
    latencies_ms: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    failures: int = 0
    first_failure: str = ""

    def add(self, name: str, began: float) -> None:
        self.latencies_ms.setdefault(name, []).append(1000 * (time.perf_counter() - began))

    def fail(self, what: str, status: int, body: bytes) -> None:
        self.failures += 1
        if not self.first_failure:
            self.first_failure = f"{what} answered {status}: {body[:300]!r}"


async def _lifecycle(client: Client, wallet: tuple[str, str], n: str, tally: Tally) -> None:
    await _payout(client, wallet, n, tally, "BANK_TRANSFER", CHANGES[1:])


async def _sandbox(client: Client, wallet: tuple[str, str], n: str, tally: Tally) -> None:
    """Handed to the sandbox rail, which settles it (the worker records its outcome)."""
    await _payout(client, wallet, n, tally, "RAPID_TRANSFER", CHANGES[1:3])


async def _payout(
    client: Client,
    wallet: tuple[str, str],
    n: str,
    tally: Tally,
    option: str,
    changes: Sequence[str],
) -> None:
    wallet_id, instrument_id = wallet
    # The sandbox settles every amount but those ending in 99 (silent until looked up).
    amount = random.randint(1, 99) * 100 + random.randint(0, 98)
    began = time.perf_counter()
    status, body = await client.post(
        "/v1/payouts",
        {
            "wallet_id": wallet_id,
            "amount": amount,
            "payment_option": option,
            "instrument_id": instrument_id,
        },
        f"{n}-p",
    )
    if status != 201:
        tally.fail("POST /v1/payouts", status, body)
        return
    tally.add("PREVIEW", began)
    payout_id = orjson.loads(body)["id"]
    for target in changes:
        began = time.perf_counter()
        status, body = await client.post(
            f"/v1/payouts/{payout_id}/status", {"status": target}, f"{n}-{target}"
        )
        if status != 200:
            tally.fail(f"status {target}", status, body)
            return
        tally.add(target, began)


async def _withdraw(client: Client, wallet: tuple[str, str], n: str, tally: Tally) -> None:
    began = time.perf_counter()
    path = f"/v1/wallets/{wallet[0]}/withdrawals"
    status, body = await client.post(path, {"amount": random.randint(1, 1000)}, f"{n}-w")
    if status != 201:
        tally.fail("withdrawal", status, body)
        return
    tally.add("withdrawal", began)


async def drive(
    port: int, token: str, wallets: list[tuple[str, str]], clients: int, seconds: float, kind: str
) -> tuple[Tally, float]:
    tally = Tally()
    step = {"payouts": _lifecycle, "sandbox": _sandbox, "withdrawals": _withdraw}[kind]
    run = os.urandom(4).hex()
    deadline = time.monotonic() + seconds

    async def one(number: int) -> None:
        client = Client("127.0.0.1", port, token)
        sent = 0
        try:
            while time.monotonic() < deadline:
                sent += 1
                await step(client, random.choice(wallets), f"{run}-{number}-{sent}", tally)
        finally:
            await client.close()

    began = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return tally, time.monotonic() - began
