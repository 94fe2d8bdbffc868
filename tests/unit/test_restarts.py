"""The dev supervisor's restart decisions, with time passed in."""

from __future__ import annotations

import pytest

from streams.ops.restarts import Backoff, RoleRun, after_exit, exit_cause, restarted

POLICY = Backoff(first_s=0.5, factor=2.0, max_s=4.0, stable_s=60.0, crash_loop_at=3)


def crash_repeatedly(times: int, ran_s: float) -> list[float]:
    run = RoleRun(started_at=0.0)
    now = 0.0
    delays = []
    for _ in range(times):
        now += ran_s
        decision = after_exit(run, now, POLICY)
        delays.append(decision.delay_s)
        now += decision.delay_s
        run = restarted(decision.run, now)
    return delays


def test_delays_double_and_are_capped() -> None:
    assert crash_repeatedly(6, ran_s=1.0) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_stable_run_starts_the_backoff_again() -> None:
    assert crash_repeatedly(4, ran_s=61.0) == [0.5, 0.5, 0.5, 0.5]
    run = RoleRun(started_at=0.0, exits_in_a_row=5)
    assert after_exit(run, 60.0, POLICY).delay_s == 0.5
    assert after_exit(run, 59.9, POLICY).delay_s == 4.0


def test_crash_loop_is_reported_from_the_third_exit_in_a_row() -> None:
    run = RoleRun(started_at=0.0)
    loops = []
    for _ in range(4):
        decision = after_exit(run, run.started_at + 1.0, POLICY)
        loops.append(decision.crash_loop)
        run = restarted(decision.run, run.started_at + 1.0 + decision.delay_s)
    assert loops == [False, False, True, True]


def test_restarted_keeps_the_row_and_moves_the_start() -> None:
    assert restarted(RoleRun(started_at=1.0, exits_in_a_row=2), 9.0) == RoleRun(9.0, 2)


@pytest.mark.parametrize(
    ("code", "cause"),
    [(1, "exit code 1"), (0, "exit code 0"), (-9, "killed by SIGKILL"), (-15, "killed by SIGTERM")],
)
def test_exit_cause(code: int, cause: str) -> None:
    assert exit_cause(code) == cause
