"""The local, cheap duplicate check: fire ids recorded for one partition recently.

Loaded from the history store when a partition is assigned, then kept up to
date by the dispatcher itself (it owns the partition). For a firing scheduled
inside the window the answer is exact without asking the store; older ones
(a late retry, a replay of old events) are asked of the store.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    FRESH = "fresh"  # never recorded: run it
    RECORDED = "recorded"  # has an outcome: never run it again
    ASK_STORE = "ask_store"  # older than the window: the store knows


class RecentFireIds:
    def __init__(self, floor_ms: int, recorded: dict[str, tuple[int, int | None]]) -> None:
        """``recorded`` maps fire id -> (scheduled_at_ms, due offset or None)."""
        self.floor_ms = floor_ms
        self._recorded = dict(recorded)

    def check(self, fire_id: str, scheduled_at_ms: int) -> Verdict:
        if fire_id in self._recorded:
            return Verdict.RECORDED
        return Verdict.FRESH if scheduled_at_ms >= self.floor_ms else Verdict.ASK_STORE

    def recorded_offset(self, fire_id: str) -> int | None:
        entry = self._recorded.get(fire_id)
        return None if entry is None else entry[1]

    def add(self, fire_id: str, scheduled_at_ms: int, offset: int | None) -> None:
        self._recorded.setdefault(fire_id, (scheduled_at_ms, offset))

    def prune(self, floor_ms: int) -> None:
        """Forget what is older than ``floor_ms`` (the window only moves forward)."""
        if floor_ms <= self.floor_ms:
            return
        self.floor_ms = floor_ms
        self._recorded = {f: e for f, e in self._recorded.items() if e[0] >= floor_ms}

    def __len__(self) -> int:
        return len(self._recorded)
