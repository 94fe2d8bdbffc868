"""One partition of the processor, driven with plain messages and a fake clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

import streams.wheel.outputs as outputs_module
import streams.wheel.partition as partition_module
from streams.core.events import CommandKind, DueTask, RetryRequest, TaskCommand, TaskState
from streams.core.lifecycle import next_due_ms
from streams.core.model import AtSchedule, HttpTarget, IntervalSchedule, Schedule, TaskSpec
from streams.core.model import Outcome as RunOutcome
from streams.kafka.records import decode_dead_letter, decode_due, decode_result, encode_command
from streams.kafka.topics import COMMANDS, DEAD, DUE, RESULTS, STATE
from streams.wheel.partition import ChangelogRecord, Output, PartitionWheel, WheelConfig
from streams.wheel.statestore import PartitionStore

T0 = 1_800_000_000_000
CONFIG = WheelConfig(horizon_ms=10_000, promote_step_ms=1_000, misfire_grace_ms=5_000)


@dataclass
class Message:
    """What the processor reads of a Kafka record (confluent_kafka.Message cannot be built)."""

    _key: bytes | None
    _value: bytes | None
    _offset: int = 0

    def topic(self) -> str | None:
        return COMMANDS

    def partition(self) -> int | None:
        return 0

    def offset(self) -> int | None:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


def create(task_id: str, schedule: Schedule, at_ms: int = T0) -> Message:
    command = TaskCommand(
        command_id=f"create-{task_id}",
        task_id=task_id,
        tenant="acme",
        kind=CommandKind.CREATE,
        issued_at_ms=at_ms,
        issuer="test",
        spec=TaskSpec(schedule, HttpTarget("https://example.com/hook")),
    )
    return Message(task_id.encode(), encode_command(command))


def new_wheel(tmp_path: Path, name: str, now_ms: int = T0) -> PartitionWheel:
    wheel = PartitionWheel(0, PartitionStore(tmp_path / f"{name}.sqlite3"), now_ms, CONFIG)
    wheel.restore([])
    return wheel


def handle(wheel: PartitionWheel, message: Message, now_ms: int) -> list[Output]:
    wheel.handle(message, now_ms)
    return wheel.take_outputs()


def tick(wheel: PartitionWheel, now_ms: int) -> list[Output]:
    wheel.tick(now_ms)
    return wheel.take_outputs()


def dues(outputs: list[Output]) -> list[DueTask]:
    return [decode_due(o.value) for o in outputs if o.topic == DUE and o.value]


def fired(outputs: list[Output]) -> list[str]:
    return [decode_due(o.value).fire_id for o in outputs if o.topic == DUE and o.value]


def changelog(outputs: list[Output]) -> list[ChangelogRecord]:
    return [(o.key or b"", o.value, o.headers) for o in outputs if o.topic == STATE]


def test_a_task_fires_on_time_with_its_changelog_in_the_same_outputs(tmp_path: Path) -> None:
    wheel = new_wheel(tmp_path, "p")
    assert wheel.start(T0) == []
    outputs = handle(wheel, create("a", AtSchedule(T0 + 2_000)), T0)
    assert [o.topic for o in outputs] == [STATE]
    assert wheel.next_wakeup_ms() == T0 + 1_000  # the horizon's next step comes first
    assert tick(wheel, T0 + 1_999) == []
    at_due = tick(wheel, T0 + 2_000)
    assert fired(at_due) == [f"a:{T0 + 2_000}:1"]
    assert [(o.topic, o.value) for o in at_due if o.topic == STATE] == [(STATE, None)]
    assert len(wheel.store) == 0


def test_a_task_created_and_ended_in_one_step_still_shows_its_state(tmp_path: Path) -> None:
    """Changelog readers (the read model) must see every task at least once."""
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    outputs = handle(wheel, create("now", AtSchedule(T0)), T0 + 5)  # due at once
    assert fired(outputs) == [f"now:{T0}:1"]
    states = [(o.topic, o.value is None) for o in outputs if o.topic == STATE]
    assert states == [(STATE, False), (STATE, True)]  # its state, then the tombstone
    assert len(wheel.store) == 0


def test_far_tasks_wait_on_disk_and_come_into_the_wheel_in_time(tmp_path: Path) -> None:
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    handle(wheel, create("near", AtSchedule(T0 + 5_000)), T0)
    handle(wheel, create("far", AtSchedule(T0 + 3_600_000)), T0)
    assert len(wheel.store) == 2
    assert len(wheel.wheel) == 1  # only the near one is in memory
    now, seen = T0, []
    while now < T0 + 3_600_000:  # the processor loop: wake when told to
        now = wheel.next_wakeup_ms() or now + 1_000
        seen += [(fire_id, now) for fire_id in fired(tick(wheel, now))]
    assert seen == [
        (f"near:{T0 + 5_000}:1", T0 + 5_000),
        (f"far:{T0 + 3_600_000}:1", T0 + 3_600_000),
    ]


def test_bad_commands_become_dead_letters_and_the_partition_goes_on(tmp_path: Path) -> None:
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    garbage = handle(wheel, Message(b"x", b"\x00\xff garbage", 7), T0)
    good = create("b", AtSchedule(T0 + 1_000))
    mismatched = handle(wheel, Message(b"not-b", good.value(), 8), T0)
    duplicate_id = handle(wheel, good, T0)
    again = handle(wheel, create("b", AtSchedule(T0 + 9_000)), T0)  # same command id: no-op
    assert [o.topic for o in garbage] == [DEAD]
    dead = decode_dead_letter(garbage[0].value or b"")
    assert dead.source_offset == 7
    assert dead.original_value == b"\x00\xff garbage"
    assert "keyed by task id" in decode_dead_letter(mismatched[0].value or b"").reason
    assert [o.topic for o in duplicate_id] == [STATE]
    assert again == []


def test_a_restored_partition_fires_exactly_what_the_lost_one_would_have(tmp_path: Path) -> None:
    """The crash, in miniature: replay the changelog into a new wheel mid-stream."""
    rng = random.Random(7)
    original = new_wheel(tmp_path, "original")
    original.start(T0)
    log: list[ChangelogRecord] = []
    for n in range(300):
        schedule: Schedule = (
            AtSchedule(T0 + rng.randrange(1, 120_000))
            if n % 3
            else IntervalSchedule(7_000 + n, start_ms=T0 + rng.randrange(0, 30_000))
        )
        log += changelog(handle(original, create(f"t{n}", schedule), T0))
    before: list[str] = []
    for now in range(T0, T0 + 60_000, 250):
        outputs = tick(original, now)
        before += fired(outputs)
        log += changelog(outputs)
    crash_at = T0 + 60_000
    restored = PartitionWheel(0, PartitionStore(tmp_path / "restored.sqlite3"), crash_at, CONFIG)
    assert restored.restore(log) == len(log)
    restored_firings = fired(restored.start(crash_at))
    original_firings = fired(tick(original, crash_at))
    for now in range(crash_at + 250, T0 + 150_000, 250):
        original_firings += fired(tick(original, now))
        restored_firings += fired(tick(restored, now))
    # Same firings; timers due in the same millisecond may come out in any order.
    assert sorted(restored_firings) == sorted(original_firings)
    assert len(original_firings) > 50
    assert not set(before) & set(restored_firings)  # nothing fires twice across the restore
    assert len(restored.store) == len(original.store)


def test_changelog_records_without_the_timer_header_are_decoded(tmp_path: Path) -> None:
    """Records another tool wrote (say, a replay) carry no header; a restore still works."""
    source = new_wheel(tmp_path, "source")
    source.start(T0)
    log = changelog(handle(source, create("h", AtSchedule(T0 + 4_000)), T0))
    stripped = [(key, value, None) for key, value, _ in log]
    restored = PartitionWheel(0, PartitionStore(tmp_path / "r.sqlite3"), T0, CONFIG)
    restored.restore(stripped)
    assert restored.start(T0) == []
    assert fired(tick(restored, T0 + 4_000)) == [f"h:{T0 + 4_000}:1"]


def step(wheel: PartitionWheel, messages: list[Message], now_ms: int) -> list[Output]:
    """One turn of the processor loop: all the commands, then the clock, then the outputs."""
    for message in messages:
        wheel.handle(message, now_ms)
    wheel.tick(now_ms)
    return wheel.take_outputs()


def test_a_task_created_in_the_step_that_moves_the_horizon_over_it_fires(tmp_path: Path) -> None:
    """The horizon race: the command is handled against the old horizon, the
    clock moves the horizon over the task's time in the same step, before the
    index has the task's row."""
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    assert wheel.promoted_until_ms == T0 + CONFIG.horizon_ms
    at = T0 + CONFIG.horizon_ms + 500  # beyond the horizon when handled
    step(wheel, [create("edge", AtSchedule(at))], T0 + 1_000)  # the horizon moves
    assert wheel.wheel.due_ms("edge") == at
    assert fired(tick(wheel, at)) == [f"edge:{at}:1"]


