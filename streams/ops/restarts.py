"""When to restart a role that exited: the supervisor's decisions, without I/O.

``kronwheel dev`` restarts a role that exits, in the same slot, after a delay
that doubles with each exit in a row (capped), so a role that crashes at once
does not spin. A role that ran for ``stable_s`` before it exited has
recovered: its next crash starts the backoff again from the first delay.
After ``crash_loop_at`` exits in a row the role is crash-looping, which the
supervisor reports (a log line and a gauge) while it keeps trying.

Time is passed in (monotonic seconds), so the tests need no clock.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    # A run this long means the role recovered; shorter runs count as a row.
    stable_s: float = 60.0
    crash_loop_at: int = 3


@dataclass(frozen=True)
class RoleRun:
    """One role's restart bookkeeping: when its current process started and how
    many times in a row it has exited after a short run."""

    started_at: float
    exits_in_a_row: int = 0


@dataclass(frozen=True)
class Restart:
    run: RoleRun  # the bookkeeping to keep (started_at is set again on the restart)
    delay_s: float
    crash_loop: bool


def after_exit(run: RoleRun, now: float, policy: Backoff) -> Restart:
    """What to do about a role that exited at ``now``."""
    ran_s = now - run.started_at
    in_a_row = 1 if ran_s >= policy.stable_s else run.exits_in_a_row + 1
    delay = min(policy.max_s, policy.first_s * policy.factor ** (in_a_row - 1))
    return Restart(
        run=RoleRun(started_at=run.started_at, exits_in_a_row=in_a_row),
        delay_s=delay,
        crash_loop=in_a_row >= policy.crash_loop_at,
    )


def restarted(run: RoleRun, now: float) -> RoleRun:
    """The bookkeeping of a role started again at ``now`` (the row is kept)."""
    return RoleRun(started_at=now, exits_in_a_row=run.exits_in_a_row)


def exit_cause(returncode: int) -> str:
    """A person's reading of a Popen return code: "exit code 1", "killed by SIGKILL"."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
