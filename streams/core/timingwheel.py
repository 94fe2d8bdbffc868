"""A hierarchical timing wheel: O(1) insert and cancel, any horizon, time passed in.

The idea is Kafka's ``TimingWheel`` (after Varghese and Lauck): a wheel is a
ring of buckets, each covering ``tick`` milliseconds; a timer goes into the
bucket that covers its due time. A timer too far out for one wheel goes into
an overflow wheel whose tick is the whole span of the wheel below it, and so
on up, created only when a timer needs it. When an upper bucket's time
comes, its timers are put in again and fall into the finer wheels below:
cascading. Nothing here reads a clock; ``advance(now_ms)`` is told the time.

Worked example, tick 1 ms and 4 buckets per wheel (the processor uses 64)::

    level 0: tick 1 ms,  span 4 ms    buckets [t, t+1) [t+1, t+2) ...
    level 1: tick 4 ms,  span 16 ms   buckets [t, t+4) [t+4, t+8) ...
    level 2: tick 16 ms, span 64 ms   buckets [t, t+16) ...

    At now = 100, add(a, due=102): 102 - 100 < 4, level 0, bucket [102, 103).
    add(b, due=109): 9 >= 4 but 109 - 100 < 16, level 1, bucket [108, 112).
    add(c, due=150): level 2 (span 64), bucket [144, 160).
    advance(102): bucket [102, 103) expires: a is due, returned.
    advance(108): bucket [108, 112) expires; b is put in again and, with
        now = 108, lands in level 0's bucket [109, 110).
    advance(109): returns b.   advance(144): c cascades to level 1, bucket
        [148, 152); advance(148): cascades to level 0 [150, 151); at 150: c.

So each timer is touched at most once per level on its way down, and only
non-empty buckets are kept: they sit in a heap ordered by expiry (Kafka's
DelayQueue), so an idle wheel costs nothing and ``next_expiry_ms`` says
how long the caller may sleep. Level-0 buckets expire at their last
millisecond and upper buckets at their first, so a timer never fires early
and, with a 1 ms tick, never late either.

Timers are keyed: adding a key that is already present moves its timer,
``cancel`` removes it in O(1) through an index of where each key lives.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class _Level:
    __slots__ = ("buckets", "tick_ms")

    def __init__(self, tick_ms: int) -> None:
        self.tick_ms = tick_ms
        # bucket start -> {key: due_ms}; only non-empty buckets exist.
        self.buckets: dict[int, dict[object, int]] = {}


class TimingWheel(Generic[K]):
    def __init__(self, start_ms: int, tick_ms: int = 1, wheel_size: int = 64) -> None:
        if tick_ms < 1 or wheel_size < 2:
            raise ValueError("tick_ms must be >= 1 and wheel_size >= 2")
        self._wheel_size = wheel_size
        self._levels: list[_Level] = [_Level(tick_ms)]
        self._now_ms = start_ms
        # (expiry_ms, level, bucket start): may hold stale entries for buckets
        # emptied by cancels; they are skipped when they come up.
        self._expiries: list[tuple[int, int, int]] = []
        self._where: dict[K, tuple[int, int]] = {}

    @property
    def now_ms(self) -> int:
        return self._now_ms

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def due_ms(self, key: K) -> int | None:
        where = self._where.get(key)
        if where is None:
            return None
        level, start = where
        return self._levels[level].buckets[start][key]

    def add(self, key: K, due_ms: int) -> bool:
        """Set ``key``'s timer to ``due_ms`` (moving it if present).

        Returns False, and keeps nothing, when the timer is already due
        (``due_ms <= now``): the caller runs it at once, as Kafka's wheel does.
        """
        self.cancel(key)
        return self._place(key, due_ms)

    def cancel(self, key: K) -> bool:
        where = self._where.pop(key, None)
        if where is None:
            return False
        level, start = where
        buckets = self._levels[level].buckets
        bucket = buckets[start]
        del bucket[key]
        if not bucket:
            del buckets[start]
        return True

    def next_expiry_ms(self) -> int | None:
        """When the next bucket needs attention (at or before its earliest timer)."""
        while self._expiries:
            expiry_ms, level, start = self._expiries[0]
            if start in self._levels[level].buckets:
                return expiry_ms
            heapq.heappop(self._expiries)
        return None

    def advance(self, now_ms: int) -> list[tuple[K, int]]:
        """Move the time to ``now_ms``; return every timer due by then, earliest first."""
        if now_ms > self._now_ms:
            self._now_ms = now_ms
        expired: list[tuple[K, int]] = []
        while self._expiries and self._expiries[0][0] <= self._now_ms:
            _, level, start = heapq.heappop(self._expiries)
            bucket = self._levels[level].buckets.pop(start, None)
            if bucket is None:
                continue
            for key, due_ms in bucket.items():
                typed_key: K = key  # type: ignore[assignment]
                del self._where[typed_key]
                if not self._place(typed_key, due_ms):
                    expired.append((typed_key, due_ms))
        expired.sort(key=lambda item: item[1])
        return expired

    def _place(self, key: K, due_ms: int) -> bool:
        if due_ms <= self._now_ms:
            return False
        # The lowest level whose bucket for due_ms is at most wheel_size buckets
        # ahead of the current one. On an upper level that bucket then always
        # starts after now, and when it expires its timers land lower down.
        index = 0
        while True:
            level = self._level(index)
            tick_ms = level.tick_ms
            if due_ms // tick_ms - self._now_ms // tick_ms <= self._wheel_size:
                break
            index += 1
        start = due_ms - due_ms % level.tick_ms
        bucket = level.buckets.get(start)
        if bucket is None:
            bucket = level.buckets[start] = {}
            expiry_ms = start + level.tick_ms - 1 if index == 0 else start
            heapq.heappush(self._expiries, (expiry_ms, index, start))
        bucket[key] = due_ms
        self._where[key] = (index, start)
        return True

    def _level(self, index: int) -> _Level:
        while index >= len(self._levels):  # overflow wheels are made on demand
            self._levels.append(_Level(self._levels[-1].tick_ms * self._wheel_size))
        return self._levels[index]
