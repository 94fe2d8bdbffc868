"""Static assignment (what ``kronwheel dev`` uses on its embedded broker): a
processor SIGKILLed and restarted in its slot takes its partitions back in its
first poll, with no group coordinator, and loses and doubles nothing; a zombie
in the same slot is fenced by the transactional id its member index names.

Counted on tasks.due as in test_processor_failover (no dispatcher runs).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

from streams.config import Settings
from tests.integration.test_processor_failover import (
    assert_exactly_once,
    create_tasks,
    fire_id_counts,
)
from tests.support.harness import Pipeline


def static_pipeline(pipeline: Pipeline, processors: int) -> Pipeline:
    """The test's pipeline, its processors members of a static assignment."""
    settings = replace(pipeline.settings, assignment="static")
    static = Pipeline(settings, pipeline.log_dir, members={"processor": processors})
    static.roles = pipeline.roles  # started roles are stopped by the fixture
    return static


def test_static_processor_sigkilled_and_restarted_in_its_slot_loses_and_doubles_nothing(
    settings: Settings, pipeline: Pipeline
) -> None:
    static = static_pipeline(pipeline, processors=2)
    survivor = static.start("processor")  # member 0 of 2: partitions 0 and 2
    victim = static.start("processor")  # member 1 of 2: partition 1
    static.wait_for_log(survivor, "assigned [0, 2]")
    static.wait_for_log(victim, "assigned [1]")
    expected = create_tasks(settings, int(time.time() * 1000) + 3_000)  # +3 s .. +15 s
    time.sleep(6.0)  # mid-stream
    static.kill(victim)
    replacement = static.restart(victim)  # at once, in its slot and member index
    static.wait_for_log(replacement, "assigned [1]")
    assert_exactly_once(fire_id_counts(settings, expected, deadline_s=60), expected)
    # Nobody rebalanced: the survivor was assigned once and never lost anything.
    assert survivor.log_text().count("assigned [") == 1, survivor.log_text()[-2000:]
    for role in static.roles:
        assert "Traceback" not in role.log_text(), role.log_text()[-3000:]


def test_a_static_zombie_in_the_same_slot_is_fenced_and_nothing_doubles(
    settings: Settings, pipeline: Pipeline
) -> None:
    """A static member keeps its partitions whatever happens (no coordinator takes
    them away), so a frozen processor that wakes after its successor started in
    its slot still believes it owns them. Its next commit must fail, fenced by
    the successor's init_transactions under the same transactional id, and it exits."""
    static = static_pipeline(pipeline, processors=1)
    zombie = static.start("processor")
    static.wait_for_log(zombie, "assigned [0, 1, 2]")
    expected = create_tasks(settings, int(time.time() * 1000) + 2_000)
    time.sleep(3.0)
    os.kill(zombie.process.pid, signal.SIGSTOP)
    try:
        successor = static.restart(zombie)
        static.wait_for_log(successor, "assigned [0, 1, 2]", timeout_s=60)
    finally:
        os.kill(zombie.process.pid, signal.SIGCONT)
    # Work due now on every partition: the zombie's next transaction is fenced.
    expected |= create_tasks(settings, int(time.time() * 1000) + 500, count=60)
    deadline = time.monotonic() + 60
    while zombie.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert zombie.process.returncode == 1, zombie.log_text()[-2000:]
    assert "fatal Kafka error" in zombie.log_text()
    assert_exactly_once(fire_id_counts(settings, expected, deadline_s=60), expected)
