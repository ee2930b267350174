"""The client's address behind trusted reverse proxies (YWM_TRUSTED_PROXIES).

Only when the immediate peer is a trusted proxy is `X-Forwarded-For` believed, and then only
as far as it is appended by trusted proxies: walking it from the right, the first address that
is not a trusted proxy is the client. A client that connects directly can write anything in the
header and it is ignored. Without trusted proxies the header is never read, so behind a load
balancer every client would share the balancer's address for login throttling: set the setting
there.

aiohttp-remotes was considered: its XForwardedFiltered believes the header whoever sent it,
and XForwardedStrict answers 400 to any peer that is not a proxy and also rewrites host and
scheme, so neither has the behaviour above.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 32   # addresses read from the header, at most (a longer one is not believed)


def parse_trusted(value: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks; ValueError names the first bad one."""
    networks: list[Network] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
             networks: Sequence[Network]) -> bool:
    return any(addr.version == n.version and addr in n for n in networks)


def client_address(peer: str | None, forwarded_for: list[str],
                   networks: Sequence[Network]) -> str | None:
    """The client's address: `peer` unless it is a trusted proxy that forwarded for someone."""
    peer_addr = _address(peer) if peer else None
    if peer_addr is None or not forwarded_for or not _trusted(peer_addr, networks):
        return peer
    hops = [h for header in forwarded_for for h in header.split(",")]
    if len(hops) > MAX_HOPS:
        return peer
    client = peer_addr
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:          # garbage from beyond the trusted proxies: stop there
            break
        client = addr
        if not _trusted(addr, networks):
            break
    return str(client)


def forwarded_middleware(networks: Sequence[Network]) -> Middleware:
    """Set `request.remote` to the client's address when a trusted proxy forwarded it."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        forwarded = request.headers.getall("X-Forwarded-For", [])
        if forwarded:
            remote = client_address(request.remote, forwarded, networks)
            if remote is not None and remote != request.remote:
                request = request.clone(remote=remote)
        return await handler(request)

    return middleware
