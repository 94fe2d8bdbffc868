"""The processor's pure core: commands and time in, state and firings out."""

from __future__ import annotations

import pytest

from streams.core.events import (
    CommandKind,
    FireReason,
    RetryRequest,
    TaskCommand,
    TaskState,
    TaskStatus,
)
from streams.core.lifecycle import (
    COMPLETED_MARGIN_MS,
    FIRE_ALL_CAP,
    Outcome,
    Transition,
    apply_command,
    fire,
    next_due_ms,
    retention_ms,
    total_backoff_ms,
)
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    Misfire,
    RetryPolicy,
    Schedule,
    TaskSpec,
)

T0 = 1_800_000_000_000  # an instant well in the future of any test machine
TARGET = HttpTarget("https://example.com/hook")
_counter = iter(range(1_000_000))


def spec(schedule: Schedule, **kwargs: object) -> TaskSpec:
    return TaskSpec(schedule, TARGET, **kwargs)  # type: ignore[arg-type]


def command(
    kind: CommandKind,
    at_ms: int = T0,
    task_spec: TaskSpec | None = None,
    retry: RetryRequest | None = None,
    command_id: str | None = None,
    tenant: str = "acme",
) -> TaskCommand:
    return TaskCommand(
        command_id=command_id or f"c{next(_counter)}",
        task_id="task-1",
        tenant=tenant,
        kind=kind,
        issued_at_ms=at_ms,
        issuer="test",
        spec=task_spec,
        retry=retry,
    )


def created(task_spec: TaskSpec, at_ms: int = T0) -> TaskState:
    transition = apply_command(None, command(CommandKind.CREATE, at_ms, task_spec), at_ms)
    assert transition.state is not None
    return transition.state


def fire_ids(transition: Transition) -> list[str]:
    return [due.fire_id for due in transition.firings]


def test_create_schedules_the_first_run_from_the_command_instant() -> None:
    state = created(spec(IntervalSchedule(60_000)))
    assert state.status is TaskStatus.SCHEDULED
    assert state.next_fire_ms == T0
    assert next_due_ms(state) == T0


def test_a_command_seen_twice_is_applied_once() -> None:
    create = command(CommandKind.CREATE, task_spec=spec(AtSchedule(T0 + 5_000)))
    first = apply_command(None, create, T0)
    # Read again after an aborted transaction, later: same id, no change.
    again = apply_command(first.state, create, T0 + 60_000)
    assert again.outcome == Outcome.DUPLICATE
    assert again.writes == ()
    assert again.state == first.state


def test_a_second_create_for_a_live_id_is_rejected() -> None:
    state = created(spec(AtSchedule(T0 + 5_000)))
    other = apply_command(state, command(CommandKind.CREATE, task_spec=spec(AtSchedule(T0))), T0)
    assert other.rejected
    assert "already exists" in other.reason


def test_replaying_commands_later_gives_the_same_state() -> None:
    commands = [
        command(CommandKind.CREATE, T0, spec(CronSchedule("*/5 * * * *", "Europe/Berlin"))),
        command(CommandKind.PAUSE, T0 + 1_000),
        command(CommandKind.RESUME, T0 + 2_000),
    ]

    def fold(now_ms: int) -> TaskState | None:
        state = None
        for c in commands:
            state = apply_command(state, c, now_ms).state
        return state

    assert fold(T0 + 3_000) == fold(T0 + 86_400_000)


def test_one_time_task_fires_once_then_completes_and_ends() -> None:
    state = created(spec(AtSchedule(T0 + 5_000)))
    assert fire(state, T0 + 4_999).firings == []
    fired = fire(state, T0 + 5_003)
    assert fire_ids(fired) == [f"task-1:{T0 + 5_000}:1"]
    assert fired.firings[0].reason is FireReason.SCHEDULE
    assert fired.firings[0].emitted_at_ms == T0 + 5_003
    # No retries configured: nothing will ever come back, so it ends at once.
    assert fired.state is None
    assert fired.writes == (None,)


