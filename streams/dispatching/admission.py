"""Which fetched firing starts next: round robin over tenants, then over partitions.

A dispatcher that falls behind holds a backlog on several partitions. Started
in the order they were fetched, the firings of the partition fetched first all
went ahead of the others: in a 20,000-firing burst one dispatcher drained its
six partitions strictly one after another (issue 15). Here fetched firings
wait per tenant and partition, and each free place in the in-flight set goes
to the next tenant in turn that is below its share, and within that tenant to
its next partition in turn. Results still leave in offset order per partition
(streams.dispatching.progress): only the order in which calls start changes.

What is fetched is spread the same way: each partition pauses once it holds its
share of the read-ahead (:func:`partitions_to_pause`) and the others keep being
fetched. A pause of every partition at once let whichever partition was
fetched first fill the whole read-ahead.

The tenant level keeps issue 12's rule at this gate too: a tenant holds at
most ``share`` of the places, so one tenant's backlog (or slow host) never
fills the in-flight set while another tenant waits (fairness.py applies the
same share to the target calls themselves).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Set
from typing import Generic, TypeVar

from streams.dispatching.fairness import DEFAULT_TENANT_SHARE

T = TypeVar("T")


class Admission(Generic[T]):
    """``capacity`` places in flight; waiting items handed out round robin."""

    def __init__(self, capacity: int, share: float = DEFAULT_TENANT_SHARE) -> None:
        self.capacity = capacity
        self.per_tenant = max(1, int(capacity * share))
        self.in_flight = 0
        self.waiting = 0
        self._in_flight_by_tenant: dict[str, int] = {}
        self._queues: dict[str, dict[int, deque[T]]] = {}  # tenant -> partition -> items
        self._tenant_turns: deque[str] = deque()  # tenants with waiting items
        self._partition_turns: dict[str, deque[int]] = {}  # per tenant, partitions waiting

    def add(self, tenant: str, partition: int, item: T) -> None:
        by_partition = self._queues.get(tenant)
        if by_partition is None:
            by_partition = self._queues[tenant] = {}
            self._partition_turns[tenant] = deque()
            self._tenant_turns.append(tenant)
        queue = by_partition.get(partition)
        if queue is None:
            queue = by_partition[partition] = deque()
            self._partition_turns[tenant].append(partition)
        queue.append(item)
        self.waiting += 1

    def next(self) -> tuple[str, T] | None:
        """The next item to start, and its tenant (the caller calls :meth:`done` with
        it when the item finishes); None when nothing waits or no place is free."""
        if self.in_flight >= self.capacity:
            return None
        for _ in range(len(self._tenant_turns)):
            tenant = self._tenant_turns[0]
            if self._in_flight_by_tenant.get(tenant, 0) >= self.per_tenant:
                self._tenant_turns.rotate(-1)  # at its share: the next tenant's turn
                continue
            item = self._pop(tenant)
            self.in_flight += 1
            self._in_flight_by_tenant[tenant] = self._in_flight_by_tenant.get(tenant, 0) + 1
            return tenant, item
        return None

    def done(self, tenant: str) -> None:
        self.in_flight -= 1
        left = self._in_flight_by_tenant[tenant] - 1
        if left:
            self._in_flight_by_tenant[tenant] = left
        else:
            del self._in_flight_by_tenant[tenant]

    def _pop(self, tenant: str) -> T:
        partitions = self._partition_turns[tenant]
        partition = partitions.popleft()
        queue = self._queues[tenant][partition]
        item = queue.popleft()
        self.waiting -= 1
        if queue:
            partitions.append(partition)  # its next item waits for its next turn
        else:
            del self._queues[tenant][partition]
        if partitions:
            self._tenant_turns.rotate(-1)
        else:
            self._tenant_turns.popleft()
            del self._queues[tenant], self._partition_turns[tenant]
        return item


def partitions_to_pause(held: Mapping[int, int], paused: Set[int], read_ahead: int) -> set[int]:
    """The partitions to stop fetching: those holding (taken, not yet released) their
    share of ``read_ahead``; one paused stays paused until it is down to half of it,
    so a resume is not followed by a pause at once."""
    share = max(1, read_ahead // max(1, len(held)))
    return {p for p, n in held.items() if n >= (share // 2 + 1 if p in paused else share)}
