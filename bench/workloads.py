"""The comparison's two workloads as plain data, and what a run of one delivered.

Both systems get the same plan: which tasks fall due when, and when each batch
of 1,000 is created (its first due time minus the lead). Pure functions, so
the kronwheel side, the APScheduler side and the unit tests compute it alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import percentile

BATCH = 1_000  # tasks per create call (the API's batch limit)


@dataclass(frozen=True)
class Workload:
    """``count`` one-time tasks from ``first_due_ms``, ``per_s`` apart per second
    (``per_s`` 0: all due at one instant), each created ``lead_ms`` ahead."""

    name: str
    count: int
    first_due_ms: int
    per_s: float
    lead_ms: int

    @property
    def path(self) -> str:
        return f"/{self.name}"

    def due_times(self) -> list[int]:
        if self.per_s <= 0:
            return [self.first_due_ms] * self.count
        return [self.first_due_ms + int(n * 1000 / self.per_s) for n in range(self.count)]

    @property
    def last_due_ms(self) -> int:
        return self.due_times()[-1] if self.count else self.first_due_ms

    def batches(self, size: int = BATCH) -> list[tuple[int, list[tuple[str, int]]]]:
        """(create at ms, [(task key, due ms)]) in creation order."""
        dues = self.due_times()
        out = []
        for start in range(0, len(dues), size):
            end = min(start + size, len(dues))
            chunk = [(f"{self.name}-{n}", dues[n]) for n in range(start, end)]
            out.append((chunk[0][1] - self.lead_ms, chunk))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "first_due_ms": self.first_due_ms,
            "per_s": self.per_s,
            "lead_ms": self.lead_ms,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Workload:
        return Workload(
            str(data["name"]),
            int(data["count"]),
            int(data["first_due_ms"]),
            float(data["per_s"]),
            int(data["lead_ms"]),
        )


@dataclass(frozen=True)
class Delivery:
    """One callback as the sink saw it, reduced to what the outcome needs."""

    key: str
    scheduled_ms: int
    received_ms: int


def outcome(deliveries: Iterable[Delivery], expected: int) -> dict[str, Any]:
    """Delivered once, doubled, lateness (first delivery per key) and drain time."""
    first: dict[str, Delivery] = {}
    total = 0
    for delivery in deliveries:
        total += 1
        known = first.get(delivery.key)
        if known is None or delivery.received_ms < known.received_ms:
            first[delivery.key] = delivery
    lateness = [float(d.received_ms - d.scheduled_ms) for d in first.values()]
    first_due = min((d.scheduled_ms for d in first.values()), default=0)
    last_received = max((d.received_ms for d in first.values()), default=first_due)
    return {
        "expected": expected,
        "delivered": len(first),
        "missing": expected - len(first),
        "doubled": total - len(first),
        "lateness_ms": lateness_summary(lateness),
        "drain_s": (last_received - first_due) / 1000,
        "_lateness": lateness,
        "_arrivals": sorted(d.received_ms for d in first.values()),
    }


def lateness_summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50),
        "p90": percentile(samples, 90),
        "p99": percentile(samples, 99),
        "max": max(samples, default=float("nan")),
    }
