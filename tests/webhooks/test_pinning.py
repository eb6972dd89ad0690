"""A webhook's connection goes to the very addresses its policy check saw, from one lookup: a
name that answers a public address to the check and a private one to the connection (DNS
rebinding) cannot steer Kassa into a private network."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import Iterable

import httpcore
import httpx
import pytest
from sqlalchemy import update

from kassa.kit.secretbox import SecretBox
from kassa.webhooks import urls
from kassa.webhooks.tables import webhook_endpoints
from kassa.webhooks.worker import Worker
from tests.helpers import TEST_SECRET_KEY, create_wallet
from tests.webhooks.conftest import LOOPBACK, Hooks
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import deliveries_of, event_ids

PUBLIC = ipaddress.ip_address("93.184.215.14")
LOCAL = ipaddress.ip_address("127.0.0.1")


class Rebinding:
    """A resolver for one name that answers each lookup with the next of ``answers``."""

    def __init__(self, *answers: urls.IpAddress) -> None:
        self.answers = list(answers)
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[urls.IpAddress]:
        self.lookups.append((host, port))
        return [self.answers.pop(0)]


class RecordingNetwork(httpcore.AsyncMockBackend):
    """httpcore's in-memory network, answering 204, that records where it was asked to
    connect."""

    def __init__(self) -> None:
        super().__init__([b"HTTP/1.1 204 No Content\r\n", b"Content-Length: 0\r\n", b"\r\n"])
        self.connected_to: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected_to.append((host, port))
        await self.before_answering()
        return await super().connect_tcp(host, port, timeout, local_address, socket_options)

    async def before_answering(self) -> None:
        """What a connection attempt meets before it is answered: here, nothing."""


async def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    resolver = Rebinding(PUBLIC, LOCAL)  # a second lookup would answer loopback
    network = RecordingNetwork()
    transport = urls.checked_transport(frozenset(), resolver, network)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post("http://hooks.example:8080/in", content=b"{}")
    assert response.status_code == 204
    assert resolver.lookups == [("hooks.example", 8080)]
    assert network.connected_to == [(str(PUBLIC), 8080)]


async def test_a_name_that_resolves_privately_at_the_attempt_is_never_called(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint = await hooks.endpoint(receiver.url)
    # The name passed the check when the endpoint was made; now it answers loopback, where the
    # receiver listens on the same port.
    port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
    async with hooks.db.write() as conn:
        await conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == uuid.UUID(endpoint["id"]))
            .values(url=f"https://rebind.example:{port}/")
        )
    await create_wallet(hooks.api)
    (event_id,) = await event_ids(hooks.api)
    resolver = Rebinding(LOCAL)
    async with Worker(
        hooks.db,
        SecretBox([TEST_SECRET_KEY]),
        hooks.clock,
        allowed_hosts=LOOPBACK,
        resolver=resolver,
    ) as worker:
        assert await worker.run_once() == 1
    assert receiver.received == []
    assert resolver.lookups == [("rebind.example", port)]
    (delivery,) = await deliveries_of(hooks.api, event_id)
    assert delivery["status"] == "pending"  # retried later, when the name may answer otherwise
    assert "rebind.example resolves to 127.0.0.1" in delivery["attempts"][0]["error"]


async def test_allow_listed_hosts_connect_as_named(hooks: Hooks, receiver: Receiver) -> None:
    """The operator's allow-list is not looked up by the policy at all (the receiver is on
    127.0.0.1, which the fixture allows)."""
    await hooks.endpoint(receiver.url)
    await create_wallet(hooks.api)
    resolver = Rebinding()  # any lookup would fail: it has no answers
    async with Worker(
        hooks.db,
        SecretBox([TEST_SECRET_KEY]),
        hooks.clock,
        allowed_hosts=LOOPBACK,
        resolver=resolver,
    ) as worker:
        assert await worker.run_once() == 1
    assert len(receiver.received) == 1
    assert resolver.lookups == []


class SilentNetwork(RecordingNetwork):
    """Every address drops the connection attempt silently (the attempt never ends)."""

    async def before_answering(self) -> None:
        await asyncio.Event().wait()


class RefusingNetwork(RecordingNetwork):
    async def before_answering(self) -> None:
        raise httpcore.ConnectError("connection refused")


def many_public(count: int) -> urls.Resolver:
    async def resolve(host: str, port: int) -> list[urls.IpAddress]:
        return [ipaddress.ip_address(f"93.184.215.{n}") for n in range(1, count + 1)]

    return resolve


async def test_one_deadline_covers_the_lookup_and_every_address() -> None:
    network = SilentNetwork()
    checked = urls.CheckedNetwork(frozenset(), many_public(8), network=network)
    with pytest.raises(httpcore.ConnectTimeout):
        await checked.connect_tcp("hooks.example", 443, timeout=0.05)
    assert len(network.connected_to) == 1  # the deadline ended it, not eight of them


async def test_at_most_four_addresses_are_tried() -> None:
    network = RefusingNetwork()
    checked = urls.CheckedNetwork(frozenset(), many_public(8), network=network)
    with pytest.raises(httpcore.ConnectError):
        await checked.connect_tcp("hooks.example", 443, timeout=5)
    assert [host for host, _port in network.connected_to] == [
        f"93.184.215.{n}" for n in range(1, urls.MAX_ADDRESSES_TRIED + 1)
    ]
