"""Fire-time math. The full DST table arrives with the timing-wheel issue."""

from __future__ import annotations

import pytest

from streams.core.model import AtSchedule, CronSchedule, IntervalSchedule, Schedule
from streams.core.schedule import first_fire_ms, next_fire_ms
from streams.core.timefmt import parse_rfc3339_ms as t


@pytest.mark.parametrize(
    ("schedule", "now", "first"),
    [
        (AtSchedule(t("2026-12-01T09:00:00Z")), "2026-11-23T00:00:00Z", "2026-12-01T09:00:00Z"),
        (
            CronSchedule("0 9 * * MON-FRI", "Europe/Berlin"),
            "2026-11-28T12:00:00Z",
            "2026-11-30T08:00:00Z",
        ),  # Saturday -> Monday 09:00 CET
        (
            CronSchedule("0 9 * * *", "Europe/Berlin"),
            "2026-07-01T00:00:00Z",
            "2026-07-01T07:00:00Z",
        ),  # summer: CEST is UTC+2
        (
            CronSchedule("30 2 * * *", "Europe/Berlin"),
            "2026-03-29T00:00:00Z",
            "2026-03-29T01:00:00Z",
        ),  # 02:30 does not exist that day: fires at 03:00 CEST
        (CronSchedule("*/15 * * * * *", "UTC"), "2026-11-23T12:00:01Z", "2026-11-23T12:00:15Z"),
        (CronSchedule("0 0 29 2 *", "UTC"), "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        (IntervalSchedule(60_000, None, None), "2026-11-23T12:00:00Z", "2026-11-23T12:00:00Z"),
        # A start in the past keeps the grid: 12:00 + k minutes, first at or after now.
        (
            IntervalSchedule(60_000, t("2026-11-23T12:00:00Z"), None),
            "2026-11-23T12:10:30Z",
            "2026-11-23T12:11:00Z",
        ),
    ],
)
def test_first_fire(schedule: Schedule, now: str, first: str) -> None:
    assert first_fire_ms(schedule, t(now)) == t(first)


def test_cron_at_exactly_now_fires_now() -> None:
    assert first_fire_ms(CronSchedule("0 12 * * *"), t("2026-11-23T12:00:00Z")) == t(
        "2026-11-23T12:00:00Z"
    )


def test_interval_past_its_end_never_fires() -> None:
    schedule = IntervalSchedule(60_000, t("2026-11-23T10:00:00Z"), t("2026-11-23T11:00:00Z"))
    assert first_fire_ms(schedule, t("2026-11-23T12:00:00Z")) is None


def test_one_time_schedule_has_no_next() -> None:
    assert next_fire_ms(AtSchedule(0), 0) is None


def test_next_interval_skips_missed_runs_on_the_grid() -> None:
    schedule = IntervalSchedule(10_000)
    assert next_fire_ms(schedule, 0) == 10_000
    assert next_fire_ms(schedule, 0, after_ms=35_000) == 40_000
    assert next_fire_ms(schedule, 0, after_ms=40_000) == 50_000


def test_next_interval_respects_the_end() -> None:
    assert next_fire_ms(IntervalSchedule(10_000, None, 15_000), 10_000) is None


def test_next_cron_after_a_missed_window() -> None:
    schedule = CronSchedule("0 * * * *")
    fired = t("2026-11-23T09:00:00Z")
    assert next_fire_ms(schedule, fired) == t("2026-11-23T10:00:00Z")
    assert next_fire_ms(schedule, fired, after_ms=t("2026-11-23T12:30:00Z")) == t(
        "2026-11-23T13:00:00Z"
    )
