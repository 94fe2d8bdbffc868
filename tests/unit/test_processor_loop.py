"""The real processor loop, driven in process through the in-memory log.

Every test asserts what reaches the committed topics (what a read_committed
reader would see): an aborted step leaves nothing, a revoked partition's
outputs come from its new owner only, a fenced commit ends the loop, and a
rewind brings the same fire ids out once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.core.clock import FakeClock
from streams.core.events import CommandKind, TaskCommand
from streams.core.model import AtSchedule, HttpTarget, TaskSpec
from streams.kafka.records import decode_due, encode_command
from streams.kafka.topics import COMMANDS, DEAD, DUE, STATE
from streams.kafka.transactions import FatalKafkaError
from streams.wheel.partition import WheelConfig
from streams.wheel.processor import MAX_POLL_WAIT_S, MIN_TIMER_WAIT_S, Processor
from tests.support.memlog import Fault, MemKafka, MemLog

PARTITIONS = 2
CONFIG = WheelConfig(horizon_ms=60_000, promote_step_ms=1_000, misfire_grace_ms=60_000)
GROUP = "processors"


def settings(tmp_path: Path, slot: str) -> Settings:
    return Settings(topic_prefix="t.", data_dir=tmp_path, slot=slot)


@pytest.fixture
def log() -> MemLog:
    log = MemLog()
    for name in (COMMANDS, STATE, DUE):
        log.create_topic(f"t.{name}", PARTITIONS)
    log.create_topic(f"t.{DEAD}", 1)
    return log


def processor(
    log: MemLog, clock: FakeClock, tmp_path: Path, slot: str, owns: list[int]
) -> tuple[Processor, MemKafka]:
    kafka = MemKafka(log, f"t.{COMMANDS}", GROUP, changelog_topic=f"t.{STATE}")
    proc = Processor(settings(tmp_path, slot), clock, CONFIG, kafka=kafka)
    proc.start()
    if owns:
        kafka.assign(owns)
    return proc, kafka


def create(log: MemLog, task_id: str, at_ms: int) -> int:
    """Write a CREATE command for a one-shot task; returns its partition."""
    command = TaskCommand(
        command_id=f"create-{task_id}",
        task_id=task_id,
        tenant="acme",
        kind=CommandKind.CREATE,
        issued_at_ms=at_ms,
        issuer="test",
        spec=TaskSpec(AtSchedule(at_ms), HttpTarget("https://example.com/hook")),
    )
    partition, _ = log.append(f"t.{COMMANDS}", task_id.encode(), encode_command(command))
    return partition


def due_fire_ids(log: MemLog) -> Counter[str]:
    return Counter(decode_due(m.value() or b"").fire_id for m in log.records(f"t.{DUE}"))


def fired_tasks(log: MemLog) -> set[str]:
    return {decode_due(m.value() or b"").task_id for m in log.records(f"t.{DUE}")}


def state_keys(log: MemLog) -> Counter[bytes]:
    return Counter(m.key() or b"" for m in log.records(f"t.{STATE}"))


def tasks_on_both_partitions(log: MemLog, at_ms: int, count: int = 6) -> dict[str, int]:
    tasks = {f"task-{i}": create(log, f"task-{i}", at_ms) for i in range(count)}
    assert set(tasks.values()) == set(range(PARTITIONS)), "the test needs both partitions used"
    return tasks


def test_an_abort_mid_step_leaves_nothing_and_the_rewind_fires_each_once(
    log: MemLog, tmp_path: Path
) -> None:
    clock = FakeClock()
    due_at = clock.now_ms() + 1_000
    tasks = tasks_on_both_partitions(log, due_at)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    proc.run_once()  # the creates: changelog records, committed with their offsets
    assert state_keys(log) == Counter(t.encode() for t in tasks)
    state_before = len(log.records(f"t.{STATE}"))

    late = {f"late-{i}": create(log, f"late-{i}", due_at) for i in range(4)}
    clock.advance(2_000)
    kafka.producer.fail("commit", Fault.ABORTABLE)
    proc.run_once()  # reads the late creates and fires every task: aborted

    assert kafka.producer.calls[-2:] == ["flush", "abort"]
    assert due_fire_ids(log) == Counter(), "nothing of the aborted step is visible"
    assert len(log.records(f"t.{STATE}")) == state_before
    for partition in range(PARTITIONS):  # rewound to what was committed
        assert kafka.positions([partition])[partition] == log.committed(
            GROUP, f"t.{COMMANDS}", partition
        )

    proc.run_once()  # re-reads the late creates, fires again: committed
    proc.run_once()  # nothing more
    fired = due_fire_ids(log)
    assert fired_tasks(log) == set(tasks) | set(late)
    assert all(n == 1 for n in fired.values()), fired
    proc.close()


def test_a_retriable_send_offsets_error_is_retried_then_aborted(
    log: MemLog, tmp_path: Path
) -> None:
    clock = FakeClock()
    tasks_on_both_partitions(log, clock.now_ms() + 1_000)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    kafka.producer.fail("send_offsets", Fault.RETRIABLE, times=1)
    proc.run_once()  # one retry is enough: committed
    assert proc.committed_transactions == 1
    assert "abort" not in kafka.producer.calls

    create(log, "more", clock.now_ms() + 1_000)
    kafka.producer.fail("send_offsets", Fault.RETRIABLE, times=3)
    proc.run_once()  # still failing after its retries: aborted and rewound, not fatal
    assert kafka.producer.calls.count("send_offsets") == 1 + 1 + 3
    assert kafka.producer.calls[-1] == "abort"
    assert b"more" not in state_keys(log)

    proc.run_once()
    assert state_keys(log)[b"more"] == 1
    proc.close()


def test_a_revoke_mid_step_leaves_the_partition_to_its_new_owner(
    log: MemLog, tmp_path: Path
) -> None:
    clock = FakeClock()
    due_at = clock.now_ms() + 1_000
    tasks = tasks_on_both_partitions(log, due_at)
    old, old_kafka = processor(log, clock, tmp_path / "a", "a", owns=[0, 1])
    old.run_once()  # the creates, committed
    on_1 = {t for t, p in tasks.items() if p == 1}

    more = {f"more-{i}": create(log, f"more-{i}", due_at) for i in range(6)}
    clock.advance(2_000)
    old_kafka.revoke([1])  # delivered inside the next poll, after its records are fetched
    old.run_once()
    assert sorted(old.partitions) == [0]
    written_by_old = fired_tasks(log)
    assert not written_by_old & (on_1 | {t for t, p in more.items() if p == 1}), (
        "the old owner wrote outputs of a partition it no longer owns"
    )
    assert log.committed(GROUP, f"t.{COMMANDS}", 1) == len(on_1), (
        "the revoked partition's offset moved past commands its old owner dropped"
    )

    new, _ = processor(log, clock, tmp_path / "b", "b", owns=[1])
    new.run_once()  # restores partition 1 from the changelog, reads the rest, fires
    new.run_once()
    fired = due_fire_ids(log)
    assert fired_tasks(log) == set(tasks) | set(more)
    assert all(n == 1 for n in fired.values()), fired
    old.close()
    new.close()


def test_a_lost_partition_is_dropped_without_writing(log: MemLog, tmp_path: Path) -> None:
    clock = FakeClock()
    tasks = tasks_on_both_partitions(log, clock.now_ms() + 1_000)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    proc.run_once()
    clock.advance(2_000)
    kafka.lose([0], after_fetch=False)
    proc.run_once()
    assert fired_tasks(log) == {t for t, p in tasks.items() if p == 1}
    proc.close()


def test_a_fenced_commit_ends_the_loop_and_writes_nothing_more(log: MemLog, tmp_path: Path) -> None:
    clock = FakeClock()
    tasks_on_both_partitions(log, clock.now_ms() + 1_000)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    proc.run_once()
    before = {name: len(log.records(f"t.{name}")) for name in (STATE, DUE, DEAD)}
    clock.advance(2_000)
    kafka.producer.fail("commit", Fault.FENCED)
    create(log, "after", clock.now_ms())
    with pytest.raises(FatalKafkaError):
        proc.run()  # the real loop: it leaves on the fatal error
    assert "abort" not in kafka.producer.calls, "a fenced producer must not abort either"
    assert {name: len(log.records(f"t.{name}")) for name in (STATE, DUE, DEAD)} == before


def test_a_commit_still_retriable_after_its_retries_is_fatal(log: MemLog, tmp_path: Path) -> None:
    clock = FakeClock()
    tasks_on_both_partitions(log, clock.now_ms() + 1_000)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    kafka.producer.fail("commit", Fault.RETRIABLE, times=3)
    with pytest.raises(FatalKafkaError):
        proc.run_once()
    assert kafka.producer.calls.count("commit") == 3
    assert state_keys(log) == Counter()


def test_a_rewind_goes_back_to_committed_and_the_same_outputs_come_out_once(
    log: MemLog, tmp_path: Path
) -> None:
    clock = FakeClock()
    due_at = clock.now_ms() + 1_000
    tasks = tasks_on_both_partitions(log, due_at)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    kafka.producer.fail("produce", Fault.ABORTABLE)
    proc.run_once()  # aborted: the consumer went back to offset 0
    assert kafka.positions([0, 1]) == {0: 0, 1: 0}
    assert state_keys(log) == Counter()
    proc.run_once()  # the same commands again
    assert state_keys(log) == Counter(t.encode() for t in tasks)
    clock.advance(2_000)
    proc.run_once()
    fired = due_fire_ids(log)
    assert fired_tasks(log) == set(tasks)
    assert len(fired) == len(tasks)
    assert all(n == 1 for n in fired.values())
    proc.close()


def test_a_revoke_and_reassign_in_one_poll_rereads_from_committed(
    log: MemLog, tmp_path: Path
) -> None:
    clock = FakeClock()
    due_at = clock.now_ms() + 1_000
    tasks = tasks_on_both_partitions(log, due_at)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    proc.run_once()
    more = {f"more-{i}": create(log, f"more-{i}", due_at) for i in range(6)}
    clock.advance(2_000)
    kafka.revoke([1])  # both inside the next poll, after its records were fetched:
    kafka.assign([1], after_fetch=True)  # the fetched records of 1 are dropped
    proc.run_once()
    assert sorted(proc.partitions) == [0, 1]
    proc.run_once()  # partition 1 restored from the changelog and read again
    proc.run_once()
    fired = due_fire_ids(log)
    assert fired_tasks(log) == set(tasks) | set(more)
    assert all(n == 1 for n in fired.values()), fired
    proc.close()


def test_a_restart_in_the_same_slot_reads_only_the_changelogs_tail(
    log: MemLog, tmp_path: Path
) -> None:
    clock = FakeClock()
    due_at = clock.now_ms() + 5_000
    tasks = tasks_on_both_partitions(log, due_at)
    first, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    first.run_once()  # the creates reach the changelog and the store
    first.close()  # a clean stop: the store records the changelog's end
    ends = {p: len(log.read(f"t.{STATE}", p)) for p in range(PARTITIONS)}
    assert kafka.changelog_reads == [(0, None), (1, None)]  # the first restore: everything

    later = {f"later-{i}": create(log, f"later-{i}", due_at) for i in range(4)}
    second, kafka2 = processor(log, clock, tmp_path, "a", owns=[0, 1])
    second.run_once()
    assert sorted(kafka2.changelog_reads) == [(p, ends[p]) for p in range(PARTITIONS)]
    # Steps record the changelog's end (before their own writes) every few seconds.
    clock.advance(5_000)
    recorded = {p: len(log.read(f"t.{STATE}", p)) for p in range(PARTITIONS)}
    create(log, "last", due_at)
    second.run_once()
    create(log, "after", due_at)
    second.run_once()
    # Killed (no revoke, no checkpoint; the OS closes its files and drops its
    # locks): the next process reads from the end the last checkpoint saw.
    for wheel in second.partitions.values():
        wheel.close(remove_store=False)
    third, kafka3 = processor(log, clock, tmp_path, "a", owns=[0, 1])
    third.run_once()
    assert sorted(kafka3.changelog_reads) == sorted(recorded.items())
    assert recorded != ends
    later.update(last=0, after=0)
    clock.advance(1_000)
    third.run_once()
    fired = due_fire_ids(log)
    assert fired_tasks(log) == set(tasks) | set(later)
    assert all(n == 1 for n in fired.values()), fired
    third.close()


def test_a_store_from_another_changelog_is_rebuilt(log: MemLog, tmp_path: Path) -> None:
    clock = FakeClock()
    tasks_on_both_partitions(log, clock.now_ms() + 60_000)
    first, _ = processor(log, clock, tmp_path, "a", owns=[0, 1])
    first.run_once()
    first.close()
    fresh = MemLog()  # the topics were recreated: shorter than the stores' offsets
    for name in (COMMANDS, STATE, DUE):
        fresh.create_topic(f"t.{name}", PARTITIONS)
    fresh.create_topic(f"t.{DEAD}", 1)
    second, kafka = processor(fresh, clock, tmp_path, "a", owns=[0, 1])
    second.run_once()
    assert sorted(kafka.changelog_reads) == [(0, None), (1, None)]
    assert all(len(wheel.store) == 0 for wheel in second.partitions.values())
    second.close()


def test_two_aborts_in_a_row_lose_nothing_the_first_rewind_fired(
    log: MemLog, tmp_path: Path
) -> None:
    """A rewind fires what fell due (its outputs wait for the next transaction);
    when that transaction aborts too, the second rewind must fire it again: the
    first rewind's writes must not have reached the store in between."""
    clock = FakeClock()
    tasks = tasks_on_both_partitions(log, clock.now_ms() + 1_000)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    proc.run_once()  # the creates, committed
    clock.advance(2_000)
    kafka.producer.fail("commit", Fault.ABORTABLE)
    proc.run_once()  # every task fires: aborted; the rewind fires them again, pending
    kafka.producer.fail("produce", Fault.ABORTABLE)
    proc.run_once()  # the pending firings: aborted too; the rewind fires them again
    assert due_fire_ids(log) == Counter()
    proc.run_once()
    fired = due_fire_ids(log)
    assert fired_tasks(log) == set(tasks), "a firing of the first rewind was lost"
    assert all(n == 1 for n in fired.values()), fired
    proc.close()


