"""The dispatcher's periodic per-partition summary (instead of an INFO line per firing)."""

from __future__ import annotations

import logging

import pytest

from streams.dispatching.summary import MAX_SAMPLES, FiringSummary


def test_one_line_per_partition_once_an_interval_has_passed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    summary = FiringSummary(every_s=30, now_s=100.0)
    for lateness in range(1, 101):
        summary.add(2, lateness)
    summary.add(0, 7)
    assert summary.maybe_log(129.9) == [], "not yet"
    with caplog.at_level(logging.INFO, logger="streams.dispatching.summary"):
        lines = summary.maybe_log(130.0)
    assert lines == [
        "partition 0: 1 firings in 30s, lateness p50=7ms p99=7ms max=7ms",
        "partition 2: 100 firings in 30s, lateness p50=51ms p99=99ms max=100ms",
    ]
    assert [r.getMessage() for r in caplog.records] == lines
    assert summary.maybe_log(170.0) == [], "a quiet interval logs nothing"


def test_samples_stay_bounded_and_the_count_exact() -> None:
    summary = FiringSummary(every_s=1, now_s=0.0)
    for n in range(MAX_SAMPLES * 3):
        summary.add(1, n % 1000)
    assert len(summary._samples[1]) == MAX_SAMPLES
    (line,) = summary.maybe_log(1.0)
    assert line.startswith(f"partition 1: {MAX_SAMPLES * 3} firings in 1s")
    assert "max=999ms" in line
