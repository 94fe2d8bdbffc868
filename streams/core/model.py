"""The task model: what a task is, and the validation of a create request.

Validation errors name the field with a dotted path so the API can answer
``{"error": {"code", "message", "field"}}`` and a person knows what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from streams.core.cron import validate_cron, validate_timezone
from streams.core.errors import ValidationError
from streams.core.jitter import MAX_JITTER_MS
from streams.core.timefmt import parse_rfc3339_ms


@dataclass(frozen=True, slots=True)
class AtSchedule:
    at_ms: int


@dataclass(frozen=True, slots=True)
class CronSchedule:
    expression: str
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    every_ms: int
    start_ms: int | None = None
    end_ms: int | None = None


Schedule = AtSchedule | CronSchedule | IntervalSchedule


@dataclass(frozen=True, slots=True)
class HttpTarget:
    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    timeout_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    topic: str
    key: str | None = None
    value: str | None = None


Target = HttpTarget | KafkaTarget


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff_ms: int = 1_000
    max_backoff_ms: int = 60_000


class Misfire(StrEnum):
    """What to do with firings that fell due while nobody owned the task."""

    FIRE_ONCE = "fire_once"
    FIRE_ALL = "fire_all"
    SKIP = "skip"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NotifyPolicy:
    url: str
    on: frozenset[Outcome] = frozenset({Outcome.FAILED})


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """Everything a user says about a task; the processors add the rest."""

    schedule: Schedule
    target: Target
    name: str = ""
    retry: RetryPolicy = RetryPolicy()
    misfire: Misfire = Misfire.FIRE_ONCE
    notify: NotifyPolicy | None = None
    dedupe_key: str | None = None
    # schedule.jitter_ms in JSON: each run fires up to this much after its nominal
    # time, by a deterministic offset (streams.core.jitter).
    jitter_ms: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits, named so an operator can find and tune them."""

    past_grace_ms: int = 10_000
    max_payload_bytes: int = 64 * 1024
    max_name_chars: int = 200
    max_url_chars: int = 2_048
    max_headers: int = 32
    min_interval_ms: int = 1_000
    max_timeout_ms: int = 60_000
    max_attempts: int = 20


HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
# Headers the dispatcher sets itself; letting a task set them would let it forge
# an idempotency key or a signature.
RESERVED_HEADER_PREFIXES = ("idempotency-key", "kronwheel-", "host", "content-length")
TASK_FIELDS = frozenset({"name", "schedule", "target", "retry", "misfire", "notify", "dedupe_key"})


def parse_task_spec(body: Any, now_ms: int, limits: Limits = Limits()) -> TaskSpec:
    """Validate a create request body (already JSON-decoded) into a TaskSpec."""
    obj = _object(body, "body")
    _refuse_unknown(obj, TASK_FIELDS, "")
    if "schedule" not in obj:
        raise ValidationError.missing("schedule")
    if "target" not in obj:
        raise ValidationError.missing("target")
    name = _optional_str(obj, "name", "name", limits.max_name_chars) or ""
    dedupe_key = _optional_str(obj, "dedupe_key", "dedupe_key", 200)
    misfire_text = _optional_str(obj, "misfire", "misfire", 20) or Misfire.FIRE_ONCE.value
    try:
        misfire = Misfire(misfire_text)
    except ValueError:
        allowed = ", ".join(m.value for m in Misfire)
        raise ValidationError("misfire", f"must be one of {allowed}") from None
    return TaskSpec(
        schedule=parse_schedule(obj["schedule"], now_ms, limits),
        jitter_ms=parse_jitter(obj["schedule"]),
        target=parse_target(obj["target"], limits),
        name=name,
        retry=_parse_retry(obj.get("retry"), limits),
        misfire=misfire,
        notify=_parse_notify(obj.get("notify"), limits),
        dedupe_key=dedupe_key,
    )


