"""Where webhooks may go: no request of ours reaches the machine's own network, a cloud's
metadata service or a private address (SSRF).

The host is resolved once per connection, every address it resolves to is vetted with
``ipaddress`` (anything not globally routable is refused), and the connection is made to
the vetted address itself, with the original host name for Host and SNI. There is no
approval to cache and no second resolution to rebind: the check and the connection are one
step. Loopback is allowed only in development.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(httpcore.ConnectError):
    """The webhook's host is, or resolves to, an address we do not call."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses, in the resolver's order; RefusedAddress when it has none."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as error:
        raise RefusedAddress(f"{host[:100]} does not resolve: {error}") from error
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _plain(address: str) -> Address:
    ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


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
            if not ip.is_global or site_local or ip.is_multicast:
                return f"{host} resolves to {ip}, which is not a public address"
        return None


class VettedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check in ``connect_tcp``."""

    def __init__(self, policy: AddressPolicy, resolve: Resolver = system_resolver) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        refusal = self._policy.refusal(host, addresses)
        if refusal is not None:
            raise RefusedAddress(f"refused: {refusal}")
        last: Exception = RefusedAddress(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("webhooks do not go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


DEFAULT_LIMITS = httpx.Limits()


class VettedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection is vetted."""

    def __init__(
        self, policy: AddressPolicy, resolve: Resolver = system_resolver, *, limits: httpx.Limits = DEFAULT_LIMITS
    ) -> None:
        super().__init__(limits=limits)
        # httpx takes no network backend; the pool it would have made, made with one.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=VettedBackend(policy, resolve),
        )


def refused(error: BaseException) -> str | None:
    """The refusal behind an httpx error, if the address check caused it."""
    cause = error.__cause__ or error.__context__
    return str(cause) if isinstance(cause, RefusedAddress) else None


async def check_url(url: str, policy: AddressPolicy, resolve: Resolver = system_resolver) -> str | None:
    """Why a webhook URL may not be called, for the subscriber's answer (422). Delivery checks
    again, at every connection: this answer is not remembered."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        return "only http and https webhooks"
    host = parsed.host
    try:
        addresses = await resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except RefusedAddress as error:
        return str(error)
    return policy.refusal(host, addresses)
