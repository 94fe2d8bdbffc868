"""Fuzzing in the suite (issue 12): any schema-valid Avro command through a processor
partition, the projector and the dispatcher's decode path; any REST body through
POST /v1/tasks. Nothing escapes; every command ends applied or dead-lettered.

Bounded examples here (``KRONWHEEL_FUZZ_EXAMPLES`` raises them);
``KRONWHEEL_FUZZ_LONG=1`` adds a run of FUZZ_LONG_COMMANDS Avro commands.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.config import Settings
from streams.core.errors import MalformedEvent
from streams.kafka.codec import codec
from streams.kafka.records import decode_command, decode_dead_letter, decode_due
from streams.kafka.topics import COMMANDS, DEAD, DUE, STATE
from streams.views.readmodel.projector import Projector
from streams.views.readmodel.sqlite import SqliteReadModel
from streams.wheel.partition import Output, PartitionWheel, WheelConfig
from streams.wheel.statestore import PartitionStore
from tests.support.avro_strategies import NOW_MS, records_of

LONG = os.environ.get("KRONWHEEL_FUZZ_LONG") == "1"
FUZZ_LONG_COMMANDS = int(os.environ.get("KRONWHEEL_FUZZ_LONG_COMMANDS", "100000"))
FUZZ_LONG_POOL = 3_000
EXAMPLES = int(os.environ.get("KRONWHEEL_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Record:
    topic_name: str
    key_bytes: bytes | None
    value_bytes: bytes | None
    at: int = 0

    def topic(self) -> str | None:
        return self.topic_name

    def partition(self) -> int | None:
        return 0

    def offset(self) -> int | None:
        return self.at

    def key(self) -> bytes | None:
        return self.key_bytes

    def value(self) -> bytes | None:
        return self.value_bytes

    def error(self) -> object | None:
        return None


class Pipeline:
    """One partition, one projector and its store, shared by every example of a run:
    later commands meet the state earlier ones left (updates, retries, cancels)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        root = Path(self._dir.name)
        self.now_ms = NOW_MS
        config = WheelConfig(horizon_ms=60_000, promote_step_ms=1_000, misfire_grace_ms=10_000)
        self.wheel = PartitionWheel(0, PartitionStore(root / "p.sqlite3"), self.now_ms, config)
        self.wheel.restore([])
        self.wheel.start(self.now_ms)
        self.store = SqliteReadModel(root / "rm.sqlite3")
        self.projector = Projector(Settings(bootstrap_servers="unused:9092"), self.store)
        self.offset = 0
        self.counts = {"applied": 0, "dead": 0, "fired": 0}

    def feed(self, key: bytes | None, value: bytes, advance_ms: int) -> None:
        self.offset += 1
        message = Record(COMMANDS, key, value, self.offset)
        self.wheel.handle(message, self.now_ms)
        self.now_ms += advance_ms
        self.wheel.tick(self.now_ms)
        outputs = self.wheel.take_outputs()
        dead = [o for o in outputs if o.topic == DEAD and o.value is not None]
        mine = [d for d in dead if decode_dead_letter(d.value or b"").original_value == value]
        try:
            decode_command(value)
            valid = True
        except MalformedEvent:
            valid = False
        assert valid or mine, "a command that fails validation must be dead-lettered"
        self.counts["dead" if mine else "applied"] += 1
        for output in outputs:
            if output.topic == DUE:
                self.counts["fired"] += 1
                decode_due(output.value or b"")  # what the processor fires, a dispatcher takes
        self.project(message, outputs)

    def project(self, message: Record, outputs: list[Output]) -> None:
        records = [message] + [
            Record(o.topic, o.key, o.value, self.offset)
            for o in outputs
            if o.topic in (STATE, DEAD)
        ]
        batch = self.projector._project(records)
        self.store.apply(self.projector.name, batch)

    def close(self) -> None:
        self.wheel.close()
        self.store.close()
        self._dir.cleanup()


COMMAND_RECORDS = records_of("TaskCommand")


def test_any_schema_valid_command_is_applied_or_dead_lettered() -> None:
    pipeline = Pipeline()

    @FUZZ
    @given(
        record=COMMAND_RECORDS,
        keyed_right=st.integers(0, 9),
        advance_ms=st.sampled_from([0, 1, 1_000, 30_000, 3_600_000]),
    )
    def one(record: dict[str, Any], keyed_right: int, advance_ms: int) -> None:
        value = codec("TaskCommand").encode(record)
        key = record["task_id"].encode() if keyed_right else b"wrong-key"
        pipeline.feed(key, value, advance_ms)

    try:
        one()
    finally:
        pipeline.close()
    assert pipeline.counts["applied"] > 0
    assert pipeline.counts["dead"] > 0
    assert pipeline.counts["fired"] > 0, "the fuzz must reach firing, not only decoding"


@pytest.mark.skipif(not LONG, reason="the long fuzz runs with KRONWHEEL_FUZZ_LONG=1")
@pytest.mark.timeout(3 * 3600)
def test_long_fuzz_of_avro_commands() -> None:
    """FUZZ_LONG_COMMANDS commands: Hypothesis draws a pool (drawing is most of its cost),
    then each command splices fields of random pool records, field by field, so every
    command is still one the schema allows, and the pool's edge values meet each other."""
    pool: list[dict[str, Any]] = []

    @settings(FUZZ, max_examples=FUZZ_LONG_POOL)
    @given(record=COMMAND_RECORDS)
    def draw(record: dict[str, Any]) -> None:
        pool.append(record)

    started = time.monotonic()
    draw()
    drawn_s = time.monotonic() - started
    rng = random.Random(12)
    pipeline = Pipeline()
    quiet = logging.getLogger("streams")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # 100,000 dead-letter warnings would only fill memory
    try:
        for _ in range(FUZZ_LONG_COMMANDS):
            record = splice(rng, pool)
            key = record["task_id"].encode() if rng.random() < 0.95 else b"wrong-key"
            advance_ms = rng.choice([0, 0, 0, 1, 1_000, 30_000])
            pipeline.feed(key, codec("TaskCommand").encode(record), advance_ms)
    finally:
        quiet.setLevel(level)
        pipeline.close()
    counts = pipeline.counts
    print(
        f"\nfuzz long: {counts['applied'] + counts['dead']} Avro commands in "
        f"{time.monotonic() - started:.0f} s (pool of {len(pool)} drawn in {drawn_s:.0f} s); "
        f"{counts['dead']} dead-lettered, {counts['fired']} firings; no escaped exception"
    )
    assert counts["applied"] + counts["dead"] == FUZZ_LONG_COMMANDS


def splice(rng: random.Random, pool: list[dict[str, Any]]) -> dict[str, Any]:
    """A record whose every field (and every spec field) comes from a random pool record."""
    record = {name: rng.choice(pool)[name] for name in pool[0]}
    specs = [r["spec"] for r in pool if r["spec"] is not None]
    if record["spec"] is not None and specs:
        name, first = rng.choice(specs)
        record["spec"] = (name, {field: rng.choice(specs)[1][field] for field in first})
    return record


@FUZZ
@given(record=records_of("DueTask"))
def test_any_schema_valid_firing_decodes_or_is_malformed(record: dict[str, Any]) -> None:
    with contextlib.suppress(MalformedEvent):
        decode_due(codec("DueTask").encode(record))