def parse_schedule(value: Any, now_ms: int, limits: Limits) -> Schedule:
    obj = _object(value, "schedule")
    kinds = [k for k in ("at", "cron", "every_ms") if k in obj]
    if len(kinds) != 1:
        raise ValidationError(
            "schedule", "must have exactly one of at, cron, every_ms", "invalid_schedule"
        )
    kind = kinds[0]
    if kind == "at":
        _refuse_unknown(obj, {"at", "jitter_ms"}, "schedule.")
        at_ms = _instant(obj["at"], "schedule.at")
        if at_ms < now_ms - limits.past_grace_ms:
            raise ValidationError(
                "schedule.at",
                f"is in the past (more than {limits.past_grace_ms} ms ago)",
                "in_past",
            )
        return AtSchedule(at_ms)
    if kind == "cron":
        _refuse_unknown(obj, {"cron", "timezone", "jitter_ms"}, "schedule.")
        expression = _required_str(obj, "cron", "schedule.cron", 200)
        timezone = _optional_str(obj, "timezone", "schedule.timezone", 64) or "UTC"
        problem = validate_cron(expression)
        if problem:
            raise ValidationError("schedule.cron", problem, "invalid_cron")
        if not validate_timezone(timezone):
            raise ValidationError(
                "schedule.timezone", f"unknown time zone {timezone!r}", "unknown_timezone"
            )
        return CronSchedule(expression, timezone)
    _refuse_unknown(obj, {"every_ms", "start", "end", "jitter_ms"}, "schedule.")
    every_ms = _int(obj["every_ms"], "schedule.every_ms", limits.min_interval_ms, 366 * 86_400_000)
    start_ms = _instant(obj["start"], "schedule.start") if obj.get("start") is not None else None
    end_ms = _instant(obj["end"], "schedule.end") if obj.get("end") is not None else None
    if end_ms is not None and end_ms <= (start_ms if start_ms is not None else now_ms):
        raise ValidationError("schedule.end", "must be after the start (or now)", "invalid_range")
    return IntervalSchedule(every_ms, start_ms, end_ms)


def parse_jitter(value: Any) -> int:
    """``schedule.jitter_ms`` (0 when absent); its bounds depend on the schedule and
    are checked by streams.core.validation.validate_spec."""
    jitter = _object(value, "schedule").get("jitter_ms")
    return 0 if jitter is None else _int(jitter, "schedule.jitter_ms", 0, MAX_JITTER_MS)


def parse_target(value: Any, limits: Limits) -> Target:
    obj = _object(value, "target")
    kinds = [k for k in obj if k in ("http", "kafka")]
    if len(obj) != 1 or len(kinds) != 1:
        raise ValidationError(
            "target", "must have exactly one of http, kafka", "unknown_target_kind"
        )
    if kinds[0] == "http":
        return _parse_http_target(obj["http"], limits)
    kafka = _object(obj["kafka"], "target.kafka")
    _refuse_unknown(kafka, {"topic", "key", "value"}, "target.kafka.")
    topic = _required_str(kafka, "topic", "target.kafka.topic", 249)
    if not all(c.isalnum() or c in "._-" for c in topic):
        raise ValidationError("target.kafka.topic", "may hold only letters, digits, '.', '_', '-'")
    key = _optional_str(kafka, "key", "target.kafka.key", 1024)
    payload = _optional_str(kafka, "value", "target.kafka.value", None)
    _check_payload(payload, "target.kafka.value", limits)
    return KafkaTarget(topic, key, payload)


def _parse_http_target(value: Any, limits: Limits) -> HttpTarget:
    http = _object(value, "target.http")
    _refuse_unknown(http, {"url", "method", "headers", "body", "timeout_ms"}, "target.http.")
    url = _http_url(
        _required_str(http, "url", "target.http.url", limits.max_url_chars), "target.http.url"
    )
    method = (_optional_str(http, "method", "target.http.method", 10) or "POST").upper()
    if method not in HTTP_METHODS:
        raise ValidationError("target.http.method", f"must be one of {sorted(HTTP_METHODS)}")
    headers = _headers(http.get("headers"), "target.http.headers", limits)
    body = _optional_str(http, "body", "target.http.body", None)
    _check_payload(body, "target.http.body", limits)
    timeout_ms = (
        _int(http["timeout_ms"], "target.http.timeout_ms", 1, limits.max_timeout_ms)
        if http.get("timeout_ms") is not None
        else 10_000
    )
    return HttpTarget(url, method, headers, body, timeout_ms)


def _parse_retry(value: Any, limits: Limits) -> RetryPolicy:
    if value is None:
        return RetryPolicy()
    obj = _object(value, "retry")
    _refuse_unknown(obj, {"max_attempts", "backoff_ms", "max_backoff_ms"}, "retry.")
    default = RetryPolicy()
    max_attempts = _int(
        obj.get("max_attempts", default.max_attempts), "retry.max_attempts", 1, limits.max_attempts
    )
    backoff_ms = _int(obj.get("backoff_ms", default.backoff_ms), "retry.backoff_ms", 10, 86_400_000)
    max_backoff_ms = _int(
        obj.get("max_backoff_ms", max(default.max_backoff_ms, backoff_ms)),
        "retry.max_backoff_ms",
        backoff_ms,
        86_400_000,
    )
    return RetryPolicy(max_attempts, backoff_ms, max_backoff_ms)


