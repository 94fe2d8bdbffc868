"""What commands and the passing of time do to one task: the processor's pure core.

Two functions drive every change of a task's state:

* :func:`apply_command` — a command from ``tasks.commands`` (create, update,
  pause, resume, cancel, trigger, retry);
* :func:`fire` — the task's timer expired: emit what is due (scheduled runs,
  retries), apply the misfire policy to runs that are too late, and move on.

Both take the time as an argument and return a :class:`Transition`: the new
state (``None`` is a tombstone), whether the changelog needs a write, and the
firings to emit. The processor, ``kronwheel replay state`` and the tests all
fold commands through these same functions.

Determinism matters because a transaction can abort and its input be read
again: everything derived from a command uses the command's own
``issued_at_ms``, never the processing time, so a second application gives
the same state and the same fire ids. The processing time is used only for
what really depends on it: what is due now, and how late it is.

Rules worth knowing (also in docs/processor.md):

* A command id applied recently (the last :data:`RECENT_COMMANDS`) is a
  duplicate and changes nothing.
* A one-time task, or a schedule that has ended, becomes COMPLETED and stays
  in state for :func:`retention_ms` after its last firing, so the retries the
  dispatchers send back still find it; then its timer tombstones it.
* CANCEL writes a CANCELLED state and then a tombstone, so readers of the
  changelog see why the task went away; any other tombstone means the task
  completed. Pending retries are dropped.
* PAUSE stops scheduled runs, not the retries of runs already fired. RESUME
  continues from the next run after the resume; runs missed while paused are
  not misfires and are not fired.
* Misfires: a scheduled run later than the grace (default 10 s: a partition
  without an owner, a long stall) is handled by the task's policy:
  ``fire_once`` fires the first missed run once (reason ``misfire``) and
  skips the rest, ``fire_all`` fires every missed run up to
  :data:`FIRE_ALL_CAP`, ``skip`` fires none. Either way the schedule resumes
  at the first run after now.
* Jitter (``schedule.jitter_ms``): each scheduled run is due at its nominal
  time plus its offset (:mod:`streams.core.jitter`); the timer, the misfire
  grace and lateness go by that instant, while ``next_fire_ms``,
  ``scheduled_at_ms`` and the fire id keep the nominal time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from streams.core.events import (
    CommandKind,
    DueTask,
    FireReason,
    RetryRequest,
    TaskCommand,
    TaskState,
    TaskStatus,
)
from streams.core.ids import fire_id
from streams.core.jitter import jitter_offset_ms
from streams.core.model import HttpTarget, Misfire, TaskSpec
from streams.core.schedule import first_fire_ms, next_fire_ms

RECENT_COMMANDS = 32
FIRE_ALL_CAP = 100
DEFAULT_MISFIRE_GRACE_MS = 10_000
# Kept after the last run of a finished task on top of its retry window: a
# dispatcher that is slow to report a failure can still get its retry in.
COMPLETED_MARGIN_MS = 10 * 60_000


class Outcome:
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Transition:
    state: TaskState | None
    outcome: str = Outcome.APPLIED
    # Changelog records to write, in order: a final state before a tombstone
    # lets readers see how the task ended. Empty: nothing changed.
    writes: tuple[TaskState | None, ...] = ()
    firings: list[DueTask] = field(default_factory=list)
    reason: str = ""

    @property
    def rejected(self) -> bool:
        return self.outcome == Outcome.REJECTED


def _unchanged(state: TaskState | None, outcome: str, reason: str = "") -> Transition:
    return Transition(state, outcome, (), [], reason)


def _write(state: TaskState, firings: list[DueTask] | None = None) -> Transition:
    """The new state, tombstoned at once if nothing can ever happen to it again."""
    if state.status is TaskStatus.COMPLETED and next_due_ms(state) is None:
        return Transition(None, Outcome.APPLIED, (None,), firings or [])
    return Transition(state, Outcome.APPLIED, (state,), firings or [])


# --- timers -----------------------------------------------------------------------


def retention_ms(spec: TaskSpec) -> int:
    """How long a finished task waits for retries of its last run."""
    if spec.retry.max_attempts <= 1:
        return 0
    backoffs = total_backoff_ms(
        spec.retry.backoff_ms, spec.retry.max_backoff_ms, spec.retry.max_attempts - 1
    )
    timeout_ms = spec.target.timeout_ms if isinstance(spec.target, HttpTarget) else 0
    # Jitter can stretch a backoff; allow each twice over.
    return 2 * backoffs + spec.retry.max_attempts * timeout_ms + COMPLETED_MARGIN_MS


def total_backoff_ms(first_ms: int, cap_ms: int, retries: int) -> int:
    """sum(min(first_ms * 2**i, cap_ms) for i in range(retries)), in closed form.

    The doubling part is a geometric series up to the first capped term, the
    rest are all the cap: O(log) however many retries a record asks for.
    """
    if retries <= 0 or first_ms <= 0:
        return 0
    if first_ms >= cap_ms:
        return retries * max(cap_ms, 0)
    # The smallest j with first_ms << j >= cap_ms: terms before it double, the rest are capped.
    doubling = ((cap_ms - 1) // first_ms).bit_length()
    uncapped = min(retries, doubling)
    return first_ms * ((1 << uncapped) - 1) + (retries - uncapped) * cap_ms


def run_due_ms(state: TaskState, nominal_ms: int) -> int:
    """When the scheduled run at ``nominal_ms`` is due: plus its jitter offset."""
    jitter_ms = state.spec.jitter_ms
    return (
        nominal_ms + jitter_offset_ms(state.task_id, nominal_ms, jitter_ms)
        if jitter_ms
        else nominal_ms
    )


def next_due_ms(state: TaskState) -> int | None:
    """The task's one timer: its earliest scheduled run (jittered), retry or expiry."""
    candidates = [retry.run_at_ms for retry in state.pending_retries]
    if state.status is TaskStatus.SCHEDULED and state.next_fire_ms is not None:
        candidates.append(run_due_ms(state, state.next_fire_ms))
    elif (
        state.status is TaskStatus.COMPLETED
        and state.last_fire_ms is not None
        and not state.pending_retries
    ):
        # The end of the retention counts only when no retry waits (a retry
        # keeps the task; ending it first would leave a timer that changes
        # nothing), and from the last activity: a retry that ran restarts it.
        keep = retention_ms(state.spec)
        if keep > 0:
            candidates.append(max(state.last_fire_ms, state.updated_at_ms) + keep)
    return min(candidates) if candidates else None


