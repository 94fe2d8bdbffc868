"""Which firings ``replay due`` re-drives, and as which attempt; what ``replay state``
writes (pure)."""

from dataclasses import replace

from streams.core.events import (
    DueTask,
    ExecutionResult,
    FireReason,
    RetryRequest,
    TaskState,
    TaskStatus,
)
from streams.core.ids import fire_id
from streams.core.model import (
    AtSchedule,
    HttpTarget,
    IntervalSchedule,
    Outcome,
    RetryPolicy,
    TaskSpec,
)
from streams.kafka.records import decode_state, encode_state
from streams.ops.replay.due import Action, Candidate, plan_redrive
from streams.ops.replay.state import (
    FiredRuns,
    advance_past_firings,
    changelog_records,
    merge_with_changelog,
)
from streams.wheel.partition import DUE_HEADER

NOW = 1_800_000_000_000


def due(task: str, scheduled: int, attempt: int = 1) -> Candidate:
    return Candidate(
        DueTask(
            fire_id(task, scheduled, attempt),
            task,
            "t",
            task,
            scheduled,
            attempt,
            scheduled,
            HttpTarget("http://127.0.0.1/hook"),
            RetryPolicy(),
        ),
        partition=2,
    )


def result(task: str, scheduled: int, attempt: int, outcome: Outcome) -> ExecutionResult:
    return ExecutionResult(
        fire_id(task, scheduled, attempt),
        task,
        "t",
        scheduled,
        attempt,
        outcome,
        True,
        scheduled,
        scheduled + 5,
        0,
    )


def test_without_a_filter_every_fire_id_is_resent_once_as_it_was() -> None:
    candidates = [due("a", 100), due("a", 100), due("b", 200, 2)]
    plan = plan_redrive(candidates, None, NOW)
    assert [(r.due, r.action) for r in plan] == [
        (candidates[0].due, Action.RESEND),
        (candidates[2].due, Action.RESEND),
    ]


def test_failed_firings_get_the_next_attempt_and_keep_task_and_time() -> None:
    recorded = {("a", 100): [result("a", 100, 1, Outcome.FAILED)]}
    [redrive] = plan_redrive([due("a", 100)], recorded, NOW)
    assert redrive.action is Action.NEXT_ATTEMPT
    assert redrive.due.fire_id == "a:100:2"
    assert (redrive.due.task_id, redrive.due.scheduled_at_ms, redrive.due.attempt) == ("a", 100, 2)
    assert redrive.due.reason is FireReason.RETRY
    assert redrive.due.emitted_at_ms == NOW
    assert redrive.partition == 2  # the task's own partition


def test_succeeded_firings_are_left_alone() -> None:
    recorded = {
        ("a", 100): [result("a", 100, 1, Outcome.FAILED), result("a", 100, 2, Outcome.SUCCEEDED)]
    }
    assert plan_redrive([due("a", 100), due("a", 100, 2)], recorded, NOW) == []


def test_a_latest_attempt_without_outcome_is_resent_with_its_fire_id() -> None:
    recorded = {("a", 100): [result("a", 100, 1, Outcome.FAILED)]}
    [redrive] = plan_redrive([due("a", 100), due("a", 100, 2)], recorded, NOW)
    assert (redrive.action, redrive.due.fire_id) == (Action.RESEND, "a:100:2")
    [never_ran] = plan_redrive([due("b", 300)], {("b", 300): []}, NOW)
    assert (never_ran.action, never_ran.due.fire_id) == (Action.RESEND, "b:300:1")


def test_the_next_attempt_follows_the_highest_recorded_one() -> None:
    # tasks.due outside the window had attempts 2 and 3; the history store knows them.
    recorded = {("a", 100): [result("a", 100, n, Outcome.FAILED) for n in (1, 2, 3)]}
    [redrive] = plan_redrive([due("a", 100)], recorded, NOW)
    assert redrive.due.fire_id == "a:100:4"


def fired(*dues: tuple[int, int]) -> FiredRuns:
    runs = FiredRuns()
    for scheduled, attempt in dues:
        runs.add(due("e", scheduled, attempt).due)
    return runs


