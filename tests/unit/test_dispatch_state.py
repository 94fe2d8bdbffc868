"""The dispatcher's bookkeeping: offsets to commit, the dedupe window, per-host limits."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from streams.core.clock import FakeClock
from streams.core.ratelimit import TokenBucket
from streams.dispatching.dedupe import RecentFireIds, Verdict
from streams.dispatching.limits import SWEEP_AT, HostLimits
from streams.dispatching.progress import PartitionProgress


def test_commit_never_passes_an_unfinished_record() -> None:
    progress: PartitionProgress[str] = PartitionProgress()
    for offset in (10, 11, 12, 13):
        progress.take(offset)
    progress.finish(11, "b")
    progress.finish(12, "c")
    assert progress.release() is None, "10 is still running"
    progress.finish(10, "a")
    released = progress.release()
    assert released is not None
    assert (released.outputs, released.next_offset) == (["a", "b", "c"], 13)
    assert progress.release() is None
    progress.finish(13, "d")
    released = progress.release()
    assert released is not None
    assert released.next_offset == 14
    assert progress.held == 0


def test_offsets_are_taken_in_order_and_finished_once() -> None:
    progress: PartitionProgress[str] = PartitionProgress()
    progress.take(5)
    with pytest.raises(ValueError, match="taken after"):
        progress.take(5)
    progress.finish(5, "x")
    with pytest.raises(KeyError):
        progress.finish(5, "x")


def test_recent_fire_ids_answer_locally_inside_the_window() -> None:
    recent = RecentFireIds(1_000, {"t:1500:1": (1_500, 7)})
    assert recent.check("t:1500:1", 1_500) is Verdict.RECORDED
    assert recent.recorded_offset("t:1500:1") == 7
    assert recent.check("t:2000:1", 2_000) is Verdict.FRESH
    assert recent.check("t:500:2", 500) is Verdict.ASK_STORE
    recent.add("t:2000:1", 2_000, 9)
    assert recent.check("t:2000:1", 2_000) is Verdict.RECORDED
    recent.prune(1_800)
    assert recent.check("t:1500:1", 1_500) is Verdict.ASK_STORE
    assert len(recent) == 1


def test_token_bucket_spaces_calls_after_a_burst() -> None:
    bucket = TokenBucket(rate=10, burst=2, now_s=0.0)
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(0.1)
    assert bucket.reserve(0.0) == pytest.approx(0.2)
    assert bucket.reserve(1.0) == 0.0  # refilled (to the burst only)
    assert bucket.reserve(1.0) == 0.0
    assert bucket.reserve(1.0) == pytest.approx(0.1)


async def test_host_limits_bound_calls_per_host_not_across_hosts() -> None:
    limits = HostLimits(concurrency=2, rate_per_s=0, clock=FakeClock())
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    release = asyncio.Event()

    async def call(host: str) -> None:
        async with limits.slot(host):
            running[host] += 1
            peak[host] = max(peak[host], running[host])
            await release.wait()
            running[host] -= 1

    calls = [asyncio.create_task(call(h)) for h in ["a"] * 5 + ["b"] * 2]
    for _ in range(5):
        await asyncio.sleep(0)  # let every call start or queue
    assert dict(running) == {"a": 2, "b": 2}
    release.set()
    await asyncio.gather(*calls)
    assert dict(peak) == {"a": 2, "b": 2}


def test_outcomes_are_checked_for_a_race_only_just_after_an_assignment() -> None:
    """The history store reads back (Cassandra) only while a previous owner of the
    partition may still be recording; afterwards one write is enough."""
    from streams.core.attempts import DueRecord
    from streams.core.events import DueTask
    from streams.dispatching.outputs import (
        CONTENTION_WINDOW_MS,
        Finished,
        PartitionState,
        Taken,
        contended,
    )

    def finished(assigned_at_ms: int) -> Finished:
        state = PartitionState(assigned_at_ms=assigned_at_ms)
        due = DueTask.__new__(DueTask)  # only the partition state matters here
        taken = Taken(due, DueRecord("tasks.due", 0, 0, None, None), state)
        return Finished(taken, None)  # type: ignore[arg-type]

    assigned = 1_000_000
    assert contended([finished(assigned)], assigned + 5)
    assert not contended([finished(assigned)], assigned + CONTENTION_WINDOW_MS)
    old, fresh = finished(0), finished(assigned)
    assert contended([old, fresh], assigned + 5), "one fresh partition in the batch is enough"
    assert not contended([], assigned)


async def test_host_limits_keep_state_only_for_hosts_in_use() -> None:
    """Per-host state is bounded by the hosts in use, not by every host ever called."""
    limits = HostLimits(concurrency=2, rate_per_s=0, clock=FakeClock())
    for i in range(5_000):
        async with limits.slot(f"host-{i}.example"):
            assert len(limits) == 1
    assert len(limits) == 0


async def test_a_rate_limited_host_is_remembered_until_its_bucket_refills() -> None:
    clock = FakeClock()
    limits = HostLimits(concurrency=2, rate_per_s=1, clock=clock)
    async with limits.slot("a"):
        pass
    assert len(limits) == 1, "forgetting it now would reset its rate"
    clock.advance(1_000)
    for i in range(SWEEP_AT):  # new hosts trigger a sweep, which drops refilled entries
        async with limits.slot(f"h{i}"):
            pass
        clock.advance(1_000)
    assert len(limits) <= SWEEP_AT
    assert "a" not in limits._hosts
