"""The next n fire times of a schedule, for previews and GET /v1/tasks/{id}/upcoming."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.core.cron import zone
from streams.core.model import CronSchedule, Schedule
from streams.core.schedule import first_fire_ms, next_fire_ms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def upcoming_fire_ms(
    schedule: Schedule, now_ms: int, n: int, first_ms: int | None = None
) -> list[int]:
    """Up to ``n`` fire times from now; ``first_ms`` is the processor's own next fire
    time when known (it already accounts for what has fired)."""
    # A stored next fire time already past (the changelog moves on as it fires) is stale.
    fresh = first_ms is not None and first_ms >= now_ms
    following = first_ms if fresh else first_fire_ms(schedule, now_ms)
    times: list[int] = []
    while following is not None and len(times) < n:
        times.append(following)
        following = next_fire_ms(schedule, following)
    return times


def schedule_zone(schedule: Schedule) -> str:
    return schedule.timezone if isinstance(schedule, CronSchedule) else "UTC"


def local_time(epoch_ms: int, zone_name: str) -> str:
    """ISO 8601 with the zone's offset at that instant: 2026-03-29T03:00:00+02:00."""
    moment = (_EPOCH + timedelta(milliseconds=epoch_ms)).astimezone(zone(zone_name))
    return moment.isoformat(timespec="milliseconds" if epoch_ms % 1000 else "seconds")
