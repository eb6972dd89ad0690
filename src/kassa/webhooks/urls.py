"""Where webhooks may go: https to public addresses, or anywhere an operator allow-lists.

A webhook URL is checked when an endpoint is created and again at every attempt (a name can come
to resolve elsewhere): every address its host resolves to must be global, so Kassa cannot be
made to call a private network, a link-local or cloud metadata address, or itself. Hosts in
``KASSA_WEBHOOK_ALLOWED_HOSTS`` are trusted as they are, plain http included.

At an attempt the check lives in the connection itself (``CheckedNetwork``): the addresses it
checks are the addresses it connects to, from one lookup. Checking with one lookup and letting
the HTTP client look the name up again to connect would let a name that answers a public
address first and a private one the second time (DNS rebinding) through. TLS still verifies
the certificate against the URL's host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import httpcore
import httpx

from kassa.kit.errors import KassaError

MAX_URL_LENGTH = 2048
MAX_ADDRESSES_TRIED = 4  # of those a host resolves to, in the resolver's order
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix: IPv4 inside IPv6


class InvalidWebhookUrl(KassaError):
    code = "invalid_webhook_url"
    status = 422
    title = "The webhook URL is not valid"


class WebhookUrlNotAllowed(KassaError):
    code = "webhook_url_not_allowed"
    status = 422
    title = "Kassa does not send webhooks to this URL"


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IpAddress]]]


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:  # a NAT64 gateway would reach this IPv4
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


def parse(url: str) -> tuple[str, str, int]:
    """The URL's scheme, host (lower case, no brackets) and port; refuses what is not a URL."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidWebhookUrl(f"the URL is not valid: {error}") from error
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidWebhookUrl("the URL must be an absolute http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("the URL must not carry credentials")
    if parts.fragment:
        raise InvalidWebhookUrl("the URL must not have a fragment")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise InvalidWebhookUrl("the URL must not contain spaces or control characters")
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default


def check_form(url: str, allowed_hosts: frozenset[str]) -> tuple[str, int]:
    """Refuse a URL Kassa must not call, as far as the URL alone tells (no lookup); its host
    and port."""
    scheme, host, port = parse(url)
    if scheme != "https" and host not in allowed_hosts:
        raise WebhookUrlNotAllowed("webhook URLs must use https")
    return host, port


async def check(url: str, allowed_hosts: frozenset[str], resolver: Resolver | None = None) -> None:
    """Refuse a URL Kassa must not call (422); resolve its host to be sure."""
    host, port = check_form(url, allowed_hosts)
    if host not in allowed_hosts:
        refuse_private(host, await (resolver or resolve)(host, port))


def refuse_private(host: str, addresses: Sequence[IpAddress]) -> None:
    for address in addresses:
        if not is_public(address):
            raise WebhookUrlNotAllowed(
                f"{host} resolves to {address}, a private, loopback, link-local or reserved address"
            )


async def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise WebhookUrlNotAllowed(f"{host} does not resolve: {error}") from error
    addresses: list[IpAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        addresses.append(address)
    if not addresses:
        raise WebhookUrlNotAllowed(f"{host} does not resolve")
    return addresses


class CheckedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's network, but a TCP connection to a host outside ``allowed_hosts`` resolves
    the host once, refuses it unless every address is public, and connects to one of exactly
    those addresses. Refusals are ``httpcore.ConnectError`` (``httpx.ConnectError`` to the
    client) with the policy's reason."""

    def __init__(
        self,
        allowed_hosts: frozenset[str],
        resolver: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allowed_hosts = allowed_hosts
        self.resolver = resolver or resolve
        self._network = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        host = host.lower()
        if host in self.allowed_hosts:
            return await self._network.connect_tcp(
                host, port, timeout, local_address, socket_options
            )
        try:
            # One deadline for the lookup and every address tried, as httpcore's own network
            # has: a name with many silent addresses cannot hold a worker for longer.
            async with asyncio.timeout(timeout):
                return await self._connect_checked(
                    host, port, timeout, local_address, socket_options
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connecting to {host} took over {timeout:g} s") from None

    async def _connect_checked(
        self,
        host: str,
        port: int,
        timeout: float | None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.resolver(host, port)
            refuse_private(host, addresses)
        except WebhookUrlNotAllowed as error:
            raise httpcore.ConnectError(error.detail) from None
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return await self._network.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # resolve() never answers an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


def checked_transport(
    allowed_hosts: frozenset[str],
    resolver: Resolver | None = None,
    network: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncHTTPTransport:
    """An httpx transport (no proxies from the environment) that connects through
    ``CheckedNetwork``; httpx takes no network of its own, so its connection pool is made
    again with ours, with httpx's own defaults otherwise."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    limits = httpx.Limits()
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=CheckedNetwork(allowed_hosts, resolver, network),
    )
    return transport
