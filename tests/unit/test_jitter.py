"""schedule.jitter_ms: a deterministic offset per run, inside its bounds, spread out;
the timer, the misfire grace and lateness go by it; the run keeps its nominal name."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.attempts import Attempt, result_of
from streams.core.errors import ValidationError
from streams.core.events import CommandKind, FireReason, TaskCommand
from streams.core.jitter import MAX_JITTER_MS, jitter_offset_ms
from streams.core.lifecycle import apply_command, fire, next_due_ms
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    Misfire,
    Outcome,
    Schedule,
    TaskSpec,
    parse_task_spec,
)
from streams.core.render import spec_to_json
from streams.core.upcoming import upcoming_fire_ms
from streams.core.validation import validate_spec

T0 = 1_800_000_000_000  # a whole hour (2027-01-15T08:00:00Z)
TARGET = HttpTarget("https://example.com/hook")
TASK_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True)


@given(task_id=TASK_IDS, nominal=st.integers(0, 2**45), jitter=st.integers(0, MAX_JITTER_MS))
def test_the_offset_is_a_pure_function_within_its_bounds(
    task_id: str, nominal: int, jitter: int
) -> None:
    offset = jitter_offset_ms(task_id, nominal, jitter)
    assert offset == jitter_offset_ms(task_id, nominal, jitter)
    assert 0 <= offset <= jitter


@given(task_id=TASK_IDS, nominal=st.integers(0, 2**45))
def test_no_jitter_is_no_offset(task_id: str, nominal: int) -> None:
    assert jitter_offset_ms(task_id, nominal, 0) == 0


def test_offsets_of_many_tasks_at_one_instant_spread_about_uniformly() -> None:
    """Thousands of ``0 * * * *`` tasks: ten equal buckets get about a tenth each."""
    jitter, tasks = 59_999, 20_000
    buckets = Counter(
        jitter_offset_ms(f"hourly-{n}", T0, jitter) * 10 // (jitter + 1) for n in range(tasks)
    )
    assert sorted(buckets) == list(range(10))
    assert all(abs(count - tasks / 10) < 0.1 * tasks / 10 for count in buckets.values())


def test_the_runs_of_one_task_get_different_offsets() -> None:
    offsets = {jitter_offset_ms("t1", T0 + k * 3_600_000, 60_000) for k in range(50)}
    assert len(offsets) > 40


def created(schedule: Schedule, jitter_ms: int, **kwargs: object) -> TaskCommand:
    spec = TaskSpec(schedule, TARGET, jitter_ms=jitter_ms, **kwargs)  # type: ignore[arg-type]
    return TaskCommand("c1", "t1", "acme", CommandKind.CREATE, T0 - 1_000, "test", spec)


def test_a_run_is_due_at_its_jittered_time_and_keeps_its_nominal_name() -> None:
    state = apply_command(None, created(CronSchedule("0 * * * *"), 60_000), T0).state
    assert state is not None
    nominal = T0  # the next whole hour after the create
    assert state.next_fire_ms == nominal  # the state keeps the nominal time
    offset = jitter_offset_ms("t1", nominal, 60_000)
    assert next_due_ms(state) == nominal + offset
    if offset:
        assert fire(state, nominal + offset - 1).firings == []  # not before
    fired = fire(state, nominal + offset + 7)
    [due] = fired.firings
    assert due.fire_id == f"t1:{nominal}:1"  # fire id unchanged: the nominal run
    assert due.scheduled_at_ms == nominal
    assert due.jitter_ms == offset
    assert due.due_at_ms == nominal + offset
    assert fired.state is not None
    assert fired.state.next_fire_ms == nominal + 3_600_000
    # Lateness counts from the jittered instant, not the nominal one.
    attempt = Attempt(Outcome.SUCCEEDED, nominal + offset + 20, nominal + offset + 30)
    assert result_of(due, attempt, "d1").lateness_ms == 20


def test_the_misfire_grace_counts_from_the_jittered_time() -> None:
    jitter, grace = 50_000, 10_000
    state = apply_command(None, created(IntervalSchedule(60_000, T0), jitter), T0).state
    assert state is not None
    offset = jitter_offset_ms("t1", T0, jitter)
    [on_time] = fire(state, T0 + offset + grace, grace).firings
    assert on_time.reason is FireReason.SCHEDULE
    [missed] = fire(state, T0 + offset + grace + 1, grace).firings
    assert missed.reason is FireReason.MISFIRE


@pytest.mark.parametrize("policy", list(Misfire))
def test_after_a_misfire_the_next_run_is_not_yet_due(policy: Misfire) -> None:
    jitter = 59_000
    command = created(IntervalSchedule(60_000, T0), jitter, misfire=policy)
    state = apply_command(None, command, T0).state
    assert state is not None
    for now in range(T0 + 3_600_000, T0 + 3_600_000 + 60_000, 7_919):
        after = fire(state, now, 10_000).state
        assert after is not None
        assert after.next_fire_ms is not None
        assert (next_due_ms(after) or 0) > now
        # No run is passed over that is not yet due: the one before is due by now.
        previous = after.next_fire_ms - 60_000
        assert previous + jitter_offset_ms("t1", previous, jitter) <= now


def test_a_trigger_has_no_jitter() -> None:
    state = apply_command(None, created(CronSchedule("0 * * * *"), 60_000), T0).state
    trigger = TaskCommand("c2", "t1", "acme", CommandKind.TRIGGER, T0 + 5, "test")
    [due] = apply_command(state, trigger, T0 + 5).firings
    assert due.jitter_ms == 0
    assert due.due_at_ms == T0 + 5


@pytest.mark.parametrize(
    ("schedule", "jitter", "message"),
    [
        (IntervalSchedule(60_000), 60_000, "period (60000 ms)"),
        (CronSchedule("*/5 * * * *"), 300_000, "period (300000 ms)"),
        (CronSchedule("0,1 * * * *"), 60_000, "period (60000 ms)"),  # the shortest gap
        (AtSchedule(T0), MAX_JITTER_MS + 1, "between 0 and 3600000"),
        (IntervalSchedule(86_400_000), -1, "between 0 and 3600000"),
    ],
)
def test_jitter_is_bounded_by_the_period_and_a_maximum(
    schedule: Schedule, jitter: int, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_spec(TaskSpec(schedule, TARGET, jitter_ms=jitter), T0)
    assert caught.value.field == "schedule.jitter_ms"
    assert message in caught.value.message
    validate_spec(TaskSpec(schedule, TARGET, jitter_ms=min(abs(jitter) - 1, MAX_JITTER_MS)), T0)


def test_the_rest_api_form_reads_and_renders_schedule_jitter() -> None:
    target = {"http": {"url": "https://example.com/hook"}}
    body = {"schedule": {"cron": "0 * * * *", "jitter_ms": 30_000}, "target": target}
    spec = parse_task_spec(body, T0)
    assert spec.jitter_ms == 30_000
    assert spec_to_json(spec)["schedule"] == {
        "cron": "0 * * * *",
        "timezone": "UTC",
        "jitter_ms": 30_000,
    }
    assert "jitter_ms" not in spec_to_json(TaskSpec(CronSchedule("0 * * * *"), TARGET))["schedule"]
    with pytest.raises(ValidationError) as caught:
        parse_task_spec({**body, "schedule": {"at": "2028-01-01T00:00:00Z", "jitter_ms": "1"}}, T0)
    assert caught.value.field == "schedule.jitter_ms"


def test_upcoming_times_stay_nominal() -> None:
    times = upcoming_fire_ms(CronSchedule("0 * * * *"), T0 + 1, 3)
    assert times == [T0 + k * 3_600_000 for k in range(1, 4)]
