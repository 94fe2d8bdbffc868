"""When does a schedule fire? Pure functions of the schedule and a given time.

The timing-wheel issue extends this with misfire handling and the DST table;
the walking skeleton needs first and next fire times.
"""

from __future__ import annotations

from streams.core.cron import next_cron_ms
from streams.core.model import AtSchedule, CronSchedule, IntervalSchedule, Schedule
from streams.core.timefmt import MAX_INSTANT_MS


def _within_range(fire_ms: int | None) -> int | None:
    """A schedule ends at the last instant kronwheel can write down (year 9999)."""
    return fire_ms if fire_ms is not None and fire_ms <= MAX_INSTANT_MS else None


def first_fire_ms(schedule: Schedule, now_ms: int) -> int | None:
    return _within_range(_first_fire_ms(schedule, now_ms))


def _first_fire_ms(schedule: Schedule, now_ms: int) -> int | None:
    """The first fire time of a newly created task, or None if it never fires.

    A one-time task whose instant is already past (within the API's grace)
    fires at once: returning its own instant keeps the fire id deterministic.
    """
    match schedule:
        case AtSchedule(at_ms=at_ms):
            return at_ms
        case CronSchedule(expression=expression, timezone=timezone):
            return next_cron_ms(expression, timezone, now_ms - 1)
        case IntervalSchedule(every_ms=every_ms, start_ms=start_ms, end_ms=end_ms):
            anchor = start_ms if start_ms is not None else now_ms
            if anchor < now_ms:
                # Align to the interval grid from the start so fire times do not
                # depend on when the processor happened to see the command.
                steps = -(-(now_ms - anchor) // every_ms)
                anchor += steps * every_ms
            return anchor if end_ms is None or anchor <= end_ms else None


def next_fire_ms(schedule: Schedule, fired_ms: int, after_ms: int | None = None) -> int | None:
    return _within_range(_next_fire_ms(schedule, fired_ms, after_ms))


def _next_fire_ms(schedule: Schedule, fired_ms: int, after_ms: int | None) -> int | None:
    """The fire time after the one at ``fired_ms``, or None when the schedule is over.

    With ``after_ms``, runs at or before it are passed over (they were missed
    and are covered by the firing just made), staying on the schedule's grid.
    """
    floor = fired_ms if after_ms is None else max(fired_ms, after_ms)
    match schedule:
        case AtSchedule():
            return None
        case CronSchedule(expression=expression, timezone=timezone):
            return next_cron_ms(expression, timezone, floor)
        case IntervalSchedule(every_ms=every_ms, end_ms=end_ms):
            steps = max(1, (floor - fired_ms) // every_ms + 1)
            following = fired_ms + steps * every_ms
            return following if end_ms is None or following <= end_ms else None
