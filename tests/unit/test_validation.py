"""The one validation every way in shares (streams.core.validation), rule by rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.errors import ValidationError
from streams.core.events import CommandKind, RetryRequest, TaskCommand
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    KafkaTarget,
    Limits,
    NotifyPolicy,
    RetryPolicy,
    TaskSpec,
)
from streams.core.validation import DEFAULT_RULES, Rules, check_url, validate_command, validate_spec

NOW = 1_800_000_000_000
OK = TaskSpec(AtSchedule(NOW + 60_000), HttpTarget("https://example.com/hook"))


def refused(spec: TaskSpec, rules: Rules = DEFAULT_RULES) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_spec(spec, NOW, rules)
    return caught.value


def test_a_plain_spec_passes() -> None:
    validate_spec(OK, NOW)


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 0 31 4 *", "0 0 31 4,6,9,11 *"])
def test_a_cron_that_never_fires_is_refused(expression: str) -> None:
    error = refused(replace(OK, schedule=CronSchedule(expression)))
    assert (error.field, error.code) == ("schedule.cron", "never_fires")


def test_a_rare_cron_still_passes() -> None:
    validate_spec(replace(OK, schedule=CronSchedule("0 0 29 2 *")), NOW)


@pytest.mark.parametrize("at_ms", [2**62, -1, 253_402_300_800_000])
def test_instants_are_bounded_to_1970_through_9999(at_ms: int) -> None:
    error = refused(replace(OK, schedule=AtSchedule(at_ms)))
    assert (error.field, error.code) == ("schedule.at", "out_of_range")


def test_interval_bounds() -> None:
    assert refused(replace(OK, schedule=IntervalSchedule(1))).field == "schedule.every_ms"
    start = replace(OK, schedule=IntervalSchedule(60_000, start_ms=-3_600_000))
    assert refused(start).field == "schedule.start"
    end = replace(OK, schedule=IntervalSchedule(60_000, start_ms=NOW, end_ms=2**62))
    assert refused(end).field == "schedule.end"
    backwards = replace(OK, schedule=IntervalSchedule(60_000, start_ms=NOW, end_ms=NOW))
    assert refused(backwards).code == "invalid_range"


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        (RetryPolicy(max_attempts=0), "retry.max_attempts"),
        (RetryPolicy(max_attempts=2**31 - 1), "retry.max_attempts"),
        (RetryPolicy(backoff_ms=-5), "retry.backoff_ms"),
        (RetryPolicy(backoff_ms=1_000, max_backoff_ms=10), "retry.max_backoff_ms"),
    ],
)
def test_retry_limits(retry: RetryPolicy, field: str) -> None:
    assert refused(replace(OK, retry=retry)).field == field


@pytest.mark.parametrize("timeout_ms", [0, -1, 60_001])
def test_timeout_must_be_positive_and_bounded(timeout_ms: int) -> None:
    spec = replace(OK, target=HttpTarget("https://example.com/", timeout_ms=timeout_ms))
    assert refused(spec).field == "target.http.timeout_ms"


@pytest.mark.parametrize(
    "name",
    [
        "Transfer-Encoding",
        "connection",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
        "Proxy-Authorization",
        "Host",
        "Content-Length",
        "Idempotency-Key",
        "Kronwheel-Signature",
    ],
)
def test_reserved_and_hop_by_hop_headers_are_refused(name: str) -> None:
    spec = replace(OK, target=HttpTarget("https://example.com/", headers={name: "x"}))
    assert refused(spec).code == "reserved_header"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-A: injected", "1"),
        ("X A", "1"),
        ("", "1"),
        ("X-É", "1"),
        ("X-B", "a\r\nX-C: 1"),
        ("X-B", "a\0b"),
        ("X-B", "a\nb"),
    ],
)
def test_header_names_are_tokens_and_values_single_lines(name: str, value: str) -> None:
    spec = replace(OK, target=HttpTarget("https://example.com/", headers={name: value}))
    assert refused(spec).code == "invalid_header"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a b",
        "http://example.com/\r\nX: y",
        " http://example.com/",
        "http://exa mple.com/",
        "ftp://example.com/",
        "javascript:alert(1)",
        "http:///path",
        "http://0x7f.1/",
        "http://2130706433/",
        "http://127.1/",
        "http://[::1/",
        "http://exa\u00admple.com/",
    ],
)
def test_strict_urls(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_url(url, "target.http.url", Limits())
    assert caught.value.code == "invalid_url"


@pytest.mark.parametrize("char", ["\u00a0", "\u2028", "\u3000", "\x1c", "\x7f", "\x00", "\t"])
def test_any_whitespace_or_control_character_in_a_url_is_refused(char: str) -> None:
    """Also once the same URL without it was accepted (the check is cached per URL)."""
    assert check_url("http://example.com/ab", "target.http.url", Limits()) == "example.com"
    for _ in range(2):
        with pytest.raises(ValidationError) as caught:
            check_url(f"http://example.com/a{char}b", "target.http.url", Limits())
        assert caught.value.code == "invalid_url"


def test_a_unicode_host_is_checked_as_its_ascii_form() -> None:
    assert (
        check_url("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "f", Limits()) == "127.0.0.1"
    )
    assert check_url("http://bücher.example/", "f", Limits()) == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "topic",
    [
        "tasks.state",
        "tasks.commands",
        "__consumer_offsets",
        "__transaction_state",
        ".",
        "..",
        "a" * 250,
        "bad topic",
        "bad/topic",
        "",
    ],
)
def test_kafka_targets_never_reach_internal_or_own_topics(topic: str) -> None:
    spec = replace(OK, target=KafkaTarget(topic))
    assert refused(spec).field == "target.kafka.topic"


def test_own_topics_follow_the_configured_prefix() -> None:
    spec = replace(OK, target=KafkaTarget("staging.tasks.due"))
    assert refused(spec, Rules(topic_prefix="staging.")).code == "refused_target"
    validate_spec(spec, NOW)  # without the prefix it is a user's topic


def test_notify_urls_get_the_same_rules() -> None:
    spec = replace(OK, notify=NotifyPolicy("http://example.com/a b"))
    assert refused(spec).field == "notify.url"
    assert refused(replace(OK, notify=NotifyPolicy("https://example.com/", frozenset()))).field == (
        "notify.on"
    )


def command(**changes: object) -> TaskCommand:
    base = TaskCommand("c1", "t1", "acme", CommandKind.CREATE, NOW, "test", OK)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_commands_get_the_same_rules_plus_their_own() -> None:
    validate_command(command())
    with pytest.raises(ValidationError, match="issued_at_ms"):
        validate_command(command(issued_at_ms=2**62))
    with pytest.raises(ValidationError, match="tenant"):
        validate_command(command(tenant="ACME!"))
    with pytest.raises(ValidationError, match="every_ms"):
        validate_command(command(spec=replace(OK, schedule=IntervalSchedule(1))))
    retry = RetryRequest(NOW, 2**30, 2**62, "")
    with pytest.raises(ValidationError, match="retry"):
        validate_command(command(kind=CommandKind.RETRY, spec=None, retry=retry))
