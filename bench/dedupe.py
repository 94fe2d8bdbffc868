"""The dispatcher's dedupe window: memory per fire id and the pruning stall, before/after.

    python -m bench.dedupe [--per-minute 100000] [--minutes 15]

"before" is the previous shape, kept here as the baseline: one dict of fire id
-> (scheduled ms, offset) rebuilt on every prune. "after" is
streams.dispatching.dedupe.RecentFireIds (minute buckets, one packed int per
entry). Both get the same fire ids (created once, so the strings' own bytes
are counted apart) and the same operations, in the same run:

* bytes per entry held by the structure (tracemalloc), without the strings;
* add and check rates;
* the prune that moves a full window forward by one minute: the time the
  event loop would stall.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Protocol

from bench.common import table
from streams.dispatching.dedupe import RecentFireIds, Verdict

MINUTE_MS = 60_000
BASE_MS = 1_800_000_000_000


class Window(Protocol):
    def check(self, fire_id: str, scheduled_at_ms: int) -> Verdict: ...

    def add(self, fire_id: str, scheduled_at_ms: int, offset: int | None) -> None: ...

    def prune(self, floor_ms: int) -> None: ...


class DictRecentFireIds:
    """The shape before minute buckets (the baseline)."""

    def __init__(self, floor_ms: int) -> None:
        self.floor_ms = floor_ms
        self._recorded: dict[str, tuple[int, int | None]] = {}

    def check(self, fire_id: str, scheduled_at_ms: int) -> Verdict:
        if fire_id in self._recorded:
            return Verdict.RECORDED
        return Verdict.FRESH if scheduled_at_ms >= self.floor_ms else Verdict.ASK_STORE

    def add(self, fire_id: str, scheduled_at_ms: int, offset: int | None) -> None:
        self._recorded.setdefault(fire_id, (scheduled_at_ms, offset))

    def prune(self, floor_ms: int) -> None:
        if floor_ms <= self.floor_ms:
            return
        self.floor_ms = floor_ms
        self._recorded = {f: e for f, e in self._recorded.items() if e[0] >= floor_ms}


def firings(per_minute: int, minutes: int) -> list[tuple[str, int]]:
    """(fire id, n): ids shaped like real ones, n-th firing of an even spread."""
    step = MINUTE_MS / per_minute
    return [(f"0f{n:030x}:{BASE_MS + int(n * step)}:1", n) for n in range(per_minute * minutes)]


def fill(window: Window, fires: list[tuple[str, int]], step: float) -> None:
    # The ints are made here, as the dispatcher's are per event: the window owns them.
    for fire_id, n in fires:
        window.add(fire_id, BASE_MS + int(n * step), 1_000_000 + n)


def measure(
    name: str, make: Callable[[], Window], fires: list[tuple[str, int]], step: float
) -> list[object]:
    gc.collect()
    tracemalloc.start()
    window = make()
    fill(window, fires, step)
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del window
    gc.collect()
    window = make()  # again, timed without tracemalloc
    started = time.perf_counter()
    fill(window, fires, step)
    add_s = time.perf_counter() - started
    started = time.perf_counter()
    for fire_id, n in fires:
        window.check(fire_id, BASE_MS + int(n * step))
    check_s = time.perf_counter() - started
    gc.collect()
    started = time.perf_counter()
    window.prune(BASE_MS + MINUTE_MS)  # the window moves on by one minute
    prune_ms = (time.perf_counter() - started) * 1000
    count = len(fires)
    return [name, held / count, count / add_s, count / check_s, prune_ms]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-minute", type=int, default=100_000)
    parser.add_argument("--minutes", type=int, default=15)
    args = parser.parse_args()
    fires = firings(args.per_minute, args.minutes)
    string_bytes = sum(sys.getsizeof(f) for f, _ in fires) / len(fires)
    step = MINUTE_MS / args.per_minute
    rows = [
        measure("before: one dict", lambda: DictRecentFireIds(BASE_MS), fires, step),
        measure("after: minute buckets", lambda: RecentFireIds(BASE_MS, {}), fires, step),
    ]
    print(
        f"{len(fires):,} fire ids ({args.per_minute:,}/min x {args.minutes} min); "
        f"the id strings themselves: {string_bytes:.0f} B each, not counted below"
    )
    print(
        table(
            ["window", "B/entry", "adds/s", "checks/s", "prune stall ms"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
