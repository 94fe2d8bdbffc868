"""The live tasks of the partitions a processor owns, and what falls due when.

Pure: commands and the current time go in; changelog updates and firings come
out. The walking skeleton orders tasks with a binary heap; the timing-wheel
issue replaces it with the hierarchical wheel behind the same methods.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace

from streams.core.errors import MalformedEvent
from streams.core.events import CommandKind, DueTask, TaskCommand, TaskState, TaskStatus
from streams.core.ids import fire_id
from streams.core.schedule import first_fire_ms, next_fire_ms


@dataclass(frozen=True, slots=True)
class StateChange:
    """A changelog write: the new state, or None for a tombstone (the task ended)."""

    task_id: str
    state: TaskState | None


@dataclass(slots=True)
class Effects:
    changes: list[StateChange]
    firings: list[DueTask]


class TaskTable:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskState] = {}
        # (due_ms, task_id); an entry whose task moved or ended is skipped when popped.
        self._heap: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, task_id: str) -> TaskState | None:
        return self._tasks.get(task_id)

    def next_due_ms(self) -> int | None:
        while self._heap:
            due_ms, task_id = self._heap[0]
            state = self._tasks.get(task_id)
            if state is not None and state.next_fire_ms == due_ms:
                return due_ms
            heapq.heappop(self._heap)  # stale entry
        return None

    def apply(self, command: TaskCommand, now_ms: int) -> Effects:
        """Apply one command. Raises MalformedEvent for a command it cannot apply."""
        existing = self._tasks.get(command.task_id)
        if command.kind is CommandKind.CREATE:
            if existing is not None:
                # Idempotent: the same create seen again (a redelivery) changes nothing;
                # a different create for a live id is refused, not merged.
                if existing.last_command_id == command.command_id:
                    return Effects([], [])
                raise MalformedEvent(f"task {command.task_id} already exists")
            assert command.spec is not None  # records.decode_command guarantees it
            state = TaskState(
                task_id=command.task_id,
                tenant=command.tenant,
                spec=command.spec,
                status=TaskStatus.SCHEDULED,
                next_fire_ms=first_fire_ms(command.spec.schedule, now_ms),
                last_fire_ms=None,
                fire_count=0,
                created_at_ms=now_ms,
                updated_at_ms=now_ms,
                last_command_id=command.command_id,
            )
            if state.next_fire_ms is None:
                return Effects([StateChange(command.task_id, None)], [])
            self._put(state)
            return Effects([StateChange(command.task_id, state)], [])
        if command.kind is CommandKind.CANCEL:
            if existing is None:
                return Effects([], [])
            del self._tasks[command.task_id]
            return Effects([StateChange(command.task_id, None)], [])
        raise MalformedEvent(
            f"{command.kind.value} commands are not handled by this processor version yet"
        )

    def fire_due(self, now_ms: int) -> Effects:
        """Fire every task due at or before ``now_ms``; reschedule recurring ones."""
        effects = Effects([], [])
        while (due_ms := self.next_due_ms()) is not None and due_ms <= now_ms:
            _, task_id = heapq.heappop(self._heap)
            state = self._tasks[task_id]
            spec = state.spec
            effects.firings.append(
                DueTask(
                    fire_id=fire_id(task_id, due_ms, 1),
                    task_id=task_id,
                    tenant=state.tenant,
                    name=spec.name,
                    scheduled_at_ms=due_ms,
                    attempt=1,
                    emitted_at_ms=now_ms,
                    target=spec.target,
                    retry=spec.retry,
                    notify=spec.notify,
                )
            )
            # Missed runs of a recurring task collapse into this one firing
            # (fire_once); the misfire policies arrive with the timing wheel.
            following = next_fire_ms(spec.schedule, due_ms, after_ms=now_ms)
            if following is None:
                del self._tasks[task_id]
                effects.changes.append(StateChange(task_id, None))
                continue
            updated = replace(
                state,
                next_fire_ms=following,
                last_fire_ms=due_ms,
                fire_count=state.fire_count + 1,
                updated_at_ms=now_ms,
            )
            self._put(updated)
            effects.changes.append(StateChange(task_id, updated))
        return effects

    def _put(self, state: TaskState) -> None:
        self._tasks[state.task_id] = state
        if state.next_fire_ms is not None:
            heapq.heappush(self._heap, (state.next_fire_ms, state.task_id))
