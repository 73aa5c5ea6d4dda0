"""Who is on the other end: the client's address and whether it came over HTTPS, believing
X-Forwarded-For and X-Forwarded-Proto only from TRUSTED_PROXIES."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: list[str]) -> list[Network]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"TRUSTED_PROXIES: '{entry}' is not an address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return networks


def within(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


@dataclass(frozen=True)
class Peer:
    address: str  # the client's, past any trusted proxies
    https: bool
    via_trusted_proxy: bool


def peer(scope: Scope, headers: dict[bytes, bytes], trusted: list[Network]) -> Peer:
    direct = scope["client"][0] if scope.get("client") else ""
    https = scope.get("scheme") == "https"
    if not within(direct, trusted):
        return Peer(direct, https, False)
    # The rightmost address that is not one of our proxies is the client: what lies left of it
    # was written by the client itself.
    hops = [h.strip() for h in headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",") if h.strip()]
    address = direct
    for hop in reversed(hops):
        address = hop
        if not within(hop, trusted):
            break
    proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[0].strip().lower()
    return Peer(address, https or proto == "https", True)
