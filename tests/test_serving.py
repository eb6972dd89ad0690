"""``kassa serve --workers N``: each worker listens on a socket of its own, and a taken port is
refused rather than shared."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kassa.serving import FreezeAfterStartup
from tests.helpers import KassaServer, run_cli

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

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
    assert "serving" not in result.stdout + result.stderr
    assert listening_sockets(port) == 2


async def test_the_running_server_said_it_was_serving(server: KassaServer) -> None:
    port = urlsplit(server.url).port
    assert f"kassa: serving http://127.0.0.1:{port} on " in server.log_path.read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_stops_serve_before_it_says_serving(tmp_path: Path, workers: str) -> None:
    """Whatever holds the port (here not a Kassa), ``kassa serve`` says it cannot listen there
    and exits 2, and never first claims to be serving."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli(
            f"sqlite:///{tmp_path / 'kassa.db'}", "serve", "--workers", workers, "--port", str(port)
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"kassa: cannot listen on 127.0.0.1:{port}: Address already in use; is another server"
        " using the port? Choose another with --port"
    ], result.stderr


async def test_a_served_worker_freezes_what_start_up_made() -> None:
    """The server's side of the lifespan protocol sees start-up complete only once every object
    made so far is frozen out of the garbage collector's walks, and not before."""
    frozen_at: dict[str, int] = {}

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        assert (await receive())["type"] == "lifespan.startup"
        frozen_at["app_started"] = gc.get_freeze_count()
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        frozen_at[message["type"]] = gc.get_freeze_count()
        sent.append(message["type"])

    assert gc.get_freeze_count() == 0
    try:
        await FreezeAfterStartup(app)({"type": "lifespan"}, receive, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert frozen_at["app_started"] == 0
        assert frozen_at["lifespan.startup.complete"] > 10_000  # the modules, classes, routes…
    finally:
        gc.unfreeze()  # this is the test process, not a server: give its objects back
