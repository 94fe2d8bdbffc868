"""Cron math in a time zone, on croniter (>= 7; older versions double-fire after DST).

Expressions have 5 fields (minute first) or 6 fields with seconds FIRST
(``*/10 * * * * *`` = every ten seconds), as Quartz and Spring write them.
Times are evaluated in the task's IANA zone, so ``0 9 * * MON-FRI`` in
``Europe/Berlin`` fires at 09:00 Berlin time on both sides of a DST change.

DST, explicitly:

* spring forward: a local time that does not exist that day (02:30 in Berlin
  on the last Sunday of March) fires once, at the first valid instant after
  the gap (03:00 CEST). croniter 7 already does this.
* fall back: a local time that happens twice (02:30 in Berlin on the last
  Sunday of October) fires once, at its first occurrence, when the hour field
  names hours (``30 2 * * *``). croniter would fire both occurrences, so the
  second one (``fold=1``) is passed over here. An expression whose hour field
  is a wildcard (``*/15 * * * *``) is about elapsed time and keeps firing
  through the repeated hour, as Vixie cron does.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


@lru_cache(maxsize=4096)
def validate_cron(expression: str) -> str | None:
    """Return None when the expression is valid, else what is wrong with it.

    Cached: croniter's check costs about 70 us, and every decode of a cron
    task's state runs it (streams.kafka.records), while a partition holds
    few distinct expressions."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        return f"must have 5 fields (or 6 with seconds first), not {len(fields)}"
    if not croniter.is_valid(expression, second_at_beginning=len(fields) == 6):
        return f"{expression!r} is not a valid cron expression"
    return None


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def validate_timezone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def next_cron_ms(expression: str, timezone: str, after_ms: int) -> int | None:
    """The first instant strictly after ``after_ms`` that the expression matches."""
    fields = expression.split()
    tz = zone(timezone)
    start = (_EPOCH + timedelta(milliseconds=after_ms)).astimezone(tz)
    # Parsing an expression costs ~4x a step; a copy of a parsed one, moved to
    # the start, gives the same iterator (tested against fresh ones).
    iterator = copy.copy(_parsed(expression, timezone))
    iterator.set_current(start, force=True)
    hour_field = fields[2] if len(fields) == 6 else fields[1]
    names_hours = not hour_field.startswith("*")
    # A fall-back day repeats at most one hour: even an every-second expression
    # matches at most 3,600 times in it, once a year.
    for _ in range(3_602):
        try:
            following: datetime = iterator.get_next(datetime)
        except (StopIteration, CroniterBadDateError):
            # croniter gives up on expressions that never match (Feb 30, Apr 31),
            # with one error or the other depending on the fields.
            return None
        instant = following.astimezone(UTC)
        if names_hours and _is_repeated_wall_time(instant, tz):
            continue
        return int((instant - _EPOCH) // _ONE_MS)
    raise AssertionError(f"{expression!r} in {timezone}: no fire time after {after_ms}")


@lru_cache(maxsize=4096)
def _parsed(expression: str, timezone: str) -> croniter:
    """A parsed iterator to copy: never advanced itself."""
    start = _EPOCH.astimezone(zone(timezone))
    return croniter(expression, start, second_at_beginning=len(expression.split()) == 6)


def _is_repeated_wall_time(instant: datetime, tz: ZoneInfo) -> bool:
    """True when ``instant`` is the second occurrence of its local wall time."""
    return instant.astimezone(tz).fold == 1
