"""The REST (JSON) representation of the model: the inverse of model.parse_task_spec."""

from __future__ import annotations

from typing import Any

from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    KafkaTarget,
    Schedule,
    Target,
    TaskSpec,
)
from streams.core.timefmt import format_rfc3339_ms


def schedule_to_json(schedule: Schedule) -> dict[str, Any]:
    match schedule:
        case AtSchedule(at_ms=at_ms):
            return {"at": format_rfc3339_ms(at_ms)}
        case CronSchedule(expression=expression, timezone=timezone):
            return {"cron": expression, "timezone": timezone}
        case IntervalSchedule(every_ms=every_ms, start_ms=start_ms, end_ms=end_ms):
            out: dict[str, Any] = {"every_ms": every_ms}
            if start_ms is not None:
                out["start"] = format_rfc3339_ms(start_ms)
            if end_ms is not None:
                out["end"] = format_rfc3339_ms(end_ms)
            return out


def target_to_json(target: Target) -> dict[str, Any]:
    match target:
        case HttpTarget():
            http: dict[str, Any] = {
                "url": target.url,
                "method": target.method,
                "headers": dict(target.headers),
                "timeout_ms": target.timeout_ms,
            }
            if target.body is not None:
                http["body"] = target.body
            return {"http": http}
        case KafkaTarget():
            return {"kafka": {"topic": target.topic, "key": target.key, "value": target.value}}


def spec_to_json(spec: TaskSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": spec.name,
        "schedule": schedule_to_json(spec.schedule)
        | ({"jitter_ms": spec.jitter_ms} if spec.jitter_ms else {}),
        "target": target_to_json(spec.target),
        "retry": {
            "max_attempts": spec.retry.max_attempts,
            "backoff_ms": spec.retry.backoff_ms,
            "max_backoff_ms": spec.retry.max_backoff_ms,
        },
        "misfire": spec.misfire.value,
    }
    if spec.notify is not None:
        out["notify"] = {"url": spec.notify.url, "on": sorted(o.value for o in spec.notify.on)}
    if spec.dedupe_key is not None:
        out["dedupe_key"] = spec.dedupe_key
    return out
