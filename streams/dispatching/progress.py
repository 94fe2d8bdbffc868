"""Per-partition progress: which consumed offsets are finished, and what to commit.

Targets finish out of order, but a partition's committed offset must never pass
an unfinished record. Outputs of a finished record are held here until every
record before it has finished too; then the contiguous prefix is released with
the offset to commit, and both go into one Kafka transaction. That keeps
"outputs on the topics" and "offset committed" the same set of records, which
is what makes re-emitting a recorded outcome after a crash exactly-once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Released(Generic[T]):
    outputs: list[T]  # in offset order
    next_offset: int  # what to commit: the first offset not yet finished


class PartitionProgress(Generic[T]):
    def __init__(self) -> None:
        self._order: deque[int] = deque()
        self._finished: dict[int, T] = {}
        self._open: set[int] = set()

    def take(self, offset: int) -> None:
        if self._order and offset <= self._order[-1]:
            raise ValueError(f"offset {offset} taken after {self._order[-1]}")
        self._order.append(offset)
        self._open.add(offset)

    def finish(self, offset: int, outputs: T) -> None:
        if offset not in self._open:
            raise KeyError(f"offset {offset} was not taken, or already finished")
        self._open.discard(offset)
        self._finished[offset] = outputs

    def release(self) -> Released[T] | None:
        """Pop the finished prefix; None when the first taken record is still open."""
        outputs: list[T] = []
        last: int | None = None
        while self._order and self._order[0] in self._finished:
            last = self._order.popleft()
            outputs.append(self._finished.pop(last))
        if last is None:
            return None
        return Released(outputs, last + 1)

    @property
    def unfinished(self) -> int:
        return len(self._open)

    @property
    def held(self) -> int:
        """Records taken but not yet released (finished or not)."""
        return len(self._order)
