"""Cron math in a time zone, on croniter (>= 7; older versions double-fire after DST).

Expressions have 5 fields (minute first) or 6 fields with seconds FIRST
(``*/10 * * * * *`` = every ten seconds), as Quartz and Spring write them.
Times are evaluated in the task's IANA zone, so ``0 9 * * MON-FRI`` in
``Europe/Berlin`` fires at 09:00 Berlin time on both sides of a DST change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def validate_cron(expression: str) -> str | None:
    """Return None when the expression is valid, else what is wrong with it."""
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
    start = (_EPOCH + timedelta(milliseconds=after_ms)).astimezone(zone(timezone))
    iterator = croniter(expression, start, second_at_beginning=len(expression.split()) == 6)
    try:
        following = iterator.get_next(datetime)
    except StopIteration:  # croniter gives up on expressions that never match (Feb 30)
        return None
    return int((following - _EPOCH) // _ONE_MS)
