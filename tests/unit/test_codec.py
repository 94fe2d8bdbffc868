"""Schemas and codec: every event round-trips; garbage is a MalformedEvent."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.errors import MalformedEvent
from streams.core.events import (
    CommandKind,
    DeadLetter,
    DueTask,
    ExecutionResult,
    FireReason,
    RetryRequest,
    TaskCommand,
    TaskState,
    TaskStatus,
)
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
    TaskSpec,
)
from streams.kafka.codec import ADDED_FIELDS, SCHEMA_FILES, codec, load_schema_json
from streams.kafka.records import (
    decode_command,
    decode_dead_letter,
    decode_due,
    decode_result,
    decode_state,
    encode_command,
    encode_dead_letter,
    encode_due,
    encode_result,
    encode_state,
)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

SPECS = [
    TaskSpec(AtSchedule(1_796_115_600_000), HttpTarget("https://example.com/hook")),
    TaskSpec(
        CronSchedule("0 9 * * MON-FRI", "Europe/Berlin"),
        HttpTarget("https://example.com/h", "PUT", {"X-A": "1"}, "body", 5_000),
        name="nightly",
        retry=RetryPolicy(5, 1_000, 60_000),
        misfire=Misfire.FIRE_ALL,
        notify=NotifyPolicy("https://example.com/alert", frozenset({Outcome.FAILED})),
        dedupe_key="k1",
    ),
    TaskSpec(IntervalSchedule(30_000, 1, 2_000_000), KafkaTarget("out.topic", "k", "v")),
    TaskSpec(IntervalSchedule(30_000), KafkaTarget("out.topic")),
]


@pytest.mark.parametrize("spec", SPECS)
def test_command_round_trip(spec: TaskSpec) -> None:
    command = TaskCommand("c1", "task-1", "acme", CommandKind.CREATE, 123, "svc", spec)
    assert decode_command(encode_command(command)) == command


def test_retry_command_round_trip() -> None:
    command = TaskCommand(
        "c2",
        "task-1",
        "acme",
        CommandKind.RETRY,
        5,
        "dispatcher",
        retry=RetryRequest(1_000, 2, 3_000, "HTTP 503"),
    )
    assert decode_command(encode_command(command)) == command


@pytest.mark.parametrize(
    "command",
    [TaskCommand("c1", "task-1", "acme", CommandKind.CREATE, 123, "svc", s) for s in SPECS]
    + [
        TaskCommand(
            "c2", "t", "acme", CommandKind.RETRY, 5, "d", retry=RetryRequest(1, 2, 3, "HTTP 503")
        ),
        TaskCommand("c3", "t", "acme", CommandKind.CANCEL, 5, "svc"),
    ],
)
def test_records_in_unions_are_written_as_fastavro_would_choose_them(
    command: TaskCommand,
) -> None:
    """The encoders name a union's record branch (tuple notation) to spare fastavro
    validating each branch; the bytes must be those of its own choice from a dict."""
    written = encode_command(command)
    as_dicts = codec("TaskCommand").decode(written)  # a lone record branch: a plain dict
    assert not isinstance(as_dicts["spec"], tuple)
    assert codec("TaskCommand").encode(as_dicts) == written
    state = TaskState("task-1", "acme", SPECS[1], TaskStatus.PAUSED, 10, 5, 3, 1, 2, "c9")
    written = encode_state(state)
    assert codec("TaskState").encode(codec("TaskState").decode(written)) == written


@pytest.mark.parametrize("spec", SPECS)
def test_state_round_trip(spec: TaskSpec) -> None:
    state = TaskState("task-1", "acme", spec, TaskStatus.PAUSED, 10, 5, 3, 1, 2, "c9")
    assert decode_state(encode_state(state)) == state
    with_retries = replace(
        state,
        pending_retries=(RetryRequest(10, 2, 1_010, "HTTP 503"), RetryRequest(20, 3, 2_020)),
        recent_command_ids=("c8", "c9"),
    )
    assert decode_state(encode_state(with_retries)) == with_retries


def test_due_result_and_dead_letter_round_trip() -> None:
    spec = SPECS[1]
    due = DueTask(
        "task-1:10:1", "task-1", "acme", "nightly", 10, 1, 12, spec.target, spec.retry, spec.notify
    )
    assert decode_due(encode_due(due)) == due
    retried = replace(due, fire_id="task-1:10:2", attempt=2, reason=FireReason.RETRY)
    assert decode_due(encode_due(retried)) == retried
    result = ExecutionResult(
        "task-1:10:1",
        "task-1",
        "acme",
        10,
        1,
        Outcome.FAILED,
        False,
        12,
        20,
        2,
        503,
        "HTTP 503",
        "d-1",
    )
    assert decode_result(encode_result(result)) == result
    dead = DeadLetter("bad", "MalformedEvent", "tasks.commands", 2, 77, b"k", b"\x00\x01", "k", 9)
    assert decode_dead_letter(encode_dead_letter(dead)) == dead


@given(st.binary(max_size=200))
def test_garbage_is_a_malformed_event_never_a_crash(data: bytes) -> None:
    with contextlib.suppress(MalformedEvent):
        decode_command(data)


def test_trailing_bytes_are_refused() -> None:
    command = TaskCommand("c1", "task-1", "acme", CommandKind.CANCEL, 1, "svc")
    with pytest.raises(MalformedEvent, match="trailing"):
        decode_command(encode_command(command) + b"\x00")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"task_id": "has space"}, "task_id"),
        ({"kind": "CREATE", "spec": None}, "needs a spec"),
        ({"kind": "RETRY", "retry": None}, "needs a retry"),
    ],
)
def test_valid_avro_with_impossible_content_is_malformed(
    change: dict[str, Any], reason: str
) -> None:
    record: dict[str, Any] = {
        "command_id": "c",
        "task_id": "t",
        "tenant": "a",
        "kind": "CANCEL",
        "issued_at_ms": 1,
        "issuer": "x",
        "spec": None,
        "retry": None,
    }
    record.update(change)
    with pytest.raises(MalformedEvent, match=reason):
        decode_command(codec("TaskCommand").encode(record))


def test_unknown_time_zone_in_a_spec_is_malformed() -> None:
    bad = TaskSpec(CronSchedule("* * * * *", "Mars/Olympus"), HttpTarget("https://e.com"))
    data = encode_command(TaskCommand("c", "t", "a", CommandKind.CREATE, 1, "x", bad))
    with pytest.raises(MalformedEvent, match="timezone"):
        decode_command(data)


def _named_types(schema: Any, found: dict[str, Any]) -> None:
    if isinstance(schema, dict):
        if schema.get("type") in ("record", "enum") and "name" in schema:
            found[schema["name"]] = schema
        for value in schema.values():
            _named_types(value, found)
    elif isinstance(schema, list):
        for item in schema:
            _named_types(item, found)


def test_shared_types_are_identical_in_every_schema_file() -> None:
    """Each .avsc is self-contained for other services; a shared type must not drift."""
    seen: dict[str, tuple[str, Any]] = {}
    for file_name in SCHEMA_FILES.values():
        found: dict[str, Any] = {}
        _named_types(json.loads((SCHEMA_DIR / file_name).read_text()), found)
        for name, definition in found.items():
            if name in seen:
                assert definition == seen[name][1], f"{name} differs in {file_name}"
            else:
                seen[name] = (file_name, definition)


@pytest.mark.parametrize("file_name", sorted(SCHEMA_FILES.values()))
def test_every_optional_field_has_a_default(file_name: str) -> None:
    """Schemas evolve compatibly: nullable fields default to null."""
    schema = json.loads((SCHEMA_DIR / file_name).read_text())
    fastavro.parse_schema(schema)
    found: dict[str, Any] = {}
    _named_types(schema, found)
    for record in (d for d in found.values() if d["type"] == "record"):
        for field in record["fields"]:
            if isinstance(field["type"], list) and "null" in field["type"]:
                assert "default" in field, f"{record['name']}.{field['name']} has no default"


def _written_by_an_older_version(name: str, record: dict[str, Any], dropped: int) -> bytes:
    """The bytes a version without the last ``dropped`` fields wrote for ``record``."""
    schema = load_schema_json(name)
    older = {**schema, "fields": schema["fields"][:-dropped]}
    buffer = io.BytesIO()
    kept = {field["name"] for field in older["fields"]}
    fastavro.schemaless_writer(
        buffer, fastavro.parse_schema(older), {k: v for k, v in record.items() if k in kept}
    )
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "added"), sorted(ADDED_FIELDS.items()))
def test_records_written_before_a_field_was_added_decode_with_its_default(
    name: str, added: tuple[str, ...]
) -> None:
    state = TaskState(
        "t1", "acme", replace(SPECS[1], jitter_ms=0), TaskStatus.SCHEDULED, 5, None, 0, 1, 2
    )
    due = DueTask(
        "t1:5:1", "t1", "acme", "n", 5, 1, 9, HttpTarget("https://e.com/h"), RetryPolicy()
    )
    command = TaskCommand("c1", "t1", "acme", CommandKind.CREATE, 123, "svc", SPECS[1])
    encoded = {"TaskCommand": encode_command(command), "TaskState": encode_state(state)}
    encoded["DueTask"] = encode_due(due)
    today = codec(name).decode(encoded[name])
    for dropped in range(1, len(added) + 1):
        old = _written_by_an_older_version(name, today, dropped)
        assert len(old) < len(encoded[name])
        assert codec(name).decode(old) == today  # the defaults, which these records hold
    # A record with one byte too many is still refused, not read as an older one.
    with pytest.raises(MalformedEvent):
        codec(name).decode(encoded[name] + b"\x00")


def test_the_jitter_of_a_spec_travels_with_commands_states_and_firings() -> None:
    spec = replace(SPECS[1], jitter_ms=45_000)
    command = TaskCommand("c1", "task-1", "acme", CommandKind.CREATE, 123, "svc", spec)
    assert decode_command(encode_command(command)).spec == spec
    state = TaskState("task-1", "acme", spec, TaskStatus.SCHEDULED, 5, None, 0, 1, 2)
    assert decode_state(encode_state(state)) == state
    due = DueTask("t1:5:1", "t1", "acme", "", 5, 1, 9, HttpTarget("https://e.com/h"), RetryPolicy())
    assert decode_due(encode_due(replace(due, jitter_ms=44))).jitter_ms == 44


def test_decoding_cron_states_checks_each_expression_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """croniter's validity check costs ~70 us: a partition's decodes share one per expression."""
    import croniter

    import streams.core.cron as cron

    checks: list[str] = []
    real = croniter.croniter.is_valid

    def counted(expression: str, *args: Any, **kwargs: Any) -> bool:
        checks.append(expression)
        return bool(real(expression, *args, **kwargs))

    monkeypatch.setattr(croniter.croniter, "is_valid", counted)
    cron.validate_cron.cache_clear()
    spec = TaskSpec(CronSchedule("7 */3 * * *", "Asia/Tokyo"), HttpTarget("https://e.com/h"))
    data = encode_state(TaskState("t1", "acme", spec, TaskStatus.SCHEDULED, 5, None, 0, 1, 2))
    for _ in range(3):
        assert decode_state(data).spec == spec
    assert checks == ["7 */3 * * *"]
    for _ in range(2):  # an invalid one stays invalid, cached or not
        with pytest.raises(MalformedEvent):
            decode_state(data.replace(b"7 */3 * * *", b"7 */3 * * X"))
