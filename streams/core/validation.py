"""The one validation of a task and a command, for every way in.

The REST API runs it before it publishes; the processor runs it when it decodes
a command from ``tasks.commands`` (Avro other services produce directly), and
so does ``kronwheel replay``. A spec that passes here can be scheduled, fired,
stored, shown and dispatched without an exception anywhere downstream: its
instants format as RFC 3339, its schedule fires at least once, its numbers are
inside the limits, its URLs mean one host to every parser, and its headers
cannot smuggle a second request.

Every failure is a :class:`ValidationError` naming the field (dotted path) and
a code; docs/api.md lists the codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from streams.core.cron import next_cron_ms, validate_cron, validate_timezone
from streams.core.errors import ValidationError
from streams.core.events import CommandKind, DueTask, TaskCommand
from streams.core.ids import is_valid_task_id, is_valid_tenant
from streams.core.jitter import MAX_JITTER_MS
from streams.core.model import (
    HTTP_METHODS,
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    KafkaTarget,
    Limits,
    NotifyPolicy,
    RetryPolicy,
    Schedule,
    TaskSpec,
)
from streams.core.netguard import canonical_host
from streams.core.timefmt import MAX_INSTANT_MS, MIN_INSTANT_MS

# Headers that frame or route the request (hop-by-hop, RFC 9110 section 7.6.1),
# or that the dispatcher sets itself: a task setting them could smuggle a second
# request, or forge an idempotency key or a signature.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "idempotency-key",
    }
)
RESERVED_HEADER_PREFIXES = ("kronwheel-", "proxy-")
# RFC 9110 token: the only characters a header name may have.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE_CHARS = ("\r", "\n", "\0")
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
# The numeric last label of a host is an IPv4 address to a WHATWG parser
# (0x7f.1, 2130706433); to the HTTP client it is a name. One meaning only.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
# Whitespace (as str.isspace: re's \s is the same Unicode test) and control characters.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
MAX_INTERVAL_MS = 366 * 86_400_000
MAX_BACKOFF_MS = 86_400_000
MIN_BACKOFF_MS = 10
MAX_DEDUPE_KEY_CHARS = 200
MAX_KAFKA_KEY_CHARS = 1_024
MAX_ID_CHARS = 200
# Runs of a cron looked at for its shortest gap. Jitter is at most an hour, and a
# gap under an hour nearly always shows within a few runs; a rarer one that does
# not only lets two runs come close, it breaks nothing.
PERIOD_SAMPLE = 8
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Rules:
    """What validation needs to know beyond the spec: the limits and kronwheel's topics."""

    limits: Limits = DEFAULT_LIMITS
    topic_prefix: str = ""


DEFAULT_RULES = Rules()


def validate_spec(spec: TaskSpec, now_ms: int, rules: Rules = DEFAULT_RULES) -> None:
    """Raise ValidationError unless the spec can run; ``now_ms`` is the time it is issued."""
    limits = rules.limits
    if len(spec.name) > limits.max_name_chars:
        raise ValidationError(
            "name", f"is longer than {limits.max_name_chars} characters", "too_long"
        )
    if spec.dedupe_key is not None and len(spec.dedupe_key) > MAX_DEDUPE_KEY_CHARS:
        raise ValidationError(
            "dedupe_key", f"is longer than {MAX_DEDUPE_KEY_CHARS} characters", "too_long"
        )
    validate_schedule(spec.schedule, now_ms, limits)
    if spec.jitter_ms:
        check_jitter(spec.schedule, spec.jitter_ms, now_ms)
    if isinstance(spec.target, HttpTarget):
        _http_target(spec.target, limits)
    else:
        _kafka_target(spec.target, rules)
    _retry(spec.retry, limits)
    if spec.notify is not None:
        _notify(spec.notify, limits)


def validate_schedule(schedule: Schedule, now_ms: int, limits: Limits) -> None:
    match schedule:
        case AtSchedule(at_ms=at_ms):
            check_instant(at_ms, "schedule.at")
        case CronSchedule(expression=expression, timezone=timezone):
            _cron(expression, timezone, now_ms)
        case IntervalSchedule(every_ms=every_ms, start_ms=start_ms, end_ms=end_ms):
            check_range(every_ms, "schedule.every_ms", limits.min_interval_ms, MAX_INTERVAL_MS)
            if start_ms is not None:
                check_instant(start_ms, "schedule.start")
            if end_ms is not None:
                check_instant(end_ms, "schedule.end")
                if start_ms is not None and end_ms <= start_ms:
                    raise ValidationError(
                        "schedule.end", "must be after the start", "invalid_range"
                    )


