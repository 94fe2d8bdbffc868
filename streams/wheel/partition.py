"""One partition of the processor: its on-disk index, its wheel, its outputs.

No Kafka here: records come in as :class:`~streams.ports.KafkaMessage`
values and leave as :class:`Output` values that the processor writes inside
its transaction, so this is tested with plain objects and a fake clock.

Memory is bounded by a horizon. Every task is in the :class:`PartitionStore`
(on disk) with the time of its next timer; only timers due before
``promoted_until_ms`` sit in the in-memory wheel. Every ``promote_step_ms``
the horizon moves on and the index hands over the tasks that came into it.
A task whose timer changes goes to the wheel if the new time is inside the
horizon, and to the index alone otherwise. The index is written only when
the step's outputs are taken, so a promotion also looks at the step's own
changes: a task created in the step in which the horizon moves over its
timer is handed over from there (the index does not have it yet).

Time never goes back here: the partition's time is the latest it has been
told. After a backward step of the wall clock (NTP) it stands still until the
clock catches up, so nothing is fired before a time it already passed, and
no timer is dropped as "already due" while firing it would do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter

from streams import metrics
from streams.core.errors import MalformedEvent
from streams.core.events import CommandKind, DueTask, TaskCommand, TaskState, TaskStatus
from streams.core.lifecycle import Outcome, Transition, apply_command, fire, next_due_ms
from streams.core.timingwheel import TimingWheel
from streams.core.validation import DEFAULT_RULES, Rules
from streams.kafka.records import (
    decode_command,
    decode_state,
    encode_dead_letter,
    encode_state,
)
from streams.kafka.topics import DEAD
from streams.ports import KafkaMessage
from streams.wheel.guarded import firing_dead_letter
from streams.wheel.outputs import (
    _NO_HEADER,
    DUE_HEADER,
    ChangelogRecord,
    Headers,
    Output,
    changelog_output,
    dead_letter_output,
    due_from_header,
    due_output,
    given_up_retry_outputs,
)
from streams.wheel.statestore import PartitionStore

__all__ = [
    "DUE_HEADER",
    "ChangelogRecord",
    "Headers",
    "Output",
    "PartitionWheel",
    "WheelConfig",
    "due_from_header",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WheelConfig:
    horizon_ms: int = 60_000
    promote_step_ms: int = 1_000
    misfire_grace_ms: int = 10_000
    rules: Rules = DEFAULT_RULES  # the one validation of a command (streams.core.validation)


class PartitionWheel:
    def __init__(
        self, partition: int, store: PartitionStore, now_ms: int, config: WheelConfig
    ) -> None:
        self.partition = partition
        self.store = store
        self.config = config
        self.wheel: TimingWheel[str] = TimingWheel(now_ms)
        self.now_ms = now_ms  # the latest time this partition was told: never goes back
        self._clock_behind = False
        self.promoted_until_ms: int | None = None  # nothing promoted before start()
        self._due_now: list[str] = []
        # Decoded states of the tasks whose timers are in the wheel (bounded by the horizon).
        self._states: dict[str, TaskState] = {}
        self._outbox: list[Output] = []
        # This step's writes per task, in order, and whether each task was in
        # the index before the step; flushed by take_outputs().
        self._dirty: dict[str, list[TaskState | None]] = {}
        self._existed: dict[str, bool] = {}
        # The timer of each dirty task's last state: worked out once per write,
        # for the wheel, the index and the changelog header alike.
        self._dirty_due: dict[str, int | None] = {}

    # --- restore ------------------------------------------------------------

    def restore(
        self, records: Iterable[ChangelogRecord], next_offset: int | None = None, now_ms: int = 0
    ) -> int:
        """Apply changelog records to the index, oldest first; returns how many were read.

        From the changelog's start into an empty store, or from the offset the
        store has applied (``store.resume_from``) into the store it left. With
        ``next_offset`` (where the reading stopped), the store records it."""
        count = 0

        def rows() -> Iterable[tuple[str, int | None, bytes | None]]:
            nonlocal count
            for key, value, headers in records:
                count += 1
                if value is None:
                    yield key.decode(), None, None
                else:
                    due_ms = due_from_header(headers)
                    if due_ms is _NO_HEADER:
                        due_ms = next_due_ms(decode_state(value))
                    yield key.decode(), due_ms, value

        self.store.load(rows(), next_offset, now_ms)
        self.store.create_due_index()
        return count

    def start(self, now_ms: int) -> list[Output]:
        """After the restore: load the horizon and fire what fell due meanwhile."""
        self.now_ms = now_ms
        self.wheel = TimingWheel(now_ms)
        self.promoted_until_ms = now_ms + self.config.horizon_ms
        for task_id, due_ms in self.store.due_before(None, self.promoted_until_ms):
            if not self.wheel.add(task_id, due_ms):
                self._due_now.append(task_id)
        self.tick(now_ms)
        return self.take_outputs()

    # --- commands and time ---------------------------------------------------

    def handle(self, message: KafkaMessage, now_ms: int) -> None:
        """Apply one record of tasks.commands; a bad one becomes a dead letter."""
        now_ms = self._advance_time(now_ms)
        try:
            command = decode_command(message.value() or b"", self.config.rules)
            if message.key() != command.task_id.encode():
                raise MalformedEvent(
                    f"key {message.key()!r} is not the task id {command.task_id!r}: "
                    "commands must be keyed by task id"
                )
        except MalformedEvent as exc:
            _command_counter("unknown", Outcome.REJECTED).inc()
            self._dead_letter(message, str(exc), "MalformedEvent", now_ms)
            return
        try:
            state = self._load(command.task_id)
            transition = apply_command(state, command, now_ms)
        except Exception as exc:  # one command must never stop the partition
            log.exception("applying %s to %s failed", command.kind.value, command.task_id)
            _command_counter(command.kind.value, Outcome.REJECTED).inc()
            self._dead_letter(message, f"{type(exc).__name__}: {exc}", type(exc).__name__, now_ms)
            return
        _command_counter(command.kind.value, transition.outcome).inc()
        if transition.rejected:
            self._dead_letter(message, transition.reason, "RejectedCommand", now_ms)
            return
        if transition.outcome == Outcome.IGNORED and command.kind is CommandKind.RETRY:
            self._give_up_retry(message, command, transition.reason, now_ms)
        elif transition.outcome == Outcome.IGNORED:
            log.info(
                "ignored %s %s[%s]@%s task=%s: %s",
                command.kind.value,
                message.topic(),
                message.partition(),
                message.offset(),
                command.task_id,
                transition.reason,
            )
        self._apply(command.task_id, state is not None, transition)
        if self._due_now:  # a trigger, or a create whose time has come, fires at once
            self._fire(self._take_due_now(), now_ms)

    def tick(self, now_ms: int) -> None:
        """Fire every timer due by ``now_ms``; move the horizon on when its step comes."""
        if self.promoted_until_ms is None:
            return
        now_ms = self._advance_time(now_ms)
        if now_ms + self.config.horizon_ms - self.promoted_until_ms >= self.config.promote_step_ms:
            self._promote(now_ms + self.config.horizon_ms)
        while True:
            expired = [task_id for task_id, _ in self.wheel.advance(now_ms)]
            expired.extend(self._take_due_now())
            if not expired:
                return
            self._fire(expired, now_ms)

    def take_outputs(self) -> list[Output]:
        """What this partition's work since the last call must write, in one transaction.

        Writes are coalesced per task: only the last state of a task matters to
        a restore, and the transaction is all or nothing anyway. Before a
        tombstone, the last state is kept when the task is new in this step (so
        every task shows up in the changelog at least once) or was cancelled (so
        readers can tell a cancel from a completion). Firings and dead letters
        go first: on a broker that shows aborted records (the dev broker), a
        crash mid-flush then repeats a firing rather than losing one.
        """
        outputs, self._outbox = self._outbox, []
        for task_id, writes in self._dirty.items():
            key = task_id.encode()
            final = writes[-1]
            existed = self._existed.pop(task_id)
            if final is None:
                shown = _last_state(writes)
                # Readers of the changelog (the API's read model) must see every
                # task at least once, and see why a task ended: a task created and
                # finished in the same step, or a cancelled one, keeps its last
                # state before the tombstone.
                if shown is not None and (not existed or shown.status is TaskStatus.CANCELLED):
                    outputs.append(self._changelog(key, shown, None))
                if existed:
                    self.store.delete(task_id)
                outputs.append(self._changelog(key, None, None))
            else:
                encoded = encode_state(final)
                due_ms = self._dirty_due[task_id]
                self.store.put(task_id, encoded, due_ms, existed)
                outputs.append(changelog_output(self.partition, key, final, encoded, due_ms))
        self._dirty.clear()
        self._dirty_due.clear()
        return outputs

    def next_wakeup_ms(self) -> int | None:
        """When ``tick`` next has work: a timer, or the horizon's next step."""
        if self.promoted_until_ms is None:
            return None
        step_at = self.promoted_until_ms - self.config.horizon_ms + self.config.promote_step_ms
        expiry = self.wheel.next_expiry_ms()
        return step_at if expiry is None else min(expiry, step_at)

    def report_sizes(self) -> None:
        label = str(self.partition)
        metrics.WHEEL_TIMERS.labels(partition=label).set(len(self.wheel))
        metrics.INDEX_TASKS.labels(partition=label).set(len(self.store))

    def close(self, remove_store: bool = True) -> None:
        """``remove_store=False`` keeps the store's file for a restart in this slot."""
        label = str(self.partition)
        metrics.WHEEL_TIMERS.labels(partition=label).set(0)
        metrics.INDEX_TASKS.labels(partition=label).set(0)
        self.store.close(remove=remove_store)

    # --- internals -------------------------------------------------------------

    def _advance_time(self, now_ms: int) -> int:
        if now_ms >= self.now_ms:
            self.now_ms = now_ms
            self._clock_behind = False
        elif not self._clock_behind:  # once per step back, not once per call
            self._clock_behind = True
            log.warning(
                "partition %d: the clock went back %d ms; holding the time until it catches up",
                self.partition,
                self.now_ms - now_ms,
            )
        return self.now_ms

    def _promote(self, until_ms: int) -> None:
        since_ms = self.promoted_until_ms
        # Tasks changed in this step are not in the index yet (or it holds their
        # old timer): their current state decides, against the new horizon.
        for task_id, due_ms in self.store.due_before(since_ms, until_ms):
            if task_id not in self._dirty and not self.wheel.add(task_id, due_ms):
                self._due_now.append(task_id)
        self.promoted_until_ms = until_ms
        for task_id, writes in self._dirty.items():
            final = writes[-1]
            if final is None:
                continue
            timer_ms = self._dirty_due[task_id]
            if timer_ms is not None and (since_ms is None or timer_ms >= since_ms):
                self._set_timer(task_id, final, timer_ms)

    def _take_due_now(self) -> list[str]:
        due_now, self._due_now = self._due_now, []
        return due_now

    def _load(self, task_id: str) -> TaskState | None:
        writes = self._dirty.get(task_id)
        if writes is not None:
            return writes[-1]
        cached = self._states.get(task_id)
        if cached is not None:
            return cached
        data = self.store.get(task_id)
        return decode_state(data) if data is not None else None

    def _fire(self, task_ids: list[str], now_ms: int) -> None:
        for task_id in task_ids:
            try:
                state = self._load(task_id)
                if state is None:
                    continue  # ended since its timer was set
                transition = fire(state, now_ms, self.config.misfire_grace_ms)
            except Exception as exc:  # one task must never stop the partition
                self._firing_failed(task_id, exc, now_ms)
                continue
            if transition.writes:
                self._apply(task_id, True, transition)
                continue
            # Nothing was due after all: keep the timer it has, never drop it.
            due_ms = next_due_ms(state)
            if due_ms is not None and due_ms > now_ms:
                self._set_timer(task_id, state, due_ms)
            elif due_ms is not None:
                log.error("task %s: timer at %d is due and firing changes nothing", task_id, due_ms)

    def _apply(self, task_id: str, existed: bool, transition: Transition) -> None:
        if transition.writes:
            if task_id not in self._dirty:
                self._existed[task_id] = existed
            self._dirty.setdefault(task_id, []).extend(transition.writes)
            final = transition.writes[-1]
            if final is None:
                self.wheel.cancel(task_id)
                self._states.pop(task_id, None)
            else:
                due_ms = self._dirty_due[task_id] = next_due_ms(final)
                self._set_timer(task_id, final, due_ms)
        key = task_id.encode()
        for due in transition.firings:
            self._outbox.append(self._due(key, due))

    def _set_timer(self, task_id: str, state: TaskState, due_ms: int | None) -> None:
        assert self.promoted_until_ms is not None
        if due_ms is None or due_ms >= self.promoted_until_ms:
            # Beyond the horizon: the index hands it over later; no memory meanwhile.
            self.wheel.cancel(task_id)
            self._states.pop(task_id, None)
            return
        # Near: keep the decoded state with the timer, so firing needs no disk read.
        self._states[task_id] = state
        if not self.wheel.add(task_id, due_ms):
            self._due_now.append(task_id)

    def _changelog(self, key: bytes, state: TaskState | None, encoded: bytes | None) -> Output:
        return changelog_output(self.partition, key, state, encoded)

    def _due(self, key: bytes, due: DueTask) -> Output:
        return due_output(self.partition, key, due)

    def _give_up_retry(
        self, message: KafkaMessage, command: TaskCommand, reason: str, now_ms: int
    ) -> None:
        self._outbox.extend(given_up_retry_outputs(message, command, reason, now_ms))

    def _firing_failed(self, task_id: str, exc: Exception, now_ms: int) -> None:
        """A task whose timer cannot be handled: a dead letter naming the error, no timer."""
        log.exception("firing %s failed on partition %d", task_id, self.partition)
        metrics.DEAD_LETTERS.labels(role="processor", reason=type(exc).__name__).inc()
        dead = firing_dead_letter(task_id, self.partition, exc, now_ms)
        self._outbox.append(Output(DEAD, task_id.encode(), encode_dead_letter(dead), None))

    def _dead_letter(
        self, message: KafkaMessage, reason: str, error_class: str, now_ms: int
    ) -> None:
        self._outbox.append(dead_letter_output(message, reason, error_class, now_ms))


# Per command and per firing, on the hot path: resolve a series once, not a
# labels() lookup (a lock and a tuple key) every time.
@cache
def _command_counter(kind: str, result: str) -> Counter:
    return metrics.COMMANDS.labels(kind=kind, result=result)


def _last_state(writes: list[TaskState | None]) -> TaskState | None:
    """The last state written before the final tombstone, if any."""
    return next((w for w in reversed(writes[:-1]) if w is not None), None)