def test_a_backward_clock_step_neither_fires_early_nor_loses_a_timer(tmp_path: Path) -> None:
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    tick(wheel, T0 + 5_000)
    # The wall clock steps back 3 s. A task due 1 s after the new reading is
    # due before the time the partition already passed: it fires at once
    # (at that time, so not before its own); one due after it waits for it.
    back = T0 + 2_000
    soon = create("soon", AtSchedule(back + 1_000), at_ms=back)
    later = create("later", AtSchedule(T0 + 6_000), at_ms=back)
    outputs = step(wheel, [soon, later], back)
    assert wheel.now_ms == T0 + 5_000  # the partition's time stands still
    assert [(d.fire_id, d.emitted_at_ms) for d in dues(outputs)] == [
        (f"soon:{back + 1_000}:1", T0 + 5_000)
    ]
    assert fired(tick(wheel, back + 3_500)) == []  # the clock is catching up
    assert fired(tick(wheel, T0 + 6_000)) == [f"later:{T0 + 6_000}:1"]
    assert fired(tick(wheel, T0 + 60_000)) == []


def test_a_timer_that_fires_nothing_is_kept(tmp_path: Path) -> None:
    """Defence in depth: a timer that turns out not to be due is set again, not dropped."""
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    step(wheel, [create("x", AtSchedule(T0 + 2_000))], T0)
    wheel.wheel.add("x", T0 + 1_000)  # a wrong, early timer
    assert fired(tick(wheel, T0 + 1_000)) == []
    assert wheel.wheel.due_ms("x") == T0 + 2_000
    assert fired(tick(wheel, T0 + 2_000)) == [f"x:{T0 + 2_000}:1"]


