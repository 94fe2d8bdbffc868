"""Exactly once across a SIGKILL and across rebalances, counted on tasks.due.

Tasks are one-time, created straight on tasks.commands; the test reads
tasks.due with read_committed and counts every fire id. No dispatcher runs:
this is the processor's own guarantee.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections import Counter

import pytest

from streams.config import Settings
from streams.core.model import AtSchedule, HttpTarget, TaskSpec
from streams.kafka.records import decode_due
from streams.kafka.topics import COMMANDS, DUE
from tests.support.harness import Pipeline, create_record, produce_records, read_topic

TASKS = 600
SPACING_MS = 20


def create_tasks(settings: Settings, first_due_ms: int, count: int = TASKS) -> set[str]:
    """Create one-time tasks, SPACING_MS apart from first_due_ms; their fire ids."""
    expected: set[str] = set()
    records: list[tuple[bytes | None, bytes | None]] = []
    for n in range(count):
        task_id = f"task-{n}-{uuid.uuid4().hex[:6]}"
        due_ms = first_due_ms + n * SPACING_MS
        spec = TaskSpec(AtSchedule(due_ms), HttpTarget("https://example.com/hook"))
        records.append(create_record(task_id, spec, issuer="failover-test"))
        expected.add(f"{task_id}:{due_ms}:1")
    produce_records(settings, settings.topic(COMMANDS), records)
    return expected


def fire_id_counts(settings: Settings, expected: set[str], deadline_s: float) -> Counter[str]:
    """Read tasks.due (read_committed) until every expected fire id is there or time is up."""
    deadline = time.monotonic() + deadline_s
    while True:
        counts = Counter(
            decode_due(value).fire_id
            for _, value, _ in read_topic(settings, settings.topic(DUE))
            if value
        )
        if expected <= set(counts) or time.monotonic() > deadline:
            return counts
        time.sleep(1.0)


def assert_exactly_once(counts: Counter[str], expected: set[str]) -> None:
    missing = expected - set(counts)
    doubled = {fire_id: n for fire_id, n in counts.items() if n > 1}
    unexpected = set(counts) - expected
    assert not missing, f"{len(missing)} firings lost, e.g. {sorted(missing)[:3]}"
    assert not doubled, f"{len(doubled)} firings doubled, e.g. {list(doubled.items())[:3]}"
    assert not unexpected, f"unexpected firings: {sorted(unexpected)[:3]}"


def test_sigkill_of_one_of_two_processors_loses_and_doubles_nothing(
    settings: Settings, pipeline: Pipeline
) -> None:
    pipeline.start_ready("processor")
    victim = pipeline.start("processor")
    pipeline.wait_for_log(victim, "assigned [")
    now_ms = int(time.time() * 1000)
    expected = create_tasks(settings, now_ms + 4_000)  # firing from +4 s to +16 s
    time.sleep(7.0)  # mid-stream: a third of the tasks have fired
    pipeline.kill(victim)
    time.sleep(1.0)
    replacement = pipeline.restart(victim)  # same slot: fences the dead one's transaction
    pipeline.wait_for_log(replacement, "assigned [")
    counts = fire_id_counts(settings, expected, deadline_s=60)
    assert_exactly_once(counts, expected)
    for role in pipeline.roles:
        assert "Traceback" not in role.log_text(), role.log_text()[-3000:]


def test_rebalance_from_one_to_two_to_one_processor(settings: Settings, pipeline: Pipeline) -> None:
    first = pipeline.start_ready("processor")["processor"]
    now_ms = int(time.time() * 1000)
    expected = create_tasks(settings, now_ms + 3_000)  # firing from +3 s to +15 s
    time.sleep(4.0)
    second = pipeline.start("processor")
    pipeline.wait_for_log(second, "assigned [")  # partitions moved to it, restored
    time.sleep(2.0)
    pipeline.stop(second)  # graceful: its partitions move back to the first
    pipeline.wait_for_log(first, "assigned [", occurrence=2)
    counts = fire_id_counts(settings, expected, deadline_s=60)
    assert_exactly_once(counts, expected)


@pytest.mark.usefixtures("real_kafka")
def test_sigkill_of_a_single_processor_on_real_kafka(
    settings: Settings, pipeline: Pipeline
) -> None:
    """Where aborted records are hidden, a crash mid-transaction must not show twice."""
    only = pipeline.start_ready("processor")["processor"]
    expected = create_tasks(settings, int(time.time() * 1000) + 3_000)
    time.sleep(6.0)
    pipeline.kill(only)
    replacement = pipeline.restart(only)
    pipeline.wait_for_log(replacement, "assigned [")
    assert_exactly_once(fire_id_counts(settings, expected, deadline_s=90), expected)


def test_a_zombie_in_the_same_slot_is_fenced_and_nothing_doubles(
    settings: Settings, pipeline: Pipeline
) -> None:
    """The classic zombie: a processor freezes (a long pause, a partition from the
    network), its replacement starts in its slot and takes over, then the old one
    wakes up. It must not write again: fenced, it exits. Every firing once."""
    zombie = pipeline.start_ready("processor")["processor"]
    expected = create_tasks(settings, int(time.time() * 1000) + 2_000)
    time.sleep(3.0)
    os.kill(zombie.process.pid, signal.SIGSTOP)
    try:
        successor = pipeline.start("processor", slot=zombie.slot)
        pipeline.wait_for_log(successor, "assigned [0", timeout_s=60)
    finally:
        os.kill(zombie.process.pid, signal.SIGCONT)
    # Awake, the zombie either fails at once (it was frozen mid-commit) or rejoins
    # the group and owns partitions again. Then give every partition work: its
    # first transaction must fail as fenced.
    deadline = time.monotonic() + 60
    while zombie.process.poll() is None and time.monotonic() < deadline:
        if re.search(r"lost \[.*owns \[\d", zombie.log_text(), re.S):
            break
        time.sleep(0.2)
    expected |= create_tasks(settings, int(time.time() * 1000) + 1_000, count=60)
    pipeline.assert_fenced_exit(zombie)
    assert_exactly_once(fire_id_counts(settings, expected, deadline_s=60), expected)
