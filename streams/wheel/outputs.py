"""What a partition writes: changelog records, due events, results and dead letters.

Plain values (:class:`Output`) that the processor writes inside its
transaction; built here so that :mod:`streams.wheel.partition` keeps to the
wheel, the index and the step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter

from streams import metrics
from streams.core.events import DueTask, ExecutionResult, TaskCommand, TaskState
from streams.core.ids import fire_id
from streams.core.lifecycle import next_due_ms
from streams.core.model import Outcome as RunOutcome
from streams.kafka.records import (
    dead_letter_for,
    encode_dead_letter,
    encode_due,
    encode_result,
    encode_state,
)
from streams.kafka.topics import DEAD, DUE, RESULTS, STATE
from streams.ports import KafkaMessage

log = logging.getLogger("streams.wheel.partition")

# Changelog records carry their task's next timer in a header, so a restore
# can fill the index without decoding a million Avro records. A record
# without it (written by another tool) is decoded instead.
DUE_HEADER = "kw-due-ms"


_NO_HEADER = -1  # no epoch-ms timer is ever negative

Headers = list[tuple[str, str | bytes | None]] | None
# key, value (None: tombstone), headers
ChangelogRecord = tuple[bytes, bytes | None, Headers]


@dataclass(frozen=True, slots=True)
class Output:
    """A record to write in the current transaction (topic is the contract name)."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: Headers = None


def changelog_output(
    partition: int,
    key: bytes,
    state: TaskState | None,
    encoded: bytes | None,
    due_ms: int | None = _NO_HEADER,
) -> Output:
    """A task's state (None: a tombstone), with its timer in the header (``due_ms``
    when the caller has worked it out already)."""
    if state is None:
        return Output(STATE, key, None, partition, [(DUE_HEADER, b"")])
    if due_ms == _NO_HEADER:
        due_ms = next_due_ms(state)
    header = b"" if due_ms is None else str(due_ms).encode()
    value = encoded if encoded is not None else encode_state(state)
    return Output(STATE, key, value, partition, [(DUE_HEADER, header)])


def due_output(partition: int, key: bytes, due: DueTask) -> Output:
    lateness_ms = due.emitted_at_ms - due.due_at_ms  # from the jittered instant
    _firing_counter(due.reason.value).inc()
    metrics.FIRING_LATENESS.observe(max(lateness_ms, 0) / 1000)
    log.debug(
        "fired %s reason=%s lateness=%dms partition=%d",
        due.fire_id,
        due.reason.value,
        lateness_ms,
        partition,
    )
    return Output(DUE, key, encode_due(due), partition)


def given_up_retry_outputs(
    message: KafkaMessage, command: TaskCommand, reason: str, now_ms: int
) -> list[Output]:
    """A retry for a task that has ended (cancelled, or past its retention) cannot
    run (the target went with the task): its attempt ends as a final FAILED
    result, which closes it in the history, and a dead letter."""
    request = command.retry
    assert request is not None  # records.decode_command guarantees it
    error = f"retry not run: {reason} (cancelled, or past its retention)"
    result = ExecutionResult(
        fire_id=fire_id(command.task_id, request.scheduled_at_ms, request.attempt),
        task_id=command.task_id,
        tenant=command.tenant,
        scheduled_at_ms=request.scheduled_at_ms,
        attempt=request.attempt,
        outcome=RunOutcome.FAILED,
        final=True,
        started_at_ms=now_ms,
        finished_at_ms=now_ms,
        lateness_ms=now_ms - request.scheduled_at_ms,
        error=error,
        dispatcher="processor",
    )
    return [
        Output(RESULTS, message.key(), encode_result(result), None),
        dead_letter_output(message, error, "RetryAfterEnd", now_ms),
    ]


def dead_letter_output(message: KafkaMessage, reason: str, error_class: str, now_ms: int) -> Output:
    log.warning(
        "dead letter %s[%s]@%s: %s",
        message.topic(),
        message.partition(),
        message.offset(),
        reason,
    )
    metrics.DEAD_LETTERS.labels(role="processor", reason=error_class).inc()
    dead = dead_letter_for(message, reason, now_ms, error_class)
    return Output(DEAD, message.key(), encode_dead_letter(dead), None)


# Per firing, on the hot path: resolve a series once, not a labels() lookup
# (a lock and a tuple key) every time.
@cache
def _firing_counter(reason: str) -> Counter:
    return metrics.FIRINGS.labels(reason=reason)


def due_from_header(headers: Headers) -> int | None:
    """The timer a changelog record carries: its time, None (the task has no timer:
    the header is empty), or _NO_HEADER (another tool wrote the record: decode it)."""
    for name, value in headers or ():
        if name == DUE_HEADER:
            return int(value) if value else None
    return _NO_HEADER
