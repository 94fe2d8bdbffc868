"""The local, cheap duplicate check: fire ids recorded for one partition recently.

Loaded from the history store when a partition is assigned, then kept up to
date by the dispatcher itself (it owns the partition). For a firing scheduled
inside the window the answer is exact without asking the store; older ones
(a late retry, a replay of old events) are asked of the store.

The window is kept in one bucket per minute of scheduled time, so moving the
window forward drops whole buckets: a dict of the last 15 minutes rebuilt on
the event loop stalled it for 0.2-0.45 s at 100,000 firings a minute. Each
entry is the fire id and one int (the due offset and the millisecond inside
the minute, packed), not a tuple of two ints: about 90 B less per fire id.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

BUCKET_MS = 60_000
_MS_BITS = 16  # the millisecond inside a bucket: 0..59,999 < 2**16
_MS_MASK = (1 << _MS_BITS) - 1


class Verdict(StrEnum):
    FRESH = "fresh"  # never recorded: run it
    RECORDED = "recorded"  # has an outcome: never run it again
    ASK_STORE = "ask_store"  # older than the window: the store knows


def _pack(scheduled_at_ms: int, offset: int | None) -> int:
    # offset + 1 so that "no offset" (0) and offset 0 (1) differ.
    return ((0 if offset is None else offset + 1) << _MS_BITS) | (scheduled_at_ms % BUCKET_MS)


def _offset(packed: int) -> int | None:
    stored = packed >> _MS_BITS
    return None if stored == 0 else stored - 1


class RecentFireIds:
    def __init__(self, floor_ms: int, recorded: Mapping[str, tuple[int, int | None]]) -> None:
        """``recorded`` maps fire id -> (scheduled_at_ms, due offset or None)."""
        self.floor_ms = floor_ms
        # minute of scheduled time -> fire id -> packed (offset, ms inside the minute)
        self._buckets: dict[int, dict[str, int]] = {}
        for fire_id, (scheduled_at_ms, offset) in recorded.items():
            self.add(fire_id, scheduled_at_ms, offset)

    def check(self, fire_id: str, scheduled_at_ms: int) -> Verdict:
        # Below the floor the set is no longer complete (pruning drops whole
        # minutes, later): only the store can tell.
        if scheduled_at_ms < self.floor_ms:
            return Verdict.ASK_STORE
        bucket = self._buckets.get(scheduled_at_ms // BUCKET_MS)
        # A fire id names its scheduled time, so it only ever sits in that minute.
        if bucket is not None and fire_id in bucket:
            return Verdict.RECORDED
        return Verdict.FRESH

    def recorded_offset(self, fire_id: str) -> int | None:
        for bucket in self._buckets.values():
            packed = bucket.get(fire_id)
            if packed is not None:
                return _offset(packed)
        return None

    def add(self, fire_id: str, scheduled_at_ms: int, offset: int | None) -> None:
        if scheduled_at_ms < self.floor_ms:
            return  # outside the window: check() asks the store, which has it
        minute = scheduled_at_ms // BUCKET_MS
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = {}
        bucket.setdefault(fire_id, _pack(scheduled_at_ms, offset))

    def prune(self, floor_ms: int) -> None:
        """Forget what is older than ``floor_ms`` (the window only moves forward):
        every minute that ends at or before it goes at once; no entry is visited."""
        if floor_ms <= self.floor_ms:
            return
        self.floor_ms = floor_ms
        for minute in [m for m in self._buckets if (m + 1) * BUCKET_MS <= floor_ms]:
            del self._buckets[minute]

    def __len__(self) -> int:
        """Fire ids inside the window (entries of the minute the floor cuts through
        that lie below it are kept until that minute goes, but not counted)."""
        floor_minute, floor_ms_in_minute = divmod(self.floor_ms, BUCKET_MS)
        count = 0
        for minute, bucket in self._buckets.items():
            if minute > floor_minute:
                count += len(bucket)
            elif minute == floor_minute:
                count += sum(1 for p in bucket.values() if p & _MS_MASK >= floor_ms_in_minute)
        return count
