"""The client's address: the TCP peer, or what trusted proxies say in forwarded headers.

Forwarded headers are believed only when the TCP peer is a trusted proxy;
the chain is then read right to left (each proxy appends the address it
saw), skipping trusted hops, and the first untrusted address is the client.
Anything left of it was written by the client and is never believed, so a
scraper cannot rotate its address by sending ``X-Forwarded-For`` itself.

The proxy must *append* to (or overwrite) the header read here.  With
``header="either"`` ``X-Forwarded-For`` wins when present, so a proxy that
only writes ``Forwarded`` should be configured with ``header="forwarded"``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Literal

from consentune.errors import InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_FOR_PARAM = re.compile(r'(?:^|;)\s*for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)', re.IGNORECASE)


def parse_trusted_proxies(spec: Sequence[str]) -> tuple[Network, ...]:
    """Parse CIDRs or single addresses (``"10.0.0.0/8"``, ``"::1"``); host bits are allowed and dropped.

    Raises :class:`InvalidInput` naming the bad entry.
    """
    if isinstance(spec, str):
        spec = [part for part in spec.split(",") if part.strip()]
    networks: list[Network] = []
    for entry in spec:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise InvalidInput(
                f"trusted proxy {entry!r} is not an IP address or CIDR network",
                hint="list proxies like '10.0.0.0/8' or '127.0.0.1', comma-separated",
            ) from None
    return tuple(networks)


def client_address(
    *,
    peer: str,
    x_forwarded_for: str | None,
    forwarded: str | None,
    trusted: Sequence[Network],
    header: Literal["either", "x-forwarded-for", "forwarded"] = "either",
) -> str:
    """The client's address as a normalised string (IPv6 compressed, IPv4-mapped unwrapped, no port).

    ``peer`` is the TCP peer; headers are ignored unless it is inside one of
    ``trusted``.  Malformed header values never raise: the walk stops at the
    last trusted hop, which is returned.
    """
    peer_ip = parse_address(peer)
    if peer_ip is None:
        return peer.strip()
    if not _is_trusted(peer_ip, trusted):
        return str(peer_ip)
    hops = _hops(x_forwarded_for, forwarded, header)
    current = peer_ip
    for raw in reversed(hops):
        hop = parse_address(raw)
        if hop is None:
            return str(current)
        if not _is_trusted(hop, trusted):
            return str(hop)
        current = hop
    return str(current)


def parse_address(value: str) -> Address | None:
    """An address from ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:443``, ``"[::1]"`` or ``::1``; None if malformed."""
    text = value.strip().strip('"').strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            return None
        text = text[1:close]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def _hops(x_forwarded_for: str | None, forwarded: str | None, header: str) -> list[str]:
    if header != "forwarded" and x_forwarded_for:
        return x_forwarded_for.split(",")  # an empty element is malformed, not skipped
    if header != "x-forwarded-for" and forwarded:
        return _forwarded_for(forwarded)
    return []


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` values of an RFC 7239 header, in order; an element without one counts as malformed."""
    hops: list[str] = []
    for element in value.split(","):
        if not element.strip():
            continue
        match = _FOR_PARAM.search(element.strip())
        hops.append(match.group(1).replace('\\"', '"') if match else "")
    return hops


__all__ = ["client_address", "parse_address", "parse_trusted_proxies"]
