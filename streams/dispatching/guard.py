"""The SSRF guard at connection time: check every resolved address, connect only to those.

A check done with one DNS lookup and a connection made after another lookup
can be steered by a rebinding host name (public on the first answer, private
on the second). Here the connector's resolver IS the check: it asks the real
resolver once, refuses the whole answer if any address is not allowed
(streams.core.netguard), and hands the connector exactly the checked
addresses. Host names that are IP literals never reach a resolver in aiohttp,
so :func:`literal_refusal` checks them before the request.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from streams.core.netguard import Allowlist, check_target, literal_address


class TargetRefused(OSError):
    """The target's address is not one the dispatcher may call."""


class GuardedResolver(AbstractResolver):
    def __init__(self, allowlist: Allowlist, upstream: AbstractResolver | None = None) -> None:
        self._allowlist = allowlist
        self._upstream = upstream if upstream is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._upstream.resolve(host, port, family)
        addresses = [ipaddress.ip_address(answer["host"]) for answer in answers]
        refusal = check_target(host, addresses, self._allowlist)
        if refusal:
            raise TargetRefused(refusal)
        return answers

    async def close(self) -> None:
        await self._upstream.close()


# Asked before every call: the verdict depends on the host and the allowlist only,
# and parsing the address and checking its ranges for every call was a tenth of
# the dispatcher's own CPU. Bounded, so a flood of distinct hosts cannot grow it.
REMEMBERED_VERDICTS = 4096


@lru_cache(maxsize=REMEMBERED_VERDICTS)
def literal_refusal(host: str, allowlist: Allowlist) -> str | None:
    """The refusal of an IP-literal host (``http://10.0.0.1/``), None for names."""
    address = literal_address(host)
    if address is None:
        return None
    return check_target(host, [address], allowlist)


def refusal_in(error: BaseException) -> TargetRefused | None:
    """The TargetRefused behind an aiohttp connection error, if that is what it was."""
    seen: Any = error
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None


def guarded_session(
    allowlist: Allowlist, limit: int, upstream: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """One pooled client session for every call a dispatcher makes (targets, notifications)."""
    connector = aiohttp.TCPConnector(
        limit=limit,
        resolver=GuardedResolver(allowlist, upstream),
        # Cached answers are checked answers; keep them briefly so a burst of calls
        # to one host costs one lookup.
        ttl_dns_cache=10,
    )
    # trust_env=False: a proxy from the environment would connect on our behalf
    # to addresses this guard never saw.
    return aiohttp.ClientSession(connector=connector, trust_env=False)
