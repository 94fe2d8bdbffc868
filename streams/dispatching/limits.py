"""Per-host limits on target calls: how many at once, and how many per second.

The state per host (a semaphore, a token bucket) lives only while it matters:
an entry goes when nobody holds or waits for its slots and its bucket has
refilled (a fresh entry would behave the same), so a dispatcher that has called
a million distinct hosts over its life keeps state for the ones in use now,
not for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from streams.core.clock import Clock
from streams.core.ratelimit import TokenBucket

# Entries whose buckets were still refilling when their last call ended are
# swept once this many more hosts are known, and again each time that doubles.
SWEEP_AT = 1_024


@dataclass
class _Host:
    slots: asyncio.Semaphore
    bucket: TokenBucket | None
    users: int = 0  # holding or waiting for a slot


class HostLimits:
    def __init__(self, concurrency: int, rate_per_s: int, clock: Clock) -> None:
        self._concurrency = concurrency
        self._rate = rate_per_s
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._sweep_at = SWEEP_AT

    def __len__(self) -> int:
        """Hosts with state now (bounded by the hosts in use, plus refilling buckets)."""
        return len(self._hosts)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots, after its rate allows one more call."""
        entry = self._hosts.get(host)
        if entry is None:
            entry = self._hosts[host] = self._new_entry()
        entry.users += 1
        try:
            async with entry.slots:
                if entry.bucket is not None:
                    wait_s = entry.bucket.reserve(self._clock.monotonic())
                    if wait_s > 0:
                        await asyncio.sleep(wait_s)
                yield
        finally:
            entry.users -= 1
            self._forget_if_idle(host, entry)

    def _new_entry(self) -> _Host:
        if len(self._hosts) >= self._sweep_at:
            self._sweep()
        bucket = (
            TokenBucket(self._rate, self._rate, self._clock.monotonic()) if self._rate > 0 else None
        )
        return _Host(asyncio.Semaphore(self._concurrency), bucket)

    def _forget_if_idle(self, host: str, entry: _Host) -> None:
        idle = entry.users == 0 and self._hosts.get(host) is entry
        if idle and (entry.bucket is None or entry.bucket.is_full(self._clock.monotonic())):
            del self._hosts[host]

    def _sweep(self) -> None:
        for host, entry in list(self._hosts.items()):
            self._forget_if_idle(host, entry)
        self._sweep_at = max(SWEEP_AT, 2 * len(self._hosts))
