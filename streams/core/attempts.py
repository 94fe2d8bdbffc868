"""What one attempt of a firing leads to: its ExecutionResult, and a retry or a dead letter.

Pure: time and randomness come in as arguments. The jitter of a retry's
backoff is drawn from a generator seeded with the fire id, so the follow-ups
of a recorded outcome can be derived again, byte for byte, when a dispatcher
re-emits them after a crash (see docs/dispatch.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from streams.core.events import (
    CommandKind,
    DeadLetter,
    DueTask,
    ExecutionResult,
    RetryRequest,
    TaskCommand,
)
from streams.core.ids import fire_id
from streams.core.model import Outcome, RetryPolicy

RETRY_ISSUER = "dispatcher"


@dataclass(frozen=True, slots=True)
class Attempt:
    """How running a target went: every failure is an outcome, never an exception."""

    outcome: Outcome
    started_at_ms: int
    finished_at_ms: int
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DueRecord:
    """Where a DueTask was read from, and its bytes (a dead letter carries them)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class FollowUps:
    retry: TaskCommand | None = None
    dead: DeadLetter | None = None


def backoff_ms(policy: RetryPolicy, failed_attempt: int, rng: random.Random) -> int:
    """The wait before the attempt after ``failed_attempt`` (1-based).

    Exponential from ``backoff_ms``, doubling per attempt, capped by
    ``max_backoff_ms``; "equal jitter": half of it fixed, half random, so that
    retries of many tasks failing together spread out but never come early.
    """
    doublings = max(0, failed_attempt - 1)
    ceiling: int = min(policy.max_backoff_ms, policy.backoff_ms << doublings)
    fixed = ceiling // 2
    return fixed + rng.randint(0, ceiling - fixed)


def jitter_for(fire: str) -> random.Random:
    """The generator of a fire id's jitter: the same draw on every re-derivation."""
    return random.Random(fire)


def is_final(due: DueTask, outcome: Outcome) -> bool:
    return outcome is Outcome.SUCCEEDED or due.attempt >= due.retry.max_attempts


def result_of(due: DueTask, attempt: Attempt, dispatcher: str) -> ExecutionResult:
    return ExecutionResult(
        fire_id=due.fire_id,
        task_id=due.task_id,
        tenant=due.tenant,
        scheduled_at_ms=due.scheduled_at_ms,
        attempt=due.attempt,
        outcome=attempt.outcome,
        final=is_final(due, attempt.outcome),
        started_at_ms=attempt.started_at_ms,
        finished_at_ms=attempt.finished_at_ms,
        lateness_ms=attempt.started_at_ms - due.due_at_ms,  # from the jittered instant
        http_status=attempt.http_status,
        error=attempt.error,
        dispatcher=dispatcher,
    )


def follow_ups(due: DueTask, result: ExecutionResult, source: DueRecord) -> FollowUps:
    """A retry command for a failed attempt with attempts left, a dead letter when
    the last one failed, nothing after a success. Derived from the result alone
    (plus the due event), so a recorded result yields the same follow-ups again."""
    if result.outcome is Outcome.SUCCEEDED:
        return FollowUps()
    if not result.final:
        next_attempt = due.attempt + 1
        next_fire = fire_id(due.task_id, due.scheduled_at_ms, next_attempt)
        delay = backoff_ms(due.retry, due.attempt, jitter_for(due.fire_id))
        return FollowUps(
            retry=TaskCommand(
                command_id=f"retry:{next_fire}",
                task_id=due.task_id,
                tenant=due.tenant,
                kind=CommandKind.RETRY,
                issued_at_ms=result.finished_at_ms,
                issuer=RETRY_ISSUER,
                spec=None,
                retry=RetryRequest(
                    scheduled_at_ms=due.scheduled_at_ms,
                    attempt=next_attempt,
                    run_at_ms=result.finished_at_ms + delay,
                    reason=result.error or "failed",
                ),
            )
        )
    return FollowUps(
        dead=DeadLetter(
            reason=(
                f"retries exhausted after {due.attempt} attempt(s) of "
                f"{due.retry.max_attempts}; last error: {result.error or 'failed'}"
            ),
            error_class="RetriesExhausted",
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
            original_key=source.key,
            original_value=source.value,
            task_id=due.task_id,
            dead_at_ms=result.finished_at_ms,
        )
    )
