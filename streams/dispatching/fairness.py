"""Fair admission of firings to the dispatcher's concurrency (issue 12).

Two rules keep one tenant's slow or failing targets from delaying another's:

* **A busy host holds nothing shared.** A firing first waits for a slot of its
  target host (keyed by the resolved address and port, so many names of one
  server share its limit), and only then takes one of the dispatcher's
  slots. Before, it took the dispatcher slot first and then waited for the
  host, so 224 of 256 slots could sit idle behind one slow host.
* **Per-tenant shares.** A tenant holds at most ``share`` of the dispatcher's
  slots; when slots are scarce, freed slots go to waiting tenants in turn
  (round robin), not in arrival order.

The bound (docs/dispatch.md): while fewer than ``1/share`` tenants are
saturated, a tenant below its share never waits for a dispatcher slot; in any
case a waiting tenant gets one of the next ``T`` freed slots, T being the
number of tenants waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import yarl

from streams.core.netguard import host_of, literal_address

DEFAULT_TENANT_SHARE = 0.5


class FairSlots:
    """``capacity`` slots; a tenant holds at most its share; waiters served round robin."""

    def __init__(self, capacity: int, share: float = DEFAULT_TENANT_SHARE) -> None:
        self.capacity = capacity
        self.per_tenant = max(1, int(capacity * share))
        self.in_use = 0
        self._held: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str] = deque()  # tenants with waiters, in serving order

    def held(self, tenant: str) -> int:
        return self._held.get(tenant, 0)

    @asynccontextmanager
    async def slot(self, tenant: str) -> AsyncIterator[None]:
        await self._acquire(tenant)
        try:
            yield
        finally:
            self._release(tenant)

    async def _acquire(self, tenant: str) -> None:
        if not self._turns and self.in_use < self.capacity and self.held(tenant) < self.per_tenant:
            # Nobody waits and a slot is free for it: take it without queueing a
            # future (the common case; it cost about 10 us a call).
            self._take(tenant)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(tenant, deque())
        if not queue:
            self._turns.append(tenant)
        queue.append(waiter)
        # Served in turn with the others waiting; at once if a slot is free for it
        # (a tenant at its share does not hold up one below it).
        self._grant()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(tenant)  # granted as we were cancelled: hand it on
            else:
                self._forget(tenant, waiter)
            raise

    def _take(self, tenant: str) -> None:
        self.in_use += 1
        self._held[tenant] = self.held(tenant) + 1

    def _release(self, tenant: str) -> None:
        self.in_use -= 1
        left = self.held(tenant) - 1
        if left:
            self._held[tenant] = left
        else:
            self._held.pop(tenant, None)
        self._grant()

    def _grant(self) -> None:
        """Hand free slots to waiting tenants in turn, skipping those at their share."""
        for _ in range(len(self._turns)):
            if self.in_use >= self.capacity:
                return
            tenant = self._turns.popleft()
            queue = self._waiting[tenant]
            while queue and queue[0].done():  # cancelled, not yet forgotten by its task
                queue.popleft()
            if queue and self.held(tenant) < self.per_tenant:
                self._take(tenant)
                queue.popleft().set_result(None)
            if queue:
                self._turns.append(tenant)
            else:
                del self._waiting[tenant]

    def _forget(self, tenant: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(tenant)
        if queue is None:
            return
        if waiter in queue:
            queue.remove(waiter)
        if not queue:
            del self._waiting[tenant]
            if tenant in self._turns:
                self._turns.remove(tenant)


Resolve = Callable[[str, int], Awaitable[list[str]]]


async def host_key(url: str | yarl.URL, resolve: Resolve | None) -> str:
    """The per-host limit's key of a URL: resolved address and port.

    An IP literal is its own address (after the IDNA mapping the HTTP client
    applies); a name is resolved (cached by the caller's resolver) so that many
    names of one server share one limit. A name that does not resolve keeps
    its name: the call will fail at connect time anyway.
    """
    parsed = url if isinstance(url, yarl.URL) else yarl.URL(url)
    host = host_of(parsed)
    port = parsed.port or 0
    if literal_address(host) is not None:
        return f"{host}:{port}"
    if resolve is None:
        return f"{host}:{port}"
    try:
        addresses = await resolve(host, port)
    except OSError:
        return f"{host}:{port}"
    return f"{min(addresses)}:{port}" if addresses else f"{host}:{port}"


class CachedResolve:
    """Addresses of a name for the per-host key, cached briefly (as the connector caches)."""

    def __init__(
        self,
        lookup: Callable[[str, int], Awaitable[list[str]]],
        ttl_s: float = 10.0,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._monotonic = monotonic or (lambda: asyncio.get_running_loop().time())
        self._known: dict[tuple[str, int], tuple[list[str], float]] = {}

    async def __call__(self, host: str, port: int) -> list[str]:
        now = self._monotonic()
        known = self._known.get((host, port))
        if known is not None and known[1] > now:
            return known[0]
        addresses = await self._lookup(host, port)
        if len(self._known) > 10_000:  # bounded: a flood of names must not grow it forever
            self._known.clear()
        self._known[(host, port)] = (addresses, now + self._ttl_s)
        return addresses


def address_lookup() -> CachedResolve:
    """The system resolver (the same one the guarded connector asks), cached."""
    resolver = aiohttp.ThreadedResolver()

    async def lookup(host: str, port: int) -> list[str]:
        return [answer["host"] for answer in await resolver.resolve(host, port)]

    return CachedResolve(lookup)
