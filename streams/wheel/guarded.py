"""What the processor writes when one task's timer cannot be handled.

A firing has no consumed record behind it (the timer lives in the partition's
index), so its dead letter names the task and the changelog partition it
lives in; the offset is -1. The task keeps its state but loses its timer: a
command (update, trigger, cancel) brings it back, and nothing else on the
partition waits for it.
"""

from __future__ import annotations

from streams.core.events import DeadLetter
from streams.kafka.topics import STATE

MAX_REASON_CHARS = 500


def firing_dead_letter(task_id: str, partition: int, exc: BaseException, now_ms: int) -> DeadLetter:
    return DeadLetter(
        reason=f"firing failed: {type(exc).__name__}: {exc}"[:MAX_REASON_CHARS],
        error_class=type(exc).__name__,
        source_topic=STATE,
        source_partition=partition,
        source_offset=-1,
        original_key=task_id.encode(),
        original_value=None,
        task_id=task_id,
        dead_at_ms=now_ms,
    )