def test_a_retry_after_its_task_ended_is_a_final_failure_and_a_dead_letter(
    tmp_path: Path,
) -> None:
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    step(wheel, [create("gone", AtSchedule(T0))], T0)  # fired and ended (no retries)
    late = TaskCommand(
        command_id="retry:gone",
        task_id="gone",
        tenant="acme",
        kind=CommandKind.RETRY,
        issued_at_ms=T0 + 700_000,
        issuer="dispatcher",
        retry=RetryRequest(T0, 2, T0 + 701_000, "HTTP 503"),
    )
    outputs = step(wheel, [Message(b"gone", encode_command(late))], T0 + 700_000)
    assert sorted(o.topic for o in outputs) == [DEAD, RESULTS]
    result = decode_result(next(o.value for o in outputs if o.topic == RESULTS) or b"")
    assert (result.fire_id, result.final, result.outcome) == (
        f"gone:{T0}:2",
        True,
        RunOutcome.FAILED,
    )
    dead = decode_dead_letter(next(o.value for o in outputs if o.topic == DEAD) or b"")
    assert dead.error_class == "RetryAfterEnd"


def test_a_write_works_out_its_timer_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheel, the index row and the changelog header share one next_due_ms per write."""
    calls: list[str] = []
    real = next_due_ms

    def counted(state: TaskState) -> int | None:
        calls.append(state.task_id)
        return real(state)

    monkeypatch.setattr(partition_module, "next_due_ms", counted)
    monkeypatch.setattr(outputs_module, "next_due_ms", counted)
    wheel = new_wheel(tmp_path, "once")
    assert wheel.start(T0) == []
    outputs = handle(wheel, create("t1", IntervalSchedule(60_000, T0 + 5_000)), T0)
    assert calls == ["t1"]
    [record] = [o for o in outputs if o.topic == STATE]
    assert record.headers == [("kw-due-ms", str(T0 + 5_000).encode())]
    wheel.close()