# --- commands ---------------------------------------------------------------------


def apply_command(state: TaskState | None, command: TaskCommand, now_ms: int) -> Transition:
    """Apply one command to the task's current state (None: no such task)."""
    if state is not None and command.command_id in state.recent_command_ids:
        return _unchanged(state, Outcome.DUPLICATE)
    if command.kind is CommandKind.CREATE:
        return _create(state, command)
    if state is None or state.status is TaskStatus.CANCELLED:
        if command.kind in (CommandKind.CANCEL, CommandKind.RETRY):
            # Cancelling twice, or a retry that arrives after the task ended:
            # nothing left to do, and nothing wrong with the command.
            return _unchanged(state, Outcome.IGNORED, f"task {command.task_id} has ended")
        return _unchanged(
            state, Outcome.REJECTED, f"{command.kind.value}: task {command.task_id} does not exist"
        )
    if command.tenant != state.tenant:
        return _unchanged(
            state,
            Outcome.REJECTED,
            f"{command.kind.value}: task {command.task_id} belongs to another tenant",
        )
    handler = _HANDLERS[command.kind]
    return handler(state, command, now_ms)


def _remember(state: TaskState, command: TaskCommand) -> TaskState:
    recent = (*state.recent_command_ids, command.command_id)[-RECENT_COMMANDS:]
    return replace(
        state,
        recent_command_ids=recent,
        last_command_id=command.command_id,
        updated_at_ms=command.issued_at_ms,
    )