def test_advance_past_firings_moves_a_recurring_task_past_what_fired() -> None:
    spec = TaskSpec(IntervalSchedule(1_000, start_ms=0), HttpTarget("http://127.0.0.1/"))
    state = TaskState("e", "t", spec, TaskStatus.SCHEDULED, 1_000, None, 0, 0, 0)
    moved = advance_past_firings(state, fired((1_000, 1), (2_000, 1), (3_000, 1)))
    assert moved is not None
    assert (moved.next_fire_ms, moved.last_fire_ms, moved.fire_count) == (4_000, 3_000, 3)
    assert advance_past_firings(state, fired((500, 1))) is state  # before its next run


def test_a_fired_one_time_task_ends_unless_retries_may_still_come() -> None:
    target = HttpTarget("http://127.0.0.1/")
    once = TaskState(
        "o", "t", TaskSpec(AtSchedule(1_000), target), TaskStatus.SCHEDULED, 1_000, None, 0, 0, 0
    )
    assert advance_past_firings(once, fired((1_000, 1))) is None
    retried = replace(once, spec=replace(once.spec, retry=RetryPolicy(max_attempts=3)))
    kept = advance_past_firings(retried, fired((1_000, 1)))
    assert kept is not None
    assert (kept.status, kept.last_fire_ms, kept.next_fire_ms) == (
        TaskStatus.COMPLETED,
        1_000,
        None,
    )


def test_retries_already_emitted_are_dropped() -> None:
    spec = TaskSpec(AtSchedule(1_000), HttpTarget("http://127.0.0.1/"), retry=RetryPolicy(3))
    state = TaskState(
        "r",
        "t",
        spec,
        TaskStatus.COMPLETED,
        None,
        1_000,
        1,
        0,
        0,
        pending_retries=(RetryRequest(1_000, 2, 3_000), RetryRequest(1_000, 3, 9_000)),
    )
    advanced = advance_past_firings(state, fired((1_000, 1), (1_000, 2)))
    assert advanced is not None
    assert advanced.pending_retries == (RetryRequest(1_000, 3, 9_000),)


def test_a_paused_task_stays_when_its_emitted_retries_are_dropped() -> None:
    spec = TaskSpec(IntervalSchedule(1_000, start_ms=0), HttpTarget("http://127.0.0.1/"))
    paused = TaskState(
        "p",
        "t",
        spec,
        TaskStatus.PAUSED,
        5_000,
        4_000,
        4,
        0,
        0,
        pending_retries=(RetryRequest(4_000, 2, 4_500),),
    )
    kept = advance_past_firings(paused, fired((4_000, 2)))
    assert kept is not None
    assert (kept.status, kept.pending_retries) == (TaskStatus.PAUSED, ())


def stored(task_id: str, created_at_ms: int) -> bytes:
    return encode_state(
        TaskState(
            task_id,
            "t",
            TaskSpec(AtSchedule(NOW + 60_000), HttpTarget("http://127.0.0.1/hook")),
            TaskStatus.SCHEDULED,
            NOW + 60_000,
            None,
            0,
            created_at_ms,
            created_at_ms,
        )
    )


def test_replay_state_keeps_live_tasks_older_than_the_commands_it_has() -> None:
    """tasks.commands is deleted after its retention: a task created before the
    oldest command kept cannot be rebuilt, and must not be deleted for that."""
    oldest = {0: NOW - 1_000}
    unrebuilt = {
        (0, "old"): stored("old", NOW - 30 * 86_400_000),  # created a month ago: kept
        (0, "ended"): stored("ended", NOW),  # its CREATE was folded: it ended
        (0, "ghost"): stored("ghost", NOW),  # no command made it: corrupted
        (0, "garbage"): b"\x00\xff",
        (1, "elsewhere"): stored("elsewhere", NOW),  # partition 1 has no commands left
    }
    stale, kept = merge_with_changelog(unrebuilt, {(0, "ended")}, oldest)
    assert stale == {(0, "ended"), (0, "ghost"), (0, "garbage")}
    assert kept == {(0, "old"), (1, "elsewhere")}


def test_replay_state_writes_the_timer_header_the_processors_restore_from() -> None:
    state = decode_state(stored("a", NOW))
    records = changelog_records({(3, "a"): state}, {(3, "b")})
    assert records == [
        (3, b"a", encode_state(state), [(DUE_HEADER, str(NOW + 60_000).encode())]),
        (3, b"b", None, [(DUE_HEADER, b"")]),
    ]