def test_a_timer_due_sooner_than_the_floor_is_waited_for_with_its_neighbours(
    log: MemLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timers due close together share a step (one transaction): the loop waits
    at least MIN_TIMER_WAIT_S for a timer, never longer than the timer for a
    farther one, and never longer than MAX_POLL_WAIT_S."""
    clock = FakeClock()
    due_at = clock.now_ms() + 1_000
    create(log, "soon", due_at)
    proc, kafka = processor(log, clock, tmp_path, "a", owns=[0, 1])
    waits: list[float] = []
    poll = kafka.poll

    def recording_poll(max_messages: int, timeout_s: float) -> list[Any]:
        waits.append(timeout_s)
        return poll(max_messages, timeout_s)

    monkeypatch.setattr(kafka, "poll", recording_poll)
    proc.run_once()  # the create: its timer is set
    clock.advance(999)  # the timer is 1 ms away (and a partition's horizon step is due)
    proc.run_once()
    assert waits[-1] == MIN_TIMER_WAIT_S  # without the floor: 0
    assert fired_tasks(log) == set(), "waited for, not fired early"

    create(log, "later", clock.now_ms() + 1 + 40)
    clock.advance(1)
    proc.run_once()  # fires "soon", reads the create of "later"
    assert fired_tasks(log) == {"soon"}
    proc.run_once()
    assert waits[-1] == pytest.approx(0.040), "a farther timer is waited for exactly"
    clock.advance(40)
    proc.run_once()
    assert fired_tasks(log) == {"soon", "later"}
    proc.run_once()  # nothing due: only the horizon's step, at most MAX_POLL_WAIT_S
    assert waits[-1] == MAX_POLL_WAIT_S
    proc.close()
