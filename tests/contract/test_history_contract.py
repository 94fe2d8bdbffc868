"""The history store contract, run over every implementation (SQLite, Cassandra)."""

from __future__ import annotations

from streams.core.events import ExecutionResult
from streams.core.model import Outcome
from streams.ports import DueSource, ExecutionHistory

DAY_MS = 86_400_000
BASE = 1_800_000_000_000


def result(
    task_id: str,
    scheduled: int,
    attempt: int = 1,
    outcome: Outcome = Outcome.SUCCEEDED,
    dispatcher: str = "d1",
) -> ExecutionResult:
    return ExecutionResult(
        f"{task_id}:{scheduled}:{attempt}",
        task_id,
        "acme",
        scheduled,
        attempt,
        outcome,
        outcome is Outcome.SUCCEEDED,
        scheduled + 5,
        scheduled + 9,
        5,
        200 if outcome is Outcome.SUCCEEDED else 503,
        None if outcome is Outcome.SUCCEEDED else "HTTP 503",
        dispatcher,
    )


def test_recording_is_idempotent_by_fire_id_and_the_first_outcome_stays(
    history: ExecutionHistory,
) -> None:
    first = [result("t1", BASE), result("t1", BASE + 1000)]
    assert history.record_executions(first) == 2
    redo = result("t1", BASE, dispatcher="d2")  # the same fire id, run again elsewhere
    assert history.record_executions([redo, result("t1", BASE + 2000)]) == 1
    runs = history.executions("t1")
    assert [r.fire_id for r in runs] == [
        f"t1:{BASE + 2000}:1",
        f"t1:{BASE + 1000}:1",
        f"t1:{BASE}:1",
    ]
    assert runs[-1] == first[0], "the first outcome of a fire id is the one kept"


def test_a_result_round_trips_every_field(history: ExecutionHistory) -> None:
    failed = result("t2", BASE, attempt=2, outcome=Outcome.FAILED)
    history.record_executions([failed])
    assert history.executions("t2") == [failed]


def test_executions_are_newest_first_across_days_and_limited(history: ExecutionHistory) -> None:
    rows = [
        result("t3", BASE + day * DAY_MS + i, attempt=a)
        for day in range(3)
        for i in range(2)
        for a in (1, 2)
    ]
    history.record_executions(rows)
    expected = sorted(rows, key=lambda r: (r.scheduled_at_ms, r.attempt), reverse=True)
    assert history.executions("t3", limit=100) == expected
    assert history.executions("t3", limit=5) == expected[:5]
    assert history.executions("nobody") == []


def test_executions_between_is_a_half_open_range_oldest_first(history: ExecutionHistory) -> None:
    rows = [result(f"task{i}", BASE + i * DAY_MS // 2) for i in range(6)]
    history.record_executions(rows)
    start, end = rows[1].scheduled_at_ms, rows[4].scheduled_at_ms
    assert history.executions_between(start, end) == rows[1:4]
    assert history.executions_between(start, end, limit=2) == rows[1:3]
    assert history.executions_between(end, start) == []


def test_recorded_returns_outcomes_with_their_due_source(history: ExecutionHistory) -> None:
    with_source, without = result("t4", BASE), result("t4", BASE + 1)
    history.record_executions([with_source], {with_source.fire_id: DueSource(2, 41)})
    history.record_executions([without])
    found = history.recorded([with_source.fire_id, without.fire_id, "t4:1:1", with_source.fire_id])
    assert set(found) == {with_source.fire_id, without.fire_id}
    assert found[with_source.fire_id].result == with_source
    assert found[with_source.fire_id].source == DueSource(2, 41)
    assert found[without.fire_id].source is None
    assert history.recorded([]) == {}


def test_recent_fire_ids_of_a_partition(history: ExecutionHistory) -> None:
    old, new, other = result("t5", BASE - 3_600_000), result("t5", BASE), result("t6", BASE)
    history.record_executions(
        [old, new, other],
        {
            old.fire_id: DueSource(1, 5),
            new.fire_id: DueSource(1, 9),
            other.fire_id: DueSource(2, 3),
        },
    )
    assert history.recent_fire_ids(1, BASE - 1000) == {new.fire_id: (BASE, 9)}
    assert history.recent_fire_ids(1, BASE - 7_200_000) == {
        old.fire_id: (BASE - 3_600_000, 5),
        new.fire_id: (BASE, 9),
    }
    assert history.recent_fire_ids(0, 0) == {}


def test_many_fire_ids_at_once(history: ExecutionHistory) -> None:
    rows = [result(f"m{i}", BASE) for i in range(1_200)]
    assert history.record_executions(rows) == 1_200
    ids = [r.fire_id for r in rows] + [f"x{i}:1:1" for i in range(100)]
    assert len(history.recorded(ids)) == 1_200


def test_an_uncontended_redo_still_keeps_the_first_outcome(history: ExecutionHistory) -> None:
    """contended=False only skips finding out who won; it never lets a later write win."""
    first = result("t7", BASE, outcome=Outcome.FAILED, dispatcher="d1")
    assert history.record_executions([first], {first.fire_id: DueSource(3, 7)}) == 1
    redo = result("t7", BASE, dispatcher="d2")  # same fire id, another outcome
    history.record_executions([redo], {redo.fire_id: DueSource(3, 8)}, contended=False)
    assert history.executions("t7") == [first]
    found = history.recorded([first.fire_id])[first.fire_id]
    assert (found.result, found.source) == (first, DueSource(3, 7))
    assert history.recent_fire_ids(3, BASE - 1) == {first.fire_id: (BASE, 7)}


def test_recent_fire_ids_do_not_depend_on_the_local_clock(history: ExecutionHistory) -> None:
    """A window far from this machine's clock (past or future) is read whole."""
    far = BASE + 40 * DAY_MS
    rows = [result("t8", far + i * 3_600_000) for i in range(3)]
    history.record_executions(rows, {r.fire_id: DueSource(4, i) for i, r in enumerate(rows)})
    assert history.recent_fire_ids(4, far) == {
        r.fire_id: (r.scheduled_at_ms, i) for i, r in enumerate(rows)
    }


def test_a_window_of_any_width_reads_only_what_is_there(history: ExecutionHistory) -> None:
    """The widest window a caller can ask for (all of time) answers at once, oldest first,
    and stops at the limit (on Cassandra it once built a query per calendar day)."""
    rows = [result(f"w{i}", BASE + i * 3 * DAY_MS) for i in range(4)]
    history.record_executions(rows)
    assert history.executions_between(0, 2**62) == rows
    assert history.executions_between(0, 2**62, limit=2) == rows[:2]


def test_recording_the_same_outcome_again_adds_nothing(history: ExecutionHistory) -> None:
    """A replay over a store that has the window: identical outcomes are not new."""
    rows = [result("t9", BASE), result("t9", BASE + 1000)]
    assert history.record_executions(rows) == 2
    assert history.record_executions(rows) == 0
    assert history.record_executions([*rows, result("t9", BASE + 2000)]) == 1
    assert len(history.executions("t9")) == 3
