"""The dispatcher's periodic per-partition summary (instead of an INFO line per firing)."""

from __future__ import annotations

import logging

import pytest

from streams.dispatching.summary import MAX_SAMPLES, FiringTally


def test_one_line_per_interval_with_count_and_lateness(caplog: pytest.LogCaptureFixture) -> None:
    tally = FiringTally(now_s=100.0)
    for lateness in range(1, 101):
        tally.add(lateness)
    with caplog.at_level(logging.INFO, logger="streams.dispatching.dispatcher"):
        line = tally.summarize(2, now_s=160.0)
    assert line == "partition 2: 100 firings in 60s, lateness p50=51ms p99=99ms max=100ms"
    assert [r.getMessage() for r in caplog.records] == [line]
    assert tally.summarize(2, now_s=220.0) is None, "a quiet interval logs nothing"
    tally.add(-5)  # early (a clock a little ahead) counts too
    assert tally.summarize(2, now_s=280.0) == (
        "partition 2: 1 firings in 60s, lateness p50=-5ms p99=-5ms max=-5ms"
    )


def test_samples_stay_bounded_and_the_count_and_max_exact() -> None:
    tally = FiringTally(now_s=0.0)
    for n in range(MAX_SAMPLES * 3):
        tally.add(n % 1000)
    tally.add(123_456)
    assert len(tally._samples) == MAX_SAMPLES
    line = tally.summarize(1, now_s=1.0)
    assert line is not None
    assert line.startswith(f"partition 1: {MAX_SAMPLES * 3 + 1} firings in 1s")
    assert line.endswith("max=123456ms")


def test_the_dispatcher_logs_a_firing_at_debug_and_summarizes_it_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from streams.config import Settings
    from streams.core.attempts import Attempt, DueRecord, result_of
    from streams.core.events import DueTask
    from streams.core.ids import fire_id
    from streams.core.model import HttpTarget, Outcome, RetryPolicy
    from streams.dispatching.outputs import (
        PartitionState,
        Taken,
        log_attempt,
        outputs_of,
        summarize_and_prune,
    )

    scheduled = 1_800_000_000_000
    due = DueTask(
        fire_id("t1", scheduled, 1), "t1", "acme", "n", scheduled, 1, scheduled,
        HttpTarget("http://127.0.0.1/hook"), RetryPolicy(),
    )  # fmt: skip
    state = PartitionState(tally=FiringTally(now_s=0.0))
    taken = Taken(due, DueRecord("tasks.due", 3, 41, None, None), state)
    result = result_of(due, Attempt(Outcome.SUCCEEDED, scheduled + 12, scheduled + 20, 200), "d")
    settings = Settings()
    logger = "streams.dispatching.dispatcher"
    with caplog.at_level(logging.INFO, logger=logger):
        log_attempt(settings, taken, result, outputs_of(settings, taken, result))
        assert caplog.records == [], "no INFO line per firing"
        summarize_and_prune({3: state}, scheduled, monotonic_s=60.0)
    assert [r.getMessage() for r in caplog.records] == [
        "partition 3: 1 firings in 60s, lateness p50=12ms p99=12ms max=12ms"
    ]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=logger):
        log_attempt(settings, taken, result, outputs_of(settings, taken, result))
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert caplog.records[0].getMessage().startswith("fired t1:1800000000000:1 task=t1")