def _create(state: TaskState | None, command: TaskCommand) -> Transition:
    if state is not None:
        return _unchanged(state, Outcome.REJECTED, f"task {command.task_id} already exists")
    assert command.spec is not None  # records.decode_command guarantees it
    first = first_fire_ms(command.spec.schedule, command.issued_at_ms)
    created = TaskState(
        task_id=command.task_id,
        tenant=command.tenant,
        spec=command.spec,
        # None: an interval whose end is already past
        status=TaskStatus.SCHEDULED if first is not None else TaskStatus.COMPLETED,
        next_fire_ms=first,
        last_fire_ms=None,
        fire_count=0,
        created_at_ms=command.issued_at_ms,
        updated_at_ms=command.issued_at_ms,
        last_command_id=command.command_id,
        recent_command_ids=(command.command_id,),
    )
    return _write(created)


def _update(state: TaskState, command: TaskCommand, now_ms: int) -> Transition:
    assert command.spec is not None
    if state.status is TaskStatus.COMPLETED:
        return _unchanged(state, Outcome.REJECTED, f"UPDATE: task {state.task_id} has completed")
    updated = _remember(replace(state, spec=command.spec), command)
    if command.spec.schedule != state.spec.schedule:
        following = first_fire_ms(command.spec.schedule, command.issued_at_ms)
        updated = replace(updated, next_fire_ms=following)
        if following is None and updated.status is TaskStatus.SCHEDULED:
            updated = replace(updated, status=TaskStatus.COMPLETED)
    return _write(updated)


def _pause(state: TaskState, command: TaskCommand, now_ms: int) -> Transition:
    if state.status is not TaskStatus.SCHEDULED:
        return _unchanged(state, Outcome.IGNORED, f"task {state.task_id} is {state.status.value}")
    return _write(_remember(replace(state, status=TaskStatus.PAUSED), command))


def _resume(state: TaskState, command: TaskCommand, now_ms: int) -> Transition:
    if state.status is not TaskStatus.PAUSED:
        return _unchanged(state, Outcome.IGNORED, f"task {state.task_id} is {state.status.value}")
    following = first_fire_ms(state.spec.schedule, command.issued_at_ms)
    resumed = replace(state, status=TaskStatus.SCHEDULED, next_fire_ms=following)
    if following is None:
        resumed = replace(resumed, status=TaskStatus.COMPLETED)
    return _write(_remember(resumed, command))


def _cancel(state: TaskState, command: TaskCommand, now_ms: int) -> Transition:
    cancelled = _remember(
        replace(state, status=TaskStatus.CANCELLED, next_fire_ms=None, pending_retries=()),
        command,
    )
    return Transition(None, Outcome.APPLIED, (cancelled, None), [])


def _trigger(state: TaskState, command: TaskCommand, now_ms: int) -> Transition:
    if state.status is TaskStatus.COMPLETED:
        return _unchanged(state, Outcome.REJECTED, f"TRIGGER: task {state.task_id} has completed")
    # The run is "scheduled" at the command's own instant: a re-read command
    # yields the same fire id, so the run cannot happen twice.
    firing = _due(state, command.issued_at_ms, 1, now_ms, FireReason.TRIGGER)
    triggered = _remember(replace(state, fire_count=state.fire_count + 1), command)
    return _write(triggered, [firing])


def _retry(state: TaskState, command: TaskCommand, now_ms: int) -> Transition:
    request = command.retry
    assert request is not None  # records.decode_command guarantees it
    if request.attempt > state.spec.retry.max_attempts or request.attempt < 2:
        return _unchanged(
            state,
            Outcome.REJECTED,
            f"RETRY: attempt {request.attempt} is outside 2..{state.spec.retry.max_attempts}",
        )
    if any(_same_run(request, pending) for pending in state.pending_retries):
        return _unchanged(state, Outcome.DUPLICATE)
    retried = replace(state, pending_retries=(*state.pending_retries, request))
    return _write(_remember(retried, command))


def _same_run(a: RetryRequest, b: RetryRequest) -> bool:
    return a.scheduled_at_ms == b.scheduled_at_ms and a.attempt == b.attempt


_HANDLERS = {
    CommandKind.UPDATE: _update,
    CommandKind.PAUSE: _pause,
    CommandKind.RESUME: _resume,
    CommandKind.CANCEL: _cancel,
    CommandKind.TRIGGER: _trigger,
    CommandKind.RETRY: _retry,
}


