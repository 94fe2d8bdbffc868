"""Retry timing and the follow-ups of an attempt, on a fake clock and seeded randomness."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.attempts import (
    Attempt,
    DueRecord,
    backoff_ms,
    follow_ups,
    jitter_for,
    result_of,
)
from streams.core.clock import FakeClock
from streams.core.events import CommandKind, DueTask
from streams.core.ids import fire_id
from streams.core.model import HttpTarget, Outcome, RetryPolicy

POLICY = RetryPolicy(max_attempts=3, backoff_ms=1_000, max_backoff_ms=3_000)
SOURCE = DueRecord("p.tasks.due", 2, 41, b"t1", b"due-bytes")


def due(attempt: int, policy: RetryPolicy = POLICY) -> DueTask:
    scheduled = 1_800_000_000_000
    return DueTask(
        fire_id("t1", scheduled, attempt),
        "t1",
        "acme",
        "n",
        scheduled,
        attempt,
        scheduled,
        HttpTarget("https://example.com/hook"),
        policy,
    )


def failed(clock: FakeClock, took_ms: int = 20) -> Attempt:
    started = clock.now_ms()
    clock.advance(took_ms)
    return Attempt(Outcome.FAILED, started, clock.now_ms(), http_status=503, error="HTTP 503")


@pytest.mark.parametrize(
    ("failed_attempt", "low", "high"),
    [(1, 500, 1_000), (2, 1_000, 2_000), (3, 1_500, 3_000), (10, 1_500, 3_000)],
)
def test_backoff_doubles_with_jitter_and_is_capped(
    failed_attempt: int, low: int, high: int
) -> None:
    rng = random.Random(7)
    draws = [backoff_ms(POLICY, failed_attempt, rng) for _ in range(500)]
    assert low <= min(draws)
    assert max(draws) <= high
    assert len(set(draws)) > 50, "jitter spreads the retries"


@given(
    st.integers(1, 20),
    st.integers(1, 600_000),
    st.integers(1, 3_600_000),
    st.integers(0, 2**32),
)
def test_backoff_never_exceeds_the_cap_nor_comes_early(
    attempt: int, base: int, cap: int, seed: int
) -> None:
    policy = RetryPolicy(20, base, cap)
    delay = backoff_ms(policy, attempt, random.Random(seed))
    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert ceiling // 2 <= delay <= ceiling


def test_a_failed_attempt_with_attempts_left_becomes_a_retry_command() -> None:
    clock = FakeClock()
    first = due(1)
    result = result_of(first, failed(clock), "d-1")
    assert (result.final, result.outcome, result.lateness_ms) == (False, Outcome.FAILED, 0)
    retry = follow_ups(first, result, SOURCE).retry
    assert retry is not None
    assert retry.kind is CommandKind.RETRY
    assert retry.command_id == f"retry:{fire_id('t1', first.scheduled_at_ms, 2)}"
    assert (retry.task_id, retry.tenant, retry.issuer, retry.spec) == (
        "t1",
        "acme",
        "dispatcher",
        None,
    )
    assert retry.issued_at_ms == clock.now_ms()
    assert retry.retry is not None
    assert retry.retry.scheduled_at_ms == first.scheduled_at_ms
    assert retry.retry.attempt == 2
    assert retry.retry.reason == "HTTP 503"
    delay = retry.retry.run_at_ms - clock.now_ms()
    assert delay == backoff_ms(POLICY, 1, jitter_for(first.fire_id))
    assert 500 <= delay <= 1_000


def test_retry_times_grow_per_attempt_on_a_fake_clock() -> None:
    clock = FakeClock()
    delays = []
    for attempt in (1, 2):
        result = result_of(due(attempt), failed(clock), "d-1")
        retry = follow_ups(due(attempt), result, SOURCE).retry
        assert retry is not None
        assert retry.retry is not None
        delays.append(retry.retry.run_at_ms - clock.now_ms())
        clock.advance(delays[-1])  # the wheel fires the retry at run_at
    assert 500 <= delays[0] <= 1_000 <= delays[1] <= 2_000


def test_follow_ups_are_the_same_when_derived_again() -> None:
    clock = FakeClock()
    result = result_of(due(1), failed(clock), "d-1")
    assert follow_ups(due(1), result, SOURCE) == follow_ups(due(1), result, SOURCE)


def test_the_last_failed_attempt_is_final_and_dead_lettered() -> None:
    clock = FakeClock()
    last = due(3)
    result = result_of(last, failed(clock), "d-1")
    assert result.final
    more = follow_ups(last, result, SOURCE)
    assert more.retry is None
    assert more.dead is not None
    assert "retries exhausted after 3 attempt(s) of 3" in more.dead.reason
    assert "HTTP 503" in more.dead.reason
    assert (more.dead.source_topic, more.dead.source_partition, more.dead.source_offset) == (
        "p.tasks.due",
        2,
        41,
    )
    assert more.dead.original_value == b"due-bytes"
    assert more.dead.task_id == "t1"


def test_success_is_final_with_no_follow_up() -> None:
    clock = FakeClock()
    result = result_of(due(1), Attempt(Outcome.SUCCEEDED, clock.now_ms(), clock.now_ms()), "d")
    assert result.final
    assert follow_ups(due(1), result, SOURCE).retry is None
    assert follow_ups(due(1), result, SOURCE).dead is None
