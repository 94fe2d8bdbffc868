"""The parts of a TaskSpec as Avro records (commands, states and firings all carry them).

A record inside a union goes to fastavro as ``(name, fields)``: given a plain
dict, fastavro validates it against each branch to choose one (docs/results.md).
"""

from __future__ import annotations

from typing import Any

from streams.core.cron import validate_cron, validate_timezone
from streams.core.errors import MalformedEvent
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    KafkaTarget,
    Misfire,
    NotifyPolicy,
    Outcome,
    RetryPolicy,
    Schedule,
    Target,
    TaskSpec,
)

NS = "io.kronwheel."


# --- TaskSpec and its parts -------------------------------------------------


def schedule_to_avro(schedule: Schedule) -> tuple[str, dict[str, Any]]:
    match schedule:
        case AtSchedule(at_ms=at_ms):
            return NS + "AtSchedule", {"at_ms": at_ms}
        case CronSchedule(expression=expression, timezone=timezone):
            return NS + "CronSchedule", {"expression": expression, "timezone": timezone}
        case IntervalSchedule(every_ms=every_ms, start_ms=start_ms, end_ms=end_ms):
            interval = {"every_ms": every_ms, "start_ms": start_ms, "end_ms": end_ms}
            return NS + "IntervalSchedule", interval


def schedule_from_avro(value: tuple[str, dict[str, Any]]) -> Schedule:
    name, record = value
    if name == NS + "AtSchedule":
        return AtSchedule(record["at_ms"])
    if name == NS + "CronSchedule":
        problem = validate_cron(record["expression"])
        if problem:
            raise MalformedEvent(f"schedule.cron {problem}")
        if not validate_timezone(record["timezone"]):
            raise MalformedEvent(f"schedule.timezone {record['timezone']!r} is unknown")
        return CronSchedule(record["expression"], record["timezone"])
    if record["every_ms"] <= 0:
        raise MalformedEvent("schedule.every_ms must be positive")
    return IntervalSchedule(record["every_ms"], record["start_ms"], record["end_ms"])


def target_to_avro(target: Target) -> tuple[str, dict[str, Any]]:
    match target:
        case HttpTarget():
            return NS + "HttpTarget", {
                "url": target.url,
                "method": target.method,
                "headers": dict(target.headers),
                "body": target.body,
                "timeout_ms": target.timeout_ms,
            }
        case KafkaTarget():
            return NS + "KafkaTarget", {
                "topic": target.topic,
                "key": target.key,
                "value": target.value,
            }


def target_from_avro(value: tuple[str, dict[str, Any]]) -> Target:
    name, record = value
    if name == NS + "HttpTarget":
        return HttpTarget(
            record["url"],
            record["method"],
            record["headers"],
            record["body"],
            record["timeout_ms"],
        )
    return KafkaTarget(record["topic"], record["key"], record["value"])


def retry_to_avro(retry: RetryPolicy) -> dict[str, Any]:
    return {
        "max_attempts": retry.max_attempts,
        "backoff_ms": retry.backoff_ms,
        "max_backoff_ms": retry.max_backoff_ms,
    }


def retry_from_avro(record: dict[str, Any]) -> RetryPolicy:
    return RetryPolicy(record["max_attempts"], record["backoff_ms"], record["max_backoff_ms"])


def notify_to_avro(notify: NotifyPolicy | None) -> tuple[str, dict[str, Any]] | None:
    if notify is None:
        return None
    return NS + "NotifyPolicy", {
        "url": notify.url,
        "on": sorted(o.value.upper() for o in notify.on),
    }


def notify_from_avro(record: dict[str, Any] | None) -> NotifyPolicy | None:
    if record is None:
        return None
    return NotifyPolicy(record["url"], frozenset(Outcome(o.lower()) for o in record["on"]))


def spec_to_avro(spec: TaskSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "schedule": schedule_to_avro(spec.schedule),
        "target": target_to_avro(spec.target),
        "retry": retry_to_avro(spec.retry),
        "misfire": spec.misfire.value.upper(),
        "notify": notify_to_avro(spec.notify),
        "dedupe_key": spec.dedupe_key,
    }


def spec_from_avro(record: dict[str, Any], jitter_ms: int = 0) -> TaskSpec:
    # jitter_ms is a field of the top-level record, after the spec (streams.kafka.codec)
    return TaskSpec(
        schedule=schedule_from_avro(record["schedule"]),
        target=target_from_avro(record["target"]),
        name=record["name"],
        retry=retry_from_avro(record["retry"]),
        misfire=Misfire(record["misfire"].lower()),
        notify=notify_from_avro(record["notify"]),
        dedupe_key=record["dedupe_key"],
        jitter_ms=jitter_ms,
    )