def _parse_notify(value: Any, limits: Limits) -> NotifyPolicy | None:
    if value is None:
        return None
    obj = _object(value, "notify")
    _refuse_unknown(obj, {"url", "on"}, "notify.")
    url = _http_url(_required_str(obj, "url", "notify.url", limits.max_url_chars), "notify.url")
    on_raw = obj.get("on", [Outcome.FAILED.value])
    if not isinstance(on_raw, list) or not on_raw:
        raise ValidationError("notify.on", "must be a non-empty list of failed, succeeded")
    try:
        on = frozenset(Outcome(item) for item in on_raw)
    except ValueError:
        raise ValidationError("notify.on", "may hold only failed, succeeded") from None
    return NotifyPolicy(url, on)


# --- small typed readers -----------------------------------------------------


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError.wrong_type(path, "an object")
    return value


def _refuse_unknown(
    obj: Mapping[str, Any], allowed: frozenset[str] | set[str], prefix: str
) -> None:
    for key in obj:
        if key not in allowed:
            raise ValidationError(f"{prefix}{key}", "is not a known field", "unknown_field")


def _required_str(obj: Mapping[str, Any], key: str, path: str, max_chars: int | None) -> str:
    if obj.get(key) is None:
        raise ValidationError.missing(path)
    text = _optional_str(obj, key, path, max_chars)
    if not text:
        raise ValidationError(path, "must not be empty")
    return text


def _optional_str(obj: Mapping[str, Any], key: str, path: str, max_chars: int | None) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError.wrong_type(path, "a string")
    if max_chars is not None and len(value) > max_chars:
        raise ValidationError(path, f"is longer than {max_chars} characters", "too_long")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    # bool is an int in Python; `true` is not a number of milliseconds.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError.wrong_type(path, "an integer")
    if not low <= value <= high:
        raise ValidationError(path, f"must be between {low} and {high}", "out_of_range")
    return value


def _instant(value: Any, path: str) -> int:
    if not isinstance(value, str):
        raise ValidationError.wrong_type(path, "an RFC 3339 timestamp string")
    try:
        return parse_rfc3339_ms(value)
    except ValueError as exc:
        raise ValidationError(
            path, f"is not an RFC 3339 timestamp: {exc}", "invalid_time"
        ) from None


def _http_url(url: str, path: str) -> str:
    try:
        parts = urlsplit(url)
        _ = parts.hostname
    except ValueError as exc:
        raise ValidationError(path, f"is not a valid URL: {exc}", "invalid_url") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError(path, "must be an http:// or https:// URL", "invalid_url")
    if not parts.hostname:
        raise ValidationError(path, "has no host", "invalid_url")
    if parts.username or parts.password:
        raise ValidationError(path, "must not carry credentials; use headers", "invalid_url")
    try:
        _ = parts.port
    except ValueError:
        raise ValidationError(path, "has an invalid port", "invalid_url") from None
    return url


def _headers(value: Any, path: str, limits: Limits) -> dict[str, str]:
    if value is None:
        return {}
    obj = _object(value, path)
    if len(obj) > limits.max_headers:
        raise ValidationError(path, f"may hold at most {limits.max_headers} headers", "too_many")
    headers: dict[str, str] = {}
    for name, header_value in obj.items():
        if not isinstance(header_value, str):
            raise ValidationError.wrong_type(f"{path}.{name}", "a string")
        lowered = name.lower()
        if any(lowered.startswith(prefix) for prefix in RESERVED_HEADER_PREFIXES):
            raise ValidationError(f"{path}.{name}", "is set by kronwheel itself", "reserved_header")
        if "\n" in name or "\r" in name or "\n" in header_value or "\r" in header_value:
            raise ValidationError(f"{path}.{name}", "must not contain line breaks")
        headers[name] = header_value
    return headers


def _check_payload(payload: str | None, path: str, limits: Limits) -> None:
    if payload is not None and len(payload.encode()) > limits.max_payload_bytes:
        raise ValidationError(
            path, f"is larger than {limits.max_payload_bytes} bytes", "payload_too_large"
        )