# --- time -------------------------------------------------------------------------


def fire(
    state: TaskState, now_ms: int, misfire_grace_ms: int = DEFAULT_MISFIRE_GRACE_MS
) -> Transition:
    """The task's timer expired: emit everything due at ``now_ms`` and move on."""
    firings: list[DueTask] = []
    updated = state
    due_retries = [r for r in state.pending_retries if r.run_at_ms <= now_ms]
    if due_retries:
        for retry in sorted(due_retries, key=lambda r: (r.run_at_ms, r.attempt)):
            firings.append(
                _due(state, retry.scheduled_at_ms, retry.attempt, now_ms, FireReason.RETRY)
            )
        waiting = tuple(r for r in state.pending_retries if r.run_at_ms > now_ms)
        updated = replace(state, pending_retries=waiting, updated_at_ms=now_ms)
    if state.status is TaskStatus.SCHEDULED and state.next_fire_ms is not None:
        if run_due_ms(state, state.next_fire_ms) <= now_ms:
            updated = _fire_schedule(updated, now_ms, misfire_grace_ms, firings)
    elif state.status is TaskStatus.COMPLETED and not updated.pending_retries:
        expiry = next_due_ms(updated)
        if expiry is not None and expiry <= now_ms:
            return Transition(None, Outcome.APPLIED, (None,), firings)
    if updated is state:
        return _unchanged(state, Outcome.IGNORED)
    return _write(updated, firings)


def _fire_schedule(
    state: TaskState, now_ms: int, grace_ms: int, firings: list[DueTask]
) -> TaskState:
    schedule = state.spec.schedule
    run = state.next_fire_ms
    fired: list[int] = []

    def is_due(nominal: int | None) -> bool:
        return nominal is not None and run_due_ms(state, nominal) <= now_ms

    # On time, or late within the grace: every run is fired (a short stall).
    while run is not None and 0 <= now_ms - run_due_ms(state, run) <= grace_ms:
        firings.append(_due(state, run, 1, now_ms, FireReason.SCHEDULE))
        fired.append(run)
        run = next_fire_ms(schedule, run)
    if run is not None and is_due(run):  # the rest missed the grace: a misfire
        policy = state.spec.misfire
        missed: list[int] = []
        if policy is Misfire.FIRE_ONCE:
            missed = [run]
        elif policy is Misfire.FIRE_ALL:
            cursor: int | None = run
            while cursor is not None and is_due(cursor) and len(missed) < FIRE_ALL_CAP:
                missed.append(cursor)
                cursor = next_fire_ms(schedule, cursor)
        for scheduled in missed:
            firings.append(_due(state, scheduled, 1, now_ms, FireReason.MISFIRE))
        fired.extend(missed)
        # The schedule resumes at the first run not yet due. With jitter, a run
        # nominally before now may still be ahead (jitter < period: at most one).
        run = next_fire_ms(schedule, run, after_ms=now_ms - state.spec.jitter_ms)
        while is_due(run):
            assert run is not None
            run = next_fire_ms(schedule, run)
    return replace(
        state,
        status=TaskStatus.COMPLETED if run is None else state.status,
        next_fire_ms=run,
        last_fire_ms=fired[-1] if fired else state.last_fire_ms,
        fire_count=state.fire_count + len(fired),
        updated_at_ms=max(state.updated_at_ms, now_ms),
    )


def _due(
    state: TaskState, scheduled_ms: int, attempt: int, now_ms: int, reason: FireReason
) -> DueTask:
    spec = state.spec
    return DueTask(
        fire_id=fire_id(state.task_id, scheduled_ms, attempt),
        task_id=state.task_id,
        tenant=state.tenant,
        name=spec.name,
        scheduled_at_ms=scheduled_ms,
        attempt=attempt,
        emitted_at_ms=now_ms,
        target=spec.target,
        retry=spec.retry,
        notify=spec.notify,
        reason=reason,
        # A trigger is "scheduled" at its command's instant: no jitter.
        jitter_ms=0
        if reason is FireReason.TRIGGER
        else jitter_offset_ms(state.task_id, scheduled_ms, spec.jitter_ms),
    )
