"""Issue 12 on tasks.commands: any producer's command passes the same validation as the
API's, and no single command or timer can stop a partition of the processor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streams.core import lifecycle
from streams.core.events import CommandKind, TaskCommand, TaskState
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    KafkaTarget,
    RetryPolicy,
    TaskSpec,
)
from streams.kafka.records import decode_dead_letter, encode_command
from streams.kafka.topics import DEAD, DUE, STATE
from streams.wheel import partition as partition_module
from tests.unit.test_partition import T0, Message, create, fired, handle, new_wheel, tick

SPEC = TaskSpec(AtSchedule(T0 + 1_000), HttpTarget("https://example.com/hook"))


def command_with(spec: TaskSpec, task_id: str = "bad") -> Message:
    command = TaskCommand(f"c-{task_id}", task_id, "acme", CommandKind.CREATE, T0, "svc", spec)
    return Message(task_id.encode(), encode_command(command))


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (replace(SPEC, schedule=CronSchedule("0 0 30 2 *")), "never_fires"),
        (replace(SPEC, schedule=CronSchedule("0 0 0 31 4 *")), "never_fires"),
        (replace(SPEC, schedule=AtSchedule(2**62)), "schedule.at"),
        (replace(SPEC, schedule=IntervalSchedule(1)), "schedule.every_ms"),
        (replace(SPEC, target=HttpTarget("https://example.com/", timeout_ms=0)), "timeout_ms"),
        (replace(SPEC, retry=RetryPolicy(max_attempts=0)), "max_attempts"),
        (replace(SPEC, retry=RetryPolicy(max_attempts=2**31 - 1)), "max_attempts"),
        (replace(SPEC, retry=RetryPolicy(backoff_ms=-1)), "backoff_ms"),
        (replace(SPEC, target=KafkaTarget("tasks.state")), "kafka.topic"),
        (replace(SPEC, target=KafkaTarget("__consumer_offsets")), "kafka.topic"),
        (
            replace(SPEC, target=HttpTarget("https://e.com/", headers={"Transfer-Encoding": "x"})),
            "reserved_header",
        ),
    ],
)
def test_an_invalid_avro_command_is_dead_lettered_and_the_partition_goes_on(
    tmp_path: Path, spec: TaskSpec, reason: str
) -> None:
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    outputs = handle(wheel, command_with(spec), T0)
    dead = [decode_dead_letter(o.value) for o in outputs if o.topic == DEAD and o.value]
    assert len(dead) == 1
    assert reason in dead[0].reason
    assert not [o for o in outputs if o.topic == STATE]
    # The next command on the same partition is applied as usual.
    handle(wheel, create("good", AtSchedule(T0 + 1_000)), T0)
    assert fired(tick(wheel, T0 + 1_000)) == [f"good:{T0 + 1_000}:1"]


def test_an_exception_applying_one_command_is_a_dead_letter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)

    def broken(*_args: object) -> lifecycle.Transition:
        raise OverflowError("date value out of range")

    with monkeypatch.context() as patched:
        patched.setattr(partition_module, "apply_command", broken)
        outputs = handle(wheel, create("a", AtSchedule(T0 + 1_000)), T0)
    [dead] = [decode_dead_letter(o.value) for o in outputs if o.topic == DEAD and o.value]
    assert dead.error_class == "OverflowError"
    assert "date value out of range" in dead.reason
    handle(wheel, create("b", AtSchedule(T0 + 1_000)), T0)
    assert fired(tick(wheel, T0 + 1_000)) == [f"b:{T0 + 1_000}:1"]


def test_an_exception_firing_one_task_is_a_dead_letter_and_others_still_fire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = new_wheel(tmp_path, "p")
    wheel.start(T0)
    handle(wheel, create("a", AtSchedule(T0 + 1_000)), T0)
    handle(wheel, create("b", AtSchedule(T0 + 1_000)), T0)
    real_fire = lifecycle.fire

    def fire_but_not_a(state: TaskState, now_ms: int, grace: int) -> lifecycle.Transition:
        if state.task_id == "a":
            raise ValueError("cannot fire a")
        return real_fire(state, now_ms, grace)

    monkeypatch.setattr(partition_module, "fire", fire_but_not_a)
    outputs = tick(wheel, T0 + 1_000)
    assert fired(outputs) == [f"b:{T0 + 1_000}:1"]
    [dead] = [decode_dead_letter(o.value) for o in outputs if o.topic == DEAD and o.value]
    assert (dead.task_id, dead.error_class) == ("a", "ValueError")
    assert [o for o in outputs if o.topic == DUE]
