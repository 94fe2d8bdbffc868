"""Which target addresses a dispatcher refuses (SSRF guard), as a pure decision.

Refused unless allowlisted: loopback, private, link-local (which includes the
cloud metadata address 169.254.169.254), multicast, unspecified and reserved
ranges, and IPv6 unique-local. The allowlist holds CIDRs or host names.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property, lru_cache

import yarl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Allowlist:
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> Allowlist:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    # The dispatcher's remembered verdicts (guard.literal_refusal) are keyed by the
    # allowlist, asked before every call: hashing its networks each time cost about
    # 0.4 us per entry, so the hash is computed once (the fields never change).
    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.networks, self.hosts))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def refusal_reason(address: IPAddress) -> str | None:
    """Why this address is not a public unicast address, or None if it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (includes cloud metadata)"),
        (address.is_private, "private"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (address.is_reserved, "reserved"),
    )
    for refused, label in checks:
        if refused:
            return f"{address} is a {label} address"
    return None


def check_target(host: str, addresses: list[IPAddress], allowlist: Allowlist) -> str | None:
    """None when every resolved address may be called, else the reason to refuse."""
    if allowlist.allows_host(host):
        return None
    if not addresses:
        return f"{host} did not resolve"
    for address in addresses:
        reason = refusal_reason(address)
        if reason and not allowlist.allows_address(address):
            return f"target {host} refused: {reason} (allow it with KRONWHEEL_TARGET_ALLOWLIST)"
    return None


def canonical_host(url: str) -> str:
    """The host exactly as the HTTP client (aiohttp, via yarl) will use it.

    yarl applies IDNA / UTS-46 mapping, so 127.0.0.1 written in full-width
    digits, or with ideographic full stops (U+3002), becomes ``127.0.0.1``:
    an IP literal the client connects to without asking a resolver. Every
    decision about where a URL goes is made on this string.
    Raises ValueError for a URL yarl cannot parse.
    """
    return host_of(yarl.URL(url))


def host_of(parsed: yarl.URL) -> str:
    """:func:`canonical_host` of a URL parsed already (one parse, one answer)."""
    return (parsed.raw_host or "").lower()


# Asked for every create and before every call (a dispatcher's per-host key):
# parsing was 2 % of a dispatcher's time. A pure function of the host, and its
# answers are immutable, so they are kept (bounded).
@lru_cache(maxsize=4096)
def literal_address(host: str) -> IPAddress | None:
    """The address a canonical host stands for without DNS, or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
