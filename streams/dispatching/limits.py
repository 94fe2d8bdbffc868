"""Per-host limits on target calls: how many at once, and how many per second."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from streams.core.clock import Clock
from streams.core.ratelimit import TokenBucket


class HostLimits:
    def __init__(self, concurrency: int, rate_per_s: int, clock: Clock) -> None:
        self._concurrency = concurrency
        self._rate = rate_per_s
        self._clock = clock
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._buckets: dict[str, TokenBucket] = {}

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots, after its rate allows one more call."""
        semaphore = self._slots.setdefault(host, asyncio.Semaphore(self._concurrency))
        async with semaphore:
            if self._rate > 0:
                bucket = self._buckets.get(host)
                if bucket is None:
                    bucket = TokenBucket(self._rate, self._rate, self._clock.monotonic())
                    self._buckets[host] = bucket
                wait_s = bucket.reserve(self._clock.monotonic())
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
            yield
