"""The cron table: a run of fire times per row, DST change days in several zones,
month ends, leap days and interval end bounds. Each row lists every fire time
(UTC) that follows ``after``; a skipped or doubled run shows as a row failure."""

from __future__ import annotations

import pytest

from streams.core.cron import next_cron_ms
from streams.core.model import IntervalSchedule
from streams.core.schedule import next_fire_ms
from streams.core.timefmt import format_rfc3339_ms
from streams.core.timefmt import parse_rfc3339_ms as t


def fire_times(expression: str, zone: str, after: str, count: int) -> list[str]:
    times, cursor = [], t(after)
    for _ in range(count):
        following = next_cron_ms(expression, zone, cursor)
        assert following is not None
        times.append(format_rfc3339_ms(following).replace(".000Z", "Z"))
        cursor = following
    return times


CRON_TABLE = [
    # --- spring forward: the skipped local time fires once, at the first valid instant
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00Z",
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
        id="berlin-spring-skipped-0230",
    ),
    pytest.param(
        "0 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00Z",
        ["2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"],
        id="new-york-spring-skipped-0200",
    ),
    pytest.param(
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T00:00:00Z",
        ["2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"],
        id="lord-howe-half-hour-shift",
    ),
    pytest.param(
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        "2026-03-27T12:00:00Z",
        ["2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z"],
        id="berlin-weekday-after-spring",
    ),
    # --- fall back: the repeated local time fires once, at its first occurrence
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00Z",
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        id="berlin-fall-once",
    ),
    pytest.param(
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        id="new-york-fall-once",
    ),
    pytest.param(
        "0 30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        id="six-fields-fall-once",
    ),
    pytest.param(
        "0 2 * * *",
        "Australia/Sydney",
        "2026-04-04T00:00:00Z",
        ["2026-04-04T15:00:00Z", "2026-04-05T16:00:00Z"],
        id="sydney-fall-once",
    ),
    # --- a wildcard hour is elapsed time and keeps firing through the repeated hour
    pytest.param(
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01T04:50:00Z",
        [
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:30:00Z",
        ],
        id="wildcard-hour-through-fall",
    ),
    # --- zones without DST, and UTC
    pytest.param(
        "0 9 * * *",
        "Asia/Tokyo",
        "2026-03-28T00:00:00Z",
        ["2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z"],
        id="tokyo-no-dst",
    ),
    pytest.param(
        "0 9 * * *",
        "Asia/Kolkata",
        "2026-11-23T00:00:00Z",
        ["2026-11-23T03:30:00Z", "2026-11-24T03:30:00Z"],
        id="kolkata-half-hour-offset",
    ),
    # --- month ends and leap days
    pytest.param(
        "0 0 31 * *",
        "UTC",
        "2026-01-31T00:00:00Z",
        ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"],
        id="day-31-skips-short-months",
    ),
    pytest.param(
        "0 12 L * *",
        "UTC",
        "2028-01-31T12:00:00Z",
        ["2028-02-29T12:00:00Z", "2028-03-31T12:00:00Z"],
        id="last-day-of-month-leap-year",
    ),
    pytest.param(
        "0 0 29 2 *",
        "Europe/Berlin",
        "2026-03-01T00:00:00Z",
        ["2028-02-28T23:00:00Z", "2032-02-28T23:00:00Z"],
        id="leap-day-only",
    ),
    pytest.param(
        "59 23 31 12 *",
        "Pacific/Kiritimati",
        "2026-06-01T00:00:00Z",
        ["2026-12-31T09:59:00Z", "2027-12-31T09:59:00Z"],
        id="year-end-utc-plus-14",
    ),
]


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), CRON_TABLE)
def test_cron_fire_times(expression: str, zone: str, after: str, expected: list[str]) -> None:
    assert fire_times(expression, zone, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("fired", "after", "expected"),
    [
        ("2026-11-23T10:00:00Z", None, "2026-11-23T10:30:00Z"),
        ("2026-11-23T10:30:00Z", None, "2026-11-23T11:00:00Z"),  # exactly the end bound
        ("2026-11-23T11:00:00Z", None, None),  # past the end bound: the task is over
        ("2026-11-23T10:00:00Z", "2026-11-23T10:45:00Z", "2026-11-23T11:00:00Z"),
        ("2026-11-23T10:00:00Z", "2026-11-23T11:05:00Z", None),
    ],
)
def test_interval_end_bound(fired: str, after: str | None, expected: str | None) -> None:
    schedule = IntervalSchedule(30 * 60_000, t("2026-11-23T10:00:00Z"), t("2026-11-23T11:00:00Z"))
    result = next_fire_ms(schedule, t(fired), None if after is None else t(after))
    assert result == (None if expected is None else t(expected))
