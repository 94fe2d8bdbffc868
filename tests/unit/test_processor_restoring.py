"""A partition assigned to a processor that owns others is restored a slice per step:
the others keep firing meanwhile, its own commands wait until it is restored, and a
revoke in the middle leaves nothing of the restore behind."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.core.clock import FakeClock
from streams.kafka.topics import COMMANDS, DEAD, DUE, STATE
from streams.wheel.processor import state_dir
from streams.wheel.statestore import PartitionStore
from tests.support.memlog import MemKafka, MemLog
from tests.unit.test_processor_loop import (
    GROUP,
    PARTITIONS,
    create,
    due_fire_ids,
    fired_tasks,
    processor,
    settings,
)

SLICE = 3  # changelog records per slice, so a handful of tasks take several steps


@pytest.fixture
def log() -> MemLog:
    log = MemLog()
    for name in (COMMANDS, STATE, DUE):
        log.create_topic(f"t.{name}", PARTITIONS)
    log.create_topic(f"t.{DEAD}", 1)
    return log


def create_on(log: MemLog, partition: int, prefix: str, at_ms: int, count: int) -> list[str]:
    """CREATE commands for ``count`` tasks that land on ``partition``."""
    made: list[str] = []
    n = 0
    while len(made) < count:
        task_id = f"{prefix}-{n}"
        n += 1
        if log.partition_for(f"t.{COMMANDS}", task_id.encode()) == partition:
            assert create(log, task_id, at_ms) == partition
            made.append(task_id)
    return made


def partition_one_with_a_changelog(log: MemLog, clock: FakeClock, tmp_path: Path) -> list[str]:
    """Tasks on partition 1, far ahead, written to its changelog by another processor."""
    tasks = create_on(log, 1, "far", clock.now_ms() + 3_600_000, 12)
    other, _ = processor(log, clock, tmp_path / "other", "other", owns=[1])
    other.run_once()
    other.close()
    assert len(log.read(f"t.{STATE}", 1)) == len(tasks)
    return tasks


def committed_fire_ids_while_reading(kafka: MemKafka, log: MemLog) -> list[int]:
    """Make partition 1's changelog reads note, at each record, how many due events
    were committed by then."""
    seen: list[int] = []
    read = kafka.read_changelog

    def spied(partition: int, start: int | None = None) -> Iterator[object]:
        for message in read(partition, start):
            if partition == 1:
                seen.append(len(log.records(f"t.{DUE}")))
            yield message

    kafka.read_changelog = spied  # type: ignore[method-assign,assignment]
    return seen


def test_a_partition_being_restored_does_not_stall_the_others(log: MemLog, tmp_path: Path) -> None:
    clock = FakeClock()
    far = partition_one_with_a_changelog(log, clock, tmp_path)
    proc, kafka = processor(log, clock, tmp_path / "a", "a", owns=[0])
    proc.restore_slice_records = SLICE
    seen = committed_fire_ids_while_reading(kafka, log)
    proc.run_once()  # owns 0
    committed = log.committed(GROUP, f"t.{COMMANDS}", 1)
    kafka.assign([1])
    waiting = create_on(log, 1, "waiting", clock.now_ms(), 2)  # due at once, on 1
    fired_on_0: list[str] = []
    for step in range(8):
        (task,) = create_on(log, 0, f"step{step}", clock.now_ms(), 1)
        proc.run_once()  # reads the create and fires it, whatever 1 is doing
        assert task in fired_tasks(log), f"partition 0 did not fire in step {step}"
        fired_on_0.append(task)
        if 1 in proc.partitions:
            break
        # Partition 1 restoring: none of its commands read, nothing committed for it.
        assert kafka.positions_[1] == committed
        assert log.committed(GROUP, f"t.{COMMANDS}", 1) == committed
        assert not set(waiting) & fired_tasks(log)
        clock.advance(100)
    assert seen[0] < seen[-1], "partition 0 fired nothing while 1 was read: it was stalled"
    assert 1 in proc.partitions
    assert len(proc.partitions[1].store) == len(far)
    proc.run_once()  # partition 1 resumed from its committed offset: its commands now
    proc.run_once()
    fired = due_fire_ids(log)
    assert fired_tasks(log) == set(fired_on_0) | set(waiting)
    assert all(n == 1 for n in fired.values()), fired
    proc.close()


def test_a_revoke_mid_restore_leaves_nothing_behind(log: MemLog, tmp_path: Path) -> None:
    clock = FakeClock()
    far = partition_one_with_a_changelog(log, clock, tmp_path)
    proc, kafka = processor(log, clock, tmp_path / "a", "a", owns=[0])
    proc.restore_slice_records = SLICE
    proc.run_once()
    committed = log.committed(GROUP, f"t.{COMMANDS}", 1)
    kafka.assign([1])
    waiting = create_on(log, 1, "waiting", clock.now_ms(), 2)
    proc.run_once()  # assigned: one slice of 1 restored
    proc.run_once()  # another slice
    assert 1 not in proc.partitions, "the test needs the restore unfinished"
    before = {name: len(log.records(f"t.{name}")) for name in (STATE, DUE, DEAD)}
    kafka.revoke([1])
    proc.run_once()
    proc.run_once()
    assert sorted(proc.partitions) == [0]
    assert {name: len(log.records(f"t.{name}")) for name in (STATE, DUE, DEAD)} == before
    assert log.committed(GROUP, f"t.{COMMANDS}", 1) == committed
    assert kafka.paused_partitions == set()
    # No half-built file: the lock is free and the next restore starts from nothing.
    path = state_dir(settings(tmp_path / "a", "a").data_dir, "a") / f"t.{STATE}-1.sqlite3"
    assert not path.exists()
    store = PartitionStore(path)
    assert len(store) == 0
    assert store.resume_from(0, 100, clock.now_ms()) is None
    store.close()

    kafka.assign([1])  # back: restored from the start, then its commands, each once
    for _ in range(10):
        proc.run_once()
    assert len(proc.partitions[1].store) >= len(far)
    assert fired_tasks(log) == set(waiting)
    assert Counter(due_fire_ids(log).values()) == Counter({1: len(waiting)})
    proc.close()


def test_a_revoke_mid_catch_up_keeps_the_store_as_it_was(log: MemLog, tmp_path: Path) -> None:
    clock = FakeClock()
    partition_one_with_a_changelog(log, clock, tmp_path)
    proc, kafka = processor(log, clock, tmp_path / "a", "a", owns=[0, 1])
    proc.run_once()  # both restored at once (nothing owned before)
    kafka.revoke([1], after_fetch=False)
    proc.run_once()  # the store of 1 records the changelog's end
    checkpoint = proc_store_checkpoint(tmp_path, clock)
    create_on(log, 1, "more", clock.now_ms() + 3_600_000, 12)
    other, _ = processor(log, clock, tmp_path / "other", "other", owns=[1])
    other.run_once()  # 12 more changelog records on 1, written by its new owner
    other.close()
    proc.restore_slice_records = SLICE
    kafka.assign([1])
    proc.run_once()  # catching up: one slice applied, uncommitted
    kafka.revoke([1])
    proc.run_once()
    assert proc_store_checkpoint(tmp_path, clock) == checkpoint
    proc.close()


def proc_store_checkpoint(tmp_path: Path, clock: FakeClock) -> tuple[int | None, int]:
    path = state_dir(settings(tmp_path / "a", "a").data_dir, "a") / f"t.{STATE}-1.sqlite3"
    store = PartitionStore(path)
    try:
        return store.resume_from(0, 10_000, clock.now_ms()), len(store)
    finally:
        store.close(remove=False)


def test_a_processor_that_owns_nothing_restores_its_assignment_at_once(
    log: MemLog, tmp_path: Path
) -> None:
    clock = FakeClock()
    partition_one_with_a_changelog(log, clock, tmp_path)
    proc, kafka = processor(log, clock, tmp_path / "a", "a", owns=[0, 1])
    proc.restore_slice_records = SLICE
    proc.run_once()
    assert sorted(proc.partitions) == [0, 1]
    assert kafka.paused_partitions == set()
    proc.close()


def test_a_rebuilds_checkpoint_beyond_a_short_high_watermark_is_checked_and_reused(
    log: MemLog, tmp_path: Path
) -> None:
    """The dev broker reports a changelog's high up to one batch short of its end. A
    store whose checkpoint is a rebuild's true end (no step recorded a shorter one
    since) is reused once reading shows the changelog does reach it."""
    clock = FakeClock()
    far = partition_one_with_a_changelog(log, clock, tmp_path)
    first, kafka = processor(log, clock, tmp_path / "a", "a", owns=[0, 1])
    kafka.changelog_high_short_by = 5
    first.run_once()  # rebuilt from the start; its checkpoint is the changelog's end
    assert kafka.changelog_reads == [(0, None), (1, None)]
    for wheel in first.partitions.values():  # killed before any step
        wheel.close(remove_store=False)
    second, kafka2 = processor(log, clock, tmp_path / "a", "a", owns=[0, 1])
    kafka2.changelog_high_short_by = 5
    second.run_once()
    assert sorted(kafka2.changelog_reads) == [(0, 0), (1, len(far))]
    assert len(second.partitions[1].store) == len(far)
    second.close()
