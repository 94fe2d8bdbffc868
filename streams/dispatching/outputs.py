"""One due event from the record it came in to the records it leaves behind:
per-partition state, taking a record (or dead-lettering it), and the records an
outcome produces (ExecutionResult, then a RETRY command or a dead letter).

The dispatcher loop (streams.dispatching.dispatcher) takes, runs and commits;
this module decides what an outcome writes and logs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from streams.config import Settings
from streams.core.attempts import DueRecord, follow_ups
from streams.core.errors import MalformedEvent
from streams.core.events import DueTask, ExecutionResult
from streams.dispatching.dedupe import RecentFireIds
from streams.dispatching.progress import PartitionProgress
from streams.dispatching.summary import FiringTally
from streams.kafka.records import (
    dead_letter_for,
    decode_due,
    encode_command,
    encode_dead_letter,
    encode_result,
)
from streams.kafka.topics import COMMANDS, DEAD, RESULTS
from streams.metrics import DEAD_LETTERS, DISPATCH_OUTCOMES, RETRIES
from streams.ports import ConsumedMessage, OutRecord

log = logging.getLogger("streams.dispatching.dispatcher")


# Fire ids scheduled this recently are checked against a local set, loaded from
# the history store when a partition is assigned; older ones ask the store.
RECENT_WINDOW_MS = 15 * 60_000
# How long after this dispatcher is given a partition its previous owner may still be
# recording attempts it started before the move: the longest target timeout (60 s),
# the stop grace and a session timeout, rounded up.
CONTENTION_WINDOW_MS = 120_000


@dataclass
class PartitionState:
    progress: PartitionProgress[list[OutRecord]] = field(default_factory=PartitionProgress)
    recent: RecentFireIds = field(default_factory=lambda: RecentFireIds(0, {}))
    running: set[str] = field(default_factory=set)
    assigned_at_ms: int = 0
    # Firings since the last INFO summary of this partition (the per-firing line is DEBUG).
    tally: FiringTally = field(default_factory=lambda: FiringTally(time.monotonic()))


@dataclass(frozen=True, slots=True)
class Taken:
    """One due event being handled, and where it came from."""

    due: DueTask
    record: DueRecord
    state: PartitionState
    fetched_at_ms: int = 0  # when the dispatcher took the record (queue wait starts)


@dataclass(frozen=True, slots=True)
class Finished:
    taken: Taken
    result: ExecutionResult


def contended(batch: list[Finished], now_ms: int) -> bool:
    """Whether another dispatcher may be recording some of these fire ids now: only
    for a partition given to this one moments ago. The history store then finds out
    whose outcome stayed (Cassandra reads back); otherwise one write is enough."""
    return any(now_ms - f.taken.state.assigned_at_ms < CONTENTION_WINDOW_MS for f in batch)


def take(
    settings: Settings, state: PartitionState, message: ConsumedMessage, now_ms: int
) -> Taken | None:
    """Start handling one record of an owned partition: its due event, or None when it
    cannot be decoded (then its dead letter is that record's only output)."""
    partition = message.partition() or 0
    offset = message.offset() or 0
    state.progress.take(offset)
    record = DueRecord(message.topic() or "", partition, offset, message.key(), message.value())
    try:
        due = decode_due(message.value() or b"")
    except Exception as exc:  # any record that is not a usable firing: a dead letter
        log.warning("dead letter %s[%d]@%d: %s", record.topic, partition, offset, exc)
        error_class = type(exc).__name__
        reason = str(exc) if isinstance(exc, MalformedEvent) else f"{error_class}: {exc}"
        dead = dead_letter_for(message, reason, now_ms, error_class)
        DEAD_LETTERS.labels(role="dispatcher", reason="malformed").inc()
        topic = settings.topic(DEAD)
        state.progress.finish(offset, [OutRecord(topic, message.key(), encode_dead_letter(dead))])
        return None
    return Taken(due, record, state, now_ms)


def outputs_of(settings: Settings, taken: Taken, result: ExecutionResult) -> list[OutRecord]:
    """The result record, and the retry command or dead letter that follows it."""
    key = taken.due.task_id.encode()
    outputs = [OutRecord(settings.topic(RESULTS), key, encode_result(result))]
    more = follow_ups(taken.due, result, taken.record)
    if more.retry is not None:
        outputs.append(OutRecord(settings.topic(COMMANDS), key, encode_command(more.retry)))
    if more.dead is not None:
        outputs.append(OutRecord(settings.topic(DEAD), key, encode_dead_letter(more.dead)))
    return outputs


def log_attempt(
    settings: Settings, taken: Taken, result: ExecutionResult, outputs: Sequence[OutRecord]
) -> None:
    DISPATCH_OUTCOMES.labels(outcome=result.outcome.value).inc()
    topics = {o.topic for o in outputs}
    if settings.topic(COMMANDS) in topics:
        RETRIES.inc()
        then = " then=retry"
    elif settings.topic(DEAD) in topics:
        DEAD_LETTERS.labels(role="dispatcher", reason="retries_exhausted").inc()
        then = " then=dead"
    else:
        then = ""
    taken.state.tally.add(result.lateness_ms)
    if not log.isEnabledFor(logging.DEBUG):
        return  # at scale a line per firing cost 4.5 % of the CPU; see summarize_and_prune
    log.debug(
        "fired %s task=%s %s[%d]@%d attempt=%d/%d outcome=%s lateness=%dms took=%dms%s%s",
        result.fire_id,
        result.task_id,
        taken.record.topic,
        taken.record.partition,
        taken.record.offset,
        result.attempt,
        taken.due.retry.max_attempts,
        result.outcome.value,
        result.lateness_ms,
        result.finished_at_ms - result.started_at_ms,
        then,
        f" error={result.error}" if result.error else "",
    )


def summarize_and_prune(
    partitions: dict[int, PartitionState], now_ms: int, monotonic_s: float
) -> None:
    """Once in a while (the caller holds the partitions' lock): an INFO line per
    partition that fired since the last one, and the dedupe windows moved on."""
    for partition, state in partitions.items():
        state.tally.summarize(partition, monotonic_s)
        state.recent.prune(now_ms - RECENT_WINDOW_MS)


def skip_duplicate(taken: Taken, why: str) -> None:
    DISPATCH_OUTCOMES.labels(outcome="skipped_duplicate").inc()
    log.info(
        "skipped %s task=%s %s[%d]@%d: duplicate, %s",
        taken.due.fire_id,
        taken.due.task_id,
        taken.record.topic,
        taken.record.partition,
        taken.record.offset,
        why,
    )
    taken.state.progress.finish(taken.record.offset, [])


def release(
    partitions: dict[int, PartitionState], only: list[int] | None = None
) -> tuple[list[OutRecord], dict[int, int]]:
    """Pop every partition's finished prefix: its outputs, and the next offset to commit
    per partition (call with the dispatcher's lock held)."""
    outputs: list[OutRecord] = []
    offsets: dict[int, int] = {}
    for partition, state in partitions.items():
        if only is not None and partition not in only:
            continue
        released = state.progress.release()
        if released is not None:
            offsets[partition] = released.next_offset
            outputs.extend(o for batch in released.outputs for o in batch)
    return outputs, offsets
