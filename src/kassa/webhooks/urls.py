"""Where webhooks may go: https to public addresses, or anywhere an operator allow-lists.

A webhook URL is checked when an endpoint is created and again before every attempt (a name can
come to resolve elsewhere): every address its host resolves to must be global, so Kassa cannot be
made to call a private network, a link-local or cloud metadata address, or itself. Hosts in
``KASSA_WEBHOOK_ALLOWED_HOSTS`` are trusted as they are, plain http included.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from kassa.kit.errors import KassaError

MAX_URL_LENGTH = 2048


class InvalidWebhookUrl(KassaError):
    code = "invalid_webhook_url"
    status = 422
    title = "The webhook URL is not valid"


class WebhookUrlNotAllowed(KassaError):
    code = "webhook_url_not_allowed"
    status = 422
    title = "Kassa does not send webhooks to this URL"


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
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


async def check(url: str, allowed_hosts: frozenset[str]) -> None:
    """Refuse a URL Kassa must not call (422); resolve its host to be sure."""
    scheme, host, port = parse(url)
    if host in allowed_hosts:
        return
    if scheme != "https":
        raise WebhookUrlNotAllowed("webhook URLs must use https")
    for address in await resolve(host, port):
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