def test_a_finished_task_with_retries_waits_for_them_then_ends() -> None:
    retry = RetryPolicy(max_attempts=3, backoff_ms=1_000, max_backoff_ms=60_000)
    state = created(spec(AtSchedule(T0), retry=retry))
    fired = fire(state, T0)
    assert fired.state is not None
    assert fired.state.status is TaskStatus.COMPLETED
    keep = retention_ms(fired.state.spec)
    assert keep == 2 * (1_000 + 2_000) + 3 * 10_000 + COMPLETED_MARGIN_MS
    assert next_due_ms(fired.state) == T0 + keep
    # A retry comes back from a dispatcher: it fires as attempt 2 at its time.
    request = RetryRequest(T0, 2, T0 + 1_500, "HTTP 503")
    retried = apply_command(fired.state, command(CommandKind.RETRY, T0 + 500, retry=request), T0)
    assert retried.state is not None
    assert next_due_ms(retried.state) == T0 + 1_500
    second = fire(retried.state, T0 + 1_500)
    assert fire_ids(second) == [f"task-1:{T0}:2"]
    assert second.firings[0].reason is FireReason.RETRY
    assert second.state is not None
    assert second.state.pending_retries == ()
    assert fire(second.state, T0 + keep).writes == (None,)


def test_retry_commands_are_checked() -> None:
    state = created(spec(AtSchedule(T0 + 60_000), retry=RetryPolicy(max_attempts=2)))
    too_many = RetryRequest(T0, 3, T0 + 1_000)
    assert apply_command(state, command(CommandKind.RETRY, retry=too_many), T0).rejected
    request = RetryRequest(T0, 2, T0 + 1_000)
    once = apply_command(state, command(CommandKind.RETRY, retry=request), T0)
    assert once.state is not None
    twice = apply_command(once.state, command(CommandKind.RETRY, retry=request), T0)
    assert twice.outcome == Outcome.DUPLICATE
    late = apply_command(None, command(CommandKind.RETRY, retry=request), T0)
    assert late.outcome == Outcome.IGNORED


def test_cancel_writes_the_final_state_then_a_tombstone() -> None:
    state = created(spec(IntervalSchedule(60_000)))
    cancelled = apply_command(state, command(CommandKind.CANCEL), T0)
    assert cancelled.state is None
    final = cancelled.writes[0]
    assert final is not None
    assert final.status is TaskStatus.CANCELLED
    assert cancelled.writes[1] is None
    assert apply_command(None, command(CommandKind.CANCEL), T0).outcome == Outcome.IGNORED


@pytest.mark.parametrize("kind", [CommandKind.UPDATE, CommandKind.PAUSE, CommandKind.TRIGGER])
def test_commands_for_an_unknown_task_are_rejected(kind: CommandKind) -> None:
    task_spec = spec(AtSchedule(T0)) if kind is CommandKind.UPDATE else None
    transition = apply_command(None, command(kind, task_spec=task_spec), T0)
    assert transition.rejected
    assert "does not exist" in transition.reason


def test_another_tenant_cannot_touch_a_task() -> None:
    state = created(spec(IntervalSchedule(60_000)))
    assert apply_command(state, command(CommandKind.CANCEL, tenant="evil"), T0).rejected


def test_pause_stops_runs_and_resume_skips_what_was_missed() -> None:
    state = created(spec(IntervalSchedule(60_000, start_ms=T0)))
    paused = apply_command(state, command(CommandKind.PAUSE, T0 + 1), T0 + 1).state
    assert paused is not None
    assert paused.status is TaskStatus.PAUSED
    assert next_due_ms(paused) is None  # no timer, but the task stays
    assert fire(paused, T0 + 600_000).firings == []
    resumed = apply_command(paused, command(CommandKind.RESUME, T0 + 330_000), T0 + 330_000)
    assert resumed.state is not None
    assert resumed.state.next_fire_ms == T0 + 360_000  # the grid, after the resume


def test_update_reschedules() -> None:
    state = created(spec(AtSchedule(T0 + 60_000)))
    moved = apply_command(
        state, command(CommandKind.UPDATE, T0 + 1_000, spec(AtSchedule(T0 + 5_000))), T0
    )
    assert moved.state is not None
    assert next_due_ms(moved.state) == T0 + 5_000


