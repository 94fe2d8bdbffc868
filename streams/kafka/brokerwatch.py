"""Whether a client is connected to a broker now, from librdkafka's statistics.

A role's /readyz must say "not ready" when its broker is gone: a consumer
that polls happily with no broker behind it looks alive to every other
check. librdkafka reports each broker connection's state in its statistics
(``statistics.interval.ms``); the client counts as connected when at least
one real broker (a node id, not the bootstrap placeholder) is ``UP`` in the
latest report, and that report is recent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

STATS_INTERVAL_MS = 1_000
# Statistics come from poll(); a loop stuck elsewhere stops them: after this
# many missed intervals the last report no longer counts.
STALE_AFTER_INTERVALS = 5


class BrokerWatch:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._up = False
        self._reported_at: float | None = None

    def config(self) -> dict[str, Any]:
        """Client settings that feed this watch (merge into a consumer's config)."""
        return {"statistics.interval.ms": STATS_INTERVAL_MS, "stats_cb": self.on_stats}

    def on_stats(self, stats_json: str) -> None:
        try:
            stats = json.loads(stats_json)
            brokers = stats.get("brokers", {}).values()
            up = any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers)
        except (ValueError, AttributeError, TypeError):
            up = False
        with self._lock:
            self._up = up
            self._reported_at = self._monotonic()

    def connected(self) -> bool:
        with self._lock:
            if self._reported_at is None:
                return False
            age_s = self._monotonic() - self._reported_at
            return self._up and age_s < STALE_AFTER_INTERVALS * STATS_INTERVAL_MS / 1000
