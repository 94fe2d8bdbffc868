"""Validation of create requests: every bad input names its field."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from streams.core.errors import ValidationError
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    KafkaTarget,
    Limits,
    Misfire,
    Outcome,
    TaskSpec,
    parse_task_spec,
)
from streams.core.timefmt import parse_rfc3339_ms

NOW_MS = parse_rfc3339_ms("2026-11-23T12:00:00Z")
HOOK = {"http": {"url": "https://example.com/hook"}}


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"schedule": {"at": "2026-11-23T12:05:00Z"}, "target": HOOK}
    base.update(overrides)
    return base


def test_minimal_one_time_task_gets_defaults() -> None:
    spec = parse_task_spec(body(), NOW_MS)
    assert spec.schedule == AtSchedule(parse_rfc3339_ms("2026-11-23T12:05:00Z"))
    assert spec.target == HttpTarget("https://example.com/hook")
    assert spec.retry.max_attempts == 1
    assert spec.misfire is Misfire.FIRE_ONCE
    assert spec.notify is None


def test_full_body_of_the_contract() -> None:
    spec = parse_task_spec(
        {
            "name": "nightly-report",
            "schedule": {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"},
            "target": {
                "http": {
                    "url": "https://example.com/hook",
                    "method": "put",
                    "headers": {"X-Team": "billing"},
                    "body": "{}",
                    "timeout_ms": 5000,
                }
            },
            "retry": {"max_attempts": 5, "backoff_ms": 1000, "max_backoff_ms": 60000},
            "misfire": "skip",
            "notify": {"url": "https://example.com/alerts", "on": ["failed", "succeeded"]},
            "dedupe_key": "report-1",
        },
        NOW_MS,
    )
    assert spec.schedule == CronSchedule("0 9 * * MON-FRI", "Europe/Berlin")
    assert spec.target == HttpTarget(
        "https://example.com/hook", "PUT", {"X-Team": "billing"}, "{}", 5000
    )
    assert spec.retry.max_attempts == 5
    assert spec.misfire is Misfire.SKIP
    assert spec.notify is not None
    assert spec.notify.on == {Outcome.FAILED, Outcome.SUCCEEDED}
    assert spec.dedupe_key == "report-1"


def test_interval_and_kafka_target() -> None:
    spec = parse_task_spec(
        body(
            schedule={"every_ms": 30_000, "start": "2026-11-23T12:00:00Z"},
            target={"kafka": {"topic": "billing.ticks", "key": "k", "value": "v"}},
        ),
        NOW_MS,
    )
    assert spec.schedule == IntervalSchedule(30_000, NOW_MS, None)
    assert spec.target == KafkaTarget("billing.ticks", "k", "v")


BAD_INPUTS: list[tuple[str, Any, str, str]] = [
    ("not an object", [], "body", "wrong_type"),
    ("no schedule", {"target": HOOK}, "schedule", "missing"),
    ("no target", {"schedule": {"at": "2026-11-23T12:05:00Z"}}, "target", "missing"),
    ("typo in a field", body(shedule={}), "shedule", "unknown_field"),
    (
        "two schedule kinds",
        body(schedule={"at": "2026-11-23T12:05:00Z", "cron": "* * * * *"}),
        "schedule",
        "invalid_schedule",
    ),
    ("naive at", body(schedule={"at": "2026-11-23T12:05:00"}), "schedule.at", "invalid_time"),
    ("at far in the past", body(schedule={"at": "2026-11-23T11:00:00Z"}), "schedule.at", "in_past"),
    ("invalid cron", body(schedule={"cron": "61 * * * *"}), "schedule.cron", "invalid_cron"),
    ("cron with 4 fields", body(schedule={"cron": "* * * *"}), "schedule.cron", "invalid_cron"),
    (
        "unknown time zone",
        body(schedule={"cron": "* * * * *", "timezone": "Mars/Olympus"}),
        "schedule.timezone",
        "unknown_timezone",
    ),
    ("interval too short", body(schedule={"every_ms": 10}), "schedule.every_ms", "out_of_range"),
    ("interval as bool", body(schedule={"every_ms": True}), "schedule.every_ms", "wrong_type"),
    (
        "end before start",
        body(
            schedule={
                "every_ms": 60_000,
                "start": "2026-11-23T13:00:00Z",
                "end": "2026-11-23T12:30:00Z",
            }
        ),
        "schedule.end",
        "invalid_range",
    ),
    ("unknown target kind", body(target={"grpc": {}}), "target", "unknown_target_kind"),
    (
        "ftp url",
        body(target={"http": {"url": "ftp://example.com/x"}}),
        "target.http.url",
        "invalid_url",
    ),
    (
        "url with credentials",
        body(target={"http": {"url": "https://u:p@example.com/"}}),
        "target.http.url",
        "invalid_url",
    ),
    (
        "bad method",
        body(target={"http": {"url": "https://example.com", "method": "BREW"}}),
        "target.http.method",
        "invalid",
    ),
    (
        "reserved header",
        body(target={"http": {"url": "https://example.com", "headers": {"Idempotency-Key": "x"}}}),
        "target.http.headers.Idempotency-Key",
        "reserved_header",
    ),
    (
        "oversized body",
        body(target={"http": {"url": "https://example.com", "body": "x" * (64 * 1024 + 1)}}),
        "target.http.body",
        "payload_too_large",
    ),
    (
        "timeout too long",
        body(target={"http": {"url": "https://example.com", "timeout_ms": 600_000}}),
        "target.http.timeout_ms",
        "out_of_range",
    ),
    ("bad kafka topic", body(target={"kafka": {"topic": "a b"}}), "target.kafka.topic", "invalid"),
    ("zero attempts", body(retry={"max_attempts": 0}), "retry.max_attempts", "out_of_range"),
    ("unknown misfire", body(misfire="sometimes"), "misfire", "invalid"),
    (
        "notify on nothing",
        body(notify={"url": "https://example.com/a", "on": []}),
        "notify.on",
        "invalid",
    ),
    (
        "notify on unknown",
        body(notify={"url": "https://example.com/a", "on": ["maybe"]}),
        "notify.on",
        "invalid",
    ),
    ("name too long", body(name="n" * 201), "name", "too_long"),
]


@pytest.mark.parametrize(
    ("case", "payload", "field", "code"), BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_names_the_field(case: str, payload: Any, field: str, code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_task_spec(payload, NOW_MS)
    assert (caught.value.field, caught.value.code) == (field, code), case
    assert caught.value.message


def test_at_within_the_grace_is_accepted() -> None:
    limits = Limits(past_grace_ms=10_000)
    spec = parse_task_spec(body(schedule={"at": "2026-11-23T11:59:55Z"}), NOW_MS, limits)
    assert spec.schedule == AtSchedule(NOW_MS - 5_000)


def test_six_field_cron_has_seconds_first() -> None:
    spec = parse_task_spec(body(schedule={"cron": "*/10 * * * * *"}), NOW_MS)
    assert spec.schedule == CronSchedule("*/10 * * * * *", "UTC")


def test_a_create_draws_its_task_id_and_command_id_from_one_random_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uuid

    from streams import ingest
    from streams.core import ids

    draws: list[uuid.UUID] = []

    def counted() -> uuid.UUID:
        draws.append(uuid.UUID(bytes=os.urandom(16), version=4))
        return draws[-1]

    monkeypatch.setattr(uuid, "uuid4", counted)
    spec = TaskSpec(AtSchedule(1_900_000_000_000), HttpTarget("https://example.com/h"))
    commands = [ingest.create_command(spec, tenant="acme", issuer="t", now_ms=1) for _ in range(50)]
    assert len(draws) == 50
    assert len({c.task_id for c in commands}) == len({c.command_id for c in commands}) == 50
    assert all(c.task_id.startswith("acme.") for c in commands)
    assert all(c.command_id == f"create-{d.hex}" for c, d in zip(commands, draws, strict=True))
    deduped = ingest.create_command(
        replace(spec, dedupe_key="k"), tenant="acme", issuer="t", now_ms=1
    )
    assert deduped.task_id == ids.dedupe_task_id("acme", "k")
    assert len(draws) == 50  # derived, not drawn