def test_trigger_fires_now_with_a_deterministic_fire_id() -> None:
    state = created(spec(AtSchedule(T0 + 3_600_000)))
    trigger = command(CommandKind.TRIGGER, T0 + 10_000)
    first = apply_command(state, trigger, T0 + 10_020)
    assert fire_ids(first) == [f"task-1:{T0 + 10_000}:1"]
    assert first.firings[0].reason is FireReason.TRIGGER
    assert first.state is not None
    assert first.state.next_fire_ms == T0 + 3_600_000  # the schedule is untouched


def test_runs_late_within_the_grace_all_fire() -> None:
    state = created(spec(IntervalSchedule(1_000, start_ms=T0)))
    fired = fire(state, T0 + 2_500, misfire_grace_ms=10_000)
    assert fire_ids(fired) == [f"task-1:{T0 + k * 1_000}:1" for k in range(3)]
    assert fired.state is not None
    assert fired.state.next_fire_ms == T0 + 3_000
    assert fired.state.fire_count == 3


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Misfire.FIRE_ONCE, [0]),  # the first missed run, once
        (Misfire.FIRE_ALL, list(range(FIRE_ALL_CAP))),  # each missed run, capped
        (Misfire.SKIP, []),
    ],
)
def test_misfire_policies(policy: Misfire, expected: list[int]) -> None:
    state = created(spec(IntervalSchedule(60_000, start_ms=T0), misfire=policy))
    now = T0 + 3 * 3_600_000 + 30_000  # 3 h without an owner: 181 runs missed
    fired = fire(state, now, misfire_grace_ms=10_000)
    assert fire_ids(fired) == [f"task-1:{T0 + k * 60_000}:1" for k in expected]
    assert all(due.reason is FireReason.MISFIRE for due in fired.firings)
    assert fired.state is not None
    assert fired.state.next_fire_ms == T0 + 181 * 60_000  # resumes after now, on the grid


def test_a_missed_one_time_task_with_skip_ends_without_firing() -> None:
    state = created(spec(AtSchedule(T0), misfire=Misfire.SKIP))
    skipped = fire(state, T0 + 60_000, misfire_grace_ms=10_000)
    assert skipped.firings == []
    assert skipped.state is None


def test_cron_task_keeps_its_zone_across_firings() -> None:
    # 09:00 Berlin on weekdays; T0 is a Friday (2027-01-15T08:00:00Z = 09:00 CET).
    friday = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000 + 8 * 3_600_000
    state = created(spec(CronSchedule("0 9 * * MON-FRI", "Europe/Berlin")), friday - 1)
    assert state.next_fire_ms is not None
    fired = fire(state, state.next_fire_ms)
    assert fired.state is not None
    assert fired.state.next_fire_ms is not None
    assert fired.state.next_fire_ms > state.next_fire_ms
    assert fired.state.fire_count == 1


@pytest.mark.parametrize(
    ("first_ms", "cap_ms", "retries"),
    [
        (b, m, n)
        for b in (0, 1, 3, 10, 1_000, 70_000)
        for m in (0, 1, 999, 60_000)
        for n in (0, 1, 7, 40)
    ],
)
def test_total_backoff_is_the_sum_it_stands_for(first_ms: int, cap_ms: int, retries: int) -> None:
    expected = sum(min(first_ms << i, cap_ms) for i in range(retries))
    assert total_backoff_ms(first_ms, cap_ms, retries) == expected


def test_retention_of_a_huge_max_attempts_is_computed_not_looped() -> None:
    # A state written before validation existed (or by another tool) may carry it.
    spec = TaskSpec(
        AtSchedule(0), HttpTarget("https://example.com/"), retry=RetryPolicy(2**31 - 1, 1, 4)
    )
    retries = 2**31 - 2
    assert retention_ms(spec) == 2 * (1 + 2 + 4 * (retries - 2)) + (2**31 - 1) * 10_000 + (
        COMPLETED_MARGIN_MS
    )
