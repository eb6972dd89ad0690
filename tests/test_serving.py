"""``kassa serve --workers N``: each worker listens on a socket of its own, and a taken port is
refused rather than shared."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.helpers import KassaServer, run_cli

LISTEN = "0A"  # the TCP state column of /proc/net/tcp


def wait_for_listeners(port: int, expected: int) -> int:
    """Listeners on ``port`` once ``expected`` are up (workers start one after another), or
    after 30 s, whatever the count then."""
    deadline = time.monotonic() + 30
    while (found := listening_sockets(port)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)  # polling another process's start-up, not a stand-in for sync
    return found


def listening_sockets(port: int) -> int:
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == LISTEN:
            count += 1
    return count


async def test_each_worker_listens_on_its_own_socket(server: KassaServer) -> None:
    port = urlsplit(server.url).port
    assert port is not None
    # The fixture's server runs two workers; one shared socket would show as one listener.
    assert await asyncio.to_thread(wait_for_listeners, port, 2) == 2


async def test_a_second_server_on_the_same_port_is_refused(server: KassaServer) -> None:
    port = urlsplit(server.url).port
    assert port is not None
    result = await asyncio.to_thread(
        run_cli, server.database_url, "serve", "--workers", "2", "--port", str(port)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert listening_sockets(port) == 2
