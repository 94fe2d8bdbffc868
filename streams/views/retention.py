"""The retention of what kronwheel keeps beside the topics: one setting for all.

``KRONWHEEL_HISTORY_TTL_S`` (0 = keep) is how long history rows, audit rows and
the read-model rows of ended tasks are kept. Cassandra applies it as a TTL on
every write; SQLite has none, so the API process purges it periodically.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from streams.core.clock import Clock

log = logging.getLogger(__name__)

# A purge deletes at most this far behind: cheap enough to run often, and the
# retention is a floor ("kept at least this long"), not an exact instant.
PURGE_EVERY_S = 600.0


class Purgeable(Protocol):
    def purge_expired(self, before_ms: int) -> int: ...


def purge_once(stores: list[Purgeable], now_ms: int, ttl_s: int) -> int:
    """Delete what is older than the retention from every store; 0 keeps everything."""
    if ttl_s <= 0:
        return 0
    return sum(store.purge_expired(now_ms - ttl_s * 1000) for store in stores)


async def keep_retention(stores: list[Purgeable], clock: Clock, ttl_s: int) -> None:
    """Purge every PURGE_EVERY_S until cancelled (a task of the API process)."""
    while ttl_s > 0:
        try:
            deleted = await asyncio.to_thread(purge_once, stores, clock.now_ms(), ttl_s)
            if deleted:
                log.info("retention: deleted %d rows older than %d s", deleted, ttl_s)
        except Exception:  # a failed purge is retried next time; reads go on
            log.exception("retention purge failed")
        await asyncio.sleep(PURGE_EVERY_S)
