"""The dispatcher's periodic per-partition summary (instead of an INFO line per firing)."""

from __future__ import annotations

import logging

import pytest

from streams.dispatching.summary import MAX_SAMPLES, FiringTally


def test_one_line_per_interval_with_count_and_lateness(caplog: pytest.LogCaptureFixture) -> None:
    tally = FiringTally(now_s=100.0)
    for lateness in range(1, 101):
        tally.add(lateness)
    with caplog.at_level(logging.INFO, logger="streams.dispatching.summary"):
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
