"""Where webhooks may go: no request of ours reaches the machine's own network, a cloud's
metadata service or a private address (SSRF).

The host is resolved once per connection, every address it resolves to is vetted with
``ipaddress`` (anything not globally routable is refused), and the connection is made to
the vetted address itself, with the original host name for Host and SNI (aiohttp's
connector asks our resolver and connects to what it returns; an address literal is vetted
before the request). There is no
approval to cache and no second resolution to rebind: the check and the connection are one
step. Loopback is allowed only in development.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from aiohttp import TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

Resolver = Callable[[str, int], Awaitable[list[str]]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(OSError):
    """The webhook's host is, or resolves to, an address we do not call (an OSError, as a
    failed resolution is, so that the client reports it as a connection error)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses, in the resolver's order; RefusedAddress when it has none."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as error:
        raise RefusedAddress(f"{host[:100]} does not resolve: {error}") from error
    return list(dict.fromkeys(str(info[4][0]) for info in found))


GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
DOCUMENTATION = ipaddress.IPv6Network("3fff::/20")
"""RFC 9637's documentation prefix, newer than this Python's ``ipaddress`` tables."""


def _plain(address: str) -> Address:
    """The address to judge: an IPv6 address that carries an IPv4 one (mapped, compatible,
    6to4, NAT64) is judged by the IPv4 address it carries, where the packets end up."""
    ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if not isinstance(ip, ipaddress.IPv6Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _not_global_unicast(ip: Address) -> bool:
    """IPv6 outside 2000::/3, or in a special range within it (Teredo, documentation, ...)."""
    return isinstance(ip, ipaddress.IPv6Address) and (
        ip not in GLOBAL_UNICAST or ip.teredo is not None or ip in DOCUMENTATION
    )


@dataclass(frozen=True)
class AddressPolicy:
    dev: bool
    allow_private: bool
    allowed_hosts: frozenset[str]

    def refusal(self, host: str, addresses: Iterable[str]) -> str | None:
        """Why these addresses of ``host`` may not be called (any one is enough), or None."""
        if host in self.allowed_hosts:
            return None
        found = list(addresses)
        if not found:
            return f"{host} has no address"
        for address in found:
            ip = _plain(address)
            if ip.is_loopback and (self.dev or self.allow_private):
                continue
            if self.allow_private and (ip.is_private or ip.is_link_local) and not ip.is_multicast:
                continue
            site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
            if not ip.is_global or site_local or ip.is_multicast or _not_global_unicast(ip):
                return f"{host} resolves to {ip}, which is not a public address"
        return None


class VettedResolver(AbstractResolver):
    """aiohttp's resolver with the address check in it: the connector connects only to the
    addresses it returns, which are the ones just vetted."""

    def __init__(self, policy: AddressPolicy, resolve: Resolver = system_resolver) -> None:
        self._policy = policy
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._resolve(host, port)
        refusal = self._policy.refusal(host, addresses)
        if refusal is not None:
            raise RefusedAddress(f"refused: {refusal}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


def vetted_connector(policy: AddressPolicy, resolve: Resolver = system_resolver, *, limit: int = 256) -> TCPConnector:
    """Connections whose every address is vetted, resolved afresh for each one (no DNS cache
    to outlive a check)."""
    return TCPConnector(resolver=VettedResolver(policy, resolve), use_dns_cache=False, limit=limit)


def literal_refusal(url: str, policy: AddressPolicy) -> str | None:
    """Why a URL whose host is an IP address may not be called: aiohttp connects to an address
    literal without asking the resolver, so it is vetted here (a literal cannot rebind)."""
    host = _literal_host(url)
    refusal = None if host is None else policy.refusal(host, [host])
    return None if refusal is None else f"refused: {refusal}"


@lru_cache(maxsize=1024)
def _literal_host(url: str) -> str | None:
    # Remembered per URL: parsing it costs a tenth of a delivery, and a subscriber's URL is one.
    host = URL(url).raw_host or ""
    try:
        ipaddress.ip_address(host.split("%", maxsplit=1)[0])
    except ValueError:
        return None
    return host


def refused(error: BaseException) -> str | None:
    """The refusal behind a client error, if the address check caused it."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, RefusedAddress):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


async def check_url(url: str, policy: AddressPolicy, resolve: Resolver = system_resolver) -> str | None:
    """Why a webhook URL may not be called, for the subscriber's answer (422). Delivery checks
    again, at every connection: this answer is not remembered."""
    try:
        parsed = URL(url)
        host = parsed.raw_host or ""  # the host in IDNA: encoding it is what fails
    except (ValueError, UnicodeError) as error:
        return f"not a URL that can be called: {error}"[:300]
    if parsed.scheme not in ("http", "https"):
        return "only http and https webhooks"
    try:
        addresses = await resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except RefusedAddress as error:
        return str(error)
    return policy.refusal(host, addresses)
