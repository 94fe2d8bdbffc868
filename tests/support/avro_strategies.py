"""Hypothesis strategies for any value an Avro schema allows, from the schema file.

Purely random strings and longs would almost all fail the first check (a task
id, a tenant); to reach the deep paths each leaf mixes the whole type's range
with values that are plausible for the field's name (valid ids, cron
expressions, URLs, topics, instants near now and at the edges). Both kinds
are "values the schema allows": nothing here is outside the schema.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from streams.kafka.codec import load_schema_json

NOW_MS = 1_800_000_000_000
LONG = st.integers(-(2**63), 2**63 - 1)
INT = st.integers(-(2**31), 2**31 - 1)
EDGE_MS = st.sampled_from(
    [0, -1, 1, 2**62, 2**63 - 1, -(2**63), 253_402_300_799_999, 253_402_300_800_000]
)
NEAR_MS = st.integers(NOW_MS - 120_000, NOW_MS + 600_000)
# A few ids, so later commands meet the tasks earlier ones created.
TASK_ID = st.one_of(
    st.sampled_from(["t1", "t2", "acme.t3"]), st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")
)


def mostly(likely: Any, rarely: Any) -> st.SearchStrategy[Any]:
    """``likely`` 29 times in 30, ``rarely`` otherwise (one_of has no weights)."""
    # Hypothesis favours small integers; the rare branch is the largest pick.
    return st.integers(0, 29).flatmap(lambda pick: rarely if pick == 29 else likely)


def either(valid: list[Any], invalid: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes one each rule must refuse."""
    return mostly(st.sampled_from(valid), st.sampled_from(invalid))


CRONS = either(
    ["* * * * *", "*/10 * * * * *", "0 9 * * MON-FRI", "0 0 29 2 *", "0 0 31 */2 *"],
    ["0 0 30 2 *", "0 0 0 31 4 *", "61 * * * *", "* *", "@hourly"],
)
ZONES = either(["UTC", "Europe/Berlin", "America/New_York"], ["Mars/Olympus", "", "UTC+1"])
URLS = either(
    ["https://example.com/hook", "http://hooks.example:8080/a?b=c", "http://bücher.example/"],
    [
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
        "http://127\u30020\u30020\u30021/",
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://example.com/a b",
        "http://example.com/\r\nX: y",
        "ftp://example.com/",
        "http:///x",
        "http://[::1/",
        "http://0x7f.1/",
        "http://exa\u00admple.com/",
        "http://user:pw@example.com/",
        "http://example.com:99999/",
        "https://e.com/" + "x" * 3000,
    ],
)
TOPICS = either(
    ["out", "events.v1", "acme_hooks"],
    ["tasks.state", "tasks.commands", "__consumer_offsets", ".", "..", "a" * 250, "bad topic"],
)
HEADER_NAMES = st.sampled_from(
    ["X-Ok", "Transfer-Encoding", "Connection", "Host", "X-A: b", "X B", "Kronwheel-Attempt", "Te"]
)


def _hint(name: str, kind: str) -> st.SearchStrategy[Any] | None:
    """Plausible values for a field, by its name; None: only the type's range."""
    if kind == "string":
        hints = {
            "task_id": TASK_ID,
            "tenant": either(["acme", "default", "b-2"], ["ACME", ""]),
            "command_id": st.uuids().map(str),
            "fire_id": st.uuids().map(str),
            "issuer": either(["svc", "acme/test"], ["", "x" * 201]),
            "expression": CRONS,
            "timezone": ZONES,
            "url": URLS,
            "topic": TOPICS,
            "method": either(["GET", "POST", "PUT"], ["get", "TRACE", ""]),
            "reason": either(["schedule", "trigger", "retry", "misfire"], [""]),
            "name": either(["", "report"], ["x" * 201]),
            "dedupe_key": either(["k1", "k2"], ["x" * 201]),
            "key": either(["k"], ["x" * 1025]),
            "value": either(["{}"], ["x" * 70_000]),
            "body": either(["{}"], ["x" * 70_000]),
        }
        return hints.get(name)
    if kind in ("long", "int"):
        if name == "backoff_ms":
            return either([10, 500, 1_000], [-1, 0, 86_400_001])
        if name == "max_backoff_ms":
            return either([60_000, 86_400_000], [-1, 5, 86_400_001])
        if name == "every_ms":
            return mostly(
                st.sampled_from([1_000, 60_000, 366 * 86_400_000]),
                st.sampled_from([1, 999, 0, -1, 2**62]),
            )
        if name in ("max_attempts", "attempt"):
            return mostly(st.integers(1, 5), st.integers(-2, 25))
        if name == "timeout_ms":
            return mostly(st.integers(1, 60_000), st.sampled_from([0, -5, 60_001]))
        if name == "jitter_ms":
            return either([0, 0, 0, 1, 999, 30_000], [-1, 3_600_001, 2**62])
        if name == "end_ms":
            return mostly(st.integers(NOW_MS + 700_000, NOW_MS + 10**10), EDGE_MS)
        if name.endswith("_ms"):
            return mostly(NEAR_MS, EDGE_MS)
    return None


def strategy_for(schema: Any, field: str = "", named: dict[str, Any] | None = None) -> Any:
    """A strategy of Python values fastavro writes for ``schema`` (unions as (name, value))."""
    named = {} if named is None else named
    if isinstance(schema, str):
        if schema in named:
            return named[schema]
        return _primitive(schema, field)
    if isinstance(schema, list):
        branches = [_branch(branch, field, named) for branch in schema]
        if schema[0] == "null" and len(schema) == 2:
            return mostly(branches[1], branches[0])  # null is the easy, shallow case
        return st.one_of(branches)
    kind = schema["type"]
    if kind == "record":
        name = _full_name(schema)
        fields = {f["name"]: strategy_for(f["type"], f["name"], named) for f in schema["fields"]}
        built = st.fixed_dictionaries(fields)
        named[name] = built
        named[schema["name"]] = built
        return built
    if kind == "enum":
        built = st.sampled_from(schema["symbols"])
        named[_full_name(schema)] = built
        named[schema["name"]] = built
        return built
    if kind == "array":
        items = strategy_for(schema["items"], field, named)
        return mostly(st.lists(items, min_size=1, max_size=4), st.just([]))
    if kind == "map":
        keys = st.one_of(HEADER_NAMES, st.text(max_size=8))
        values = strategy_for(schema["values"], field, named)
        headers = st.dictionaries(keys, values, max_size=4)
        return st.one_of(st.just({}), st.just({}), st.just({"X-Ok": "1"}), headers)
    return _primitive(kind, field)


def _branch(branch: Any, field: str, named: dict[str, Any]) -> Any:
    inner = strategy_for(branch, field, named)
    if isinstance(branch, dict) and branch.get("type") == "record":
        name = _full_name(branch)
        return inner.map(lambda value: (name, value))
    return inner


def _full_name(schema: dict[str, Any]) -> str:
    namespace = schema.get("namespace", "io.kronwheel")
    return f"{namespace}.{schema['name']}"


def _primitive(kind: str, field: str) -> Any:
    base = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": INT,
        "long": LONG,
        "string": st.text(max_size=40),
        "bytes": st.binary(max_size=40),
        "double": st.floats(allow_nan=False),
        "float": st.floats(allow_nan=False, width=32),
    }[kind]
    hint = _hint(field, kind)
    # Mostly plausible: a command reaches the state machine only when every field is.
    return base if hint is None else mostly(hint, base)


def records_of(name: str) -> Any:
    """Any record of the named kronwheel schema (TaskCommand, DueTask, ...)."""
    return strategy_for(load_schema_json(name))