def _cron(expression: str, timezone: str, now_ms: int) -> None:
    if len(expression) > 200:
        raise ValidationError("schedule.cron", "is longer than 200 characters", "too_long")
    problem = validate_cron(expression)
    if problem:
        raise ValidationError("schedule.cron", problem, "invalid_cron")
    if not validate_timezone(timezone):
        raise ValidationError(
            "schedule.timezone", f"unknown time zone {timezone!r}", "unknown_timezone"
        )
    try:
        first = next_cron_ms(expression, timezone, now_ms)
    except Exception:  # croniter has more ways to say "no such date" than one
        first = None
    if first is None or first > MAX_INSTANT_MS:
        raise ValidationError(
            "schedule.cron", f"{expression!r} never fires (no such date)", "never_fires"
        )


def check_jitter(schedule: Schedule, jitter_ms: int, now_ms: int) -> None:
    """At most MAX_JITTER_MS, and shorter than the schedule's period: a run then
    never falls due after the next one, and the runs keep their order."""
    check_range(jitter_ms, "schedule.jitter_ms", 0, MAX_JITTER_MS)
    period = shortest_period_ms(schedule, now_ms)
    if period is not None and jitter_ms >= period:
        raise ValidationError(
            "schedule.jitter_ms",
            f"must be shorter than the schedule's period ({period} ms)",
            "out_of_range",
        )


def shortest_period_ms(schedule: Schedule, now_ms: int) -> int | None:
    """The interval, or the shortest gap between a cron's next PERIOD_SAMPLE runs
    (None: a one-time task, or a cron that runs fewer times)."""
    match schedule:
        case IntervalSchedule(every_ms=every_ms):
            return every_ms
        case CronSchedule(expression=expression, timezone=timezone):
            runs: list[int] = []
            following = next_cron_ms(expression, timezone, now_ms)
            while following is not None and len(runs) < PERIOD_SAMPLE:
                runs.append(following)
                following = next_cron_ms(expression, timezone, following)
            gaps = [later - earlier for earlier, later in pairwise(runs)]
            return min(gaps) if gaps else None
        case _:
            return None


def check_instant(value: int, field: str) -> None:
    """Instants are 1970-01-01 to 9999-12-31 UTC: every one formats as RFC 3339."""
    if not MIN_INSTANT_MS <= value <= MAX_INSTANT_MS:
        raise ValidationError(
            field,
            "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z",
            "out_of_range",
        )


def check_range(value: int, field: str, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValidationError(field, f"must be between {low} and {high}", "out_of_range")


@lru_cache(maxsize=4096)
def check_url(url: str, field: str, limits: Limits) -> str:
    """A strict http(s) URL: one host to every parser; returns its canonical host.

    Cached (a pure function): every command and every firing checks its URLs,
    most tasks share a few, and the check costs about 15 us."""
    if len(url) > limits.max_url_chars:
        raise ValidationError(
            field, f"is longer than {limits.max_url_chars} characters", "too_long"
        )
    if _SPACE_OR_CONTROL.search(url):
        raise ValidationError(
            field, "must not contain whitespace or control characters", "invalid_url"
        )
    scheme = url.partition(":")[0].lower()
    if scheme not in ("http", "https"):
        raise ValidationError(field, "must be an http:// or https:// URL", "invalid_url")
    try:
        host = canonical_host(url)
    except ValueError as exc:
        raise ValidationError(field, f"is not a valid URL: {exc}", "invalid_url") from None
    if not host:
        raise ValidationError(field, "has no host", "invalid_url")
    if not host.isascii():
        raise ValidationError(field, "has a host that is not ASCII after IDNA", "invalid_url")
    if ":" not in host and _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
        _dotted_quad(host, field)
    return host


def _dotted_quad(host: str, field: str) -> None:
    parts = host.rstrip(".").split(".")
    if len(parts) != 4 or not all(p.isdigit() and p == str(int(p)) and int(p) < 256 for p in parts):
        raise ValidationError(
            field, "has a numeric host that is not a dotted-quad IPv4 address", "invalid_url"
        )


def _http_target(target: HttpTarget, limits: Limits) -> None:
    check_url(target.url, "target.http.url", limits)
    if target.method not in HTTP_METHODS:
        raise ValidationError("target.http.method", f"must be one of {sorted(HTTP_METHODS)}")
    check_headers(target.headers, "target.http.headers", limits)
    _payload(target.body, "target.http.body", limits)
    check_range(target.timeout_ms, "target.http.timeout_ms", 1, limits.max_timeout_ms)


def check_headers(headers: dict[str, str] | object, field: str, limits: Limits) -> None:
    assert isinstance(headers, dict)
    if len(headers) > limits.max_headers:
        raise ValidationError(field, f"may hold at most {limits.max_headers} headers", "too_many")
    for name, value in headers.items():
        where = f"{field}.{name}"
        if not _TOKEN.match(name):
            raise ValidationError(
                where, "is not an HTTP header name (RFC 9110 token)", "invalid_header"
            )
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIXES):
            raise ValidationError(where, "is set by kronwheel or the connection", "reserved_header")
        if any(c in value for c in _BAD_VALUE_CHARS):
            raise ValidationError(where, "must not contain CR, LF or NUL", "invalid_header")
        if len(value) > limits.max_url_chars:
            raise ValidationError(
                where, f"is longer than {limits.max_url_chars} characters", "too_long"
            )


def _kafka_target(target: KafkaTarget, rules: Rules) -> None:
    topic = target.topic
    field = "target.kafka.topic"
    if not _KAFKA_TOPIC.match(topic) or topic in (".", ".."):
        raise ValidationError(
            field,
            "must be 1-249 of letters, digits, '.', '_', '-' and not . or ..",
            "invalid_topic",
        )
    if topic.startswith("__"):
        raise ValidationError(field, "is a Kafka internal topic", "refused_target")
    if topic.startswith(f"{rules.topic_prefix}tasks."):
        raise ValidationError(field, "is one of kronwheel's own topics", "refused_target")
    if target.key is not None and len(target.key) > MAX_KAFKA_KEY_CHARS:
        raise ValidationError(
            "target.kafka.key", f"is longer than {MAX_KAFKA_KEY_CHARS} characters", "too_long"
        )
    _payload(target.value, "target.kafka.value", rules.limits)


def _retry(retry: RetryPolicy, limits: Limits) -> None:
    check_range(retry.max_attempts, "retry.max_attempts", 1, limits.max_attempts)
    check_range(retry.backoff_ms, "retry.backoff_ms", MIN_BACKOFF_MS, MAX_BACKOFF_MS)
    check_range(retry.max_backoff_ms, "retry.max_backoff_ms", retry.backoff_ms, MAX_BACKOFF_MS)


def _notify(notify: NotifyPolicy, limits: Limits) -> None:
    check_url(notify.url, "notify.url", limits)
    if not notify.on:
        raise ValidationError("notify.on", "must be a non-empty list of failed, succeeded")


def _payload(payload: str | None, field: str, limits: Limits) -> None:
    if (
        payload is not None
        and len(payload.encode("utf-8", "surrogatepass")) > limits.max_payload_bytes
    ):
        raise ValidationError(
            field, f"is larger than {limits.max_payload_bytes} bytes", "payload_too_large"
        )


def validate_command(command: TaskCommand, rules: Rules = DEFAULT_RULES) -> None:
    """The same rules for a command read from tasks.commands (any producer)."""
    if not is_valid_task_id(command.task_id):
        raise ValidationError("task_id", "is not a valid task id", "invalid_task_id")
    if not is_valid_tenant(command.tenant):
        raise ValidationError("tenant", "is not a valid tenant", "invalid_tenant")
    for name, text in (("command_id", command.command_id), ("issuer", command.issuer)):
        if not 0 < len(text) <= MAX_ID_CHARS:
            raise ValidationError(name, f"must be 1 to {MAX_ID_CHARS} characters", "out_of_range")
    check_instant(command.issued_at_ms, "issued_at_ms")
    if command.kind in (CommandKind.CREATE, CommandKind.UPDATE) and command.spec is None:
        raise ValidationError.missing("spec")
    if command.spec is not None:  # any kind: the audit trail shows whatever spec it carries
        validate_spec(command.spec, command.issued_at_ms, rules)
    if command.kind is CommandKind.RETRY:
        retry = command.retry
        if retry is None:
            raise ValidationError.missing("retry")
        check_instant(retry.scheduled_at_ms, "retry.scheduled_at_ms")
        check_instant(retry.run_at_ms, "retry.run_at_ms")
        check_range(retry.attempt, "retry.attempt", 2, rules.limits.max_attempts)


def validate_due(due: DueTask, rules: Rules = DEFAULT_RULES) -> None:
    """A firing read from tasks.due: its target and policies pass the same rules, so a
    record another producer wrote cannot take the dispatcher where the API would not."""
    if not is_valid_task_id(due.task_id):
        raise ValidationError("task_id", "is not a valid task id", "invalid_task_id")
    check_instant(due.scheduled_at_ms, "scheduled_at_ms")
    check_instant(due.emitted_at_ms, "emitted_at_ms")
    _retry(due.retry, rules.limits)
    # Not against due.retry: an update may lower max_attempts under a pending retry.
    check_range(due.attempt, "attempt", 1, rules.limits.max_attempts)
    if isinstance(due.target, HttpTarget):
        _http_target(due.target, rules.limits)
    else:
        _kafka_target(due.target, rules)
    if due.notify is not None:
        _notify(due.notify, rules.limits)
