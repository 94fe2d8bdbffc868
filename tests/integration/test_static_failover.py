"""Static assignment (what ``kronwheel dev`` uses on its embedded broker): a
processor or a dispatcher SIGKILLed and restarted in its slot takes its
partitions back in its first poll, with no group coordinator, and loses and
doubles nothing; a zombie in the same slot is fenced by the transactional id
its member index names, and exits.

The processor's firings are counted on tasks.due as in test_processor_failover
(no dispatcher runs); the dispatchers' outcomes in the history store, as in
test_dispatcher (no processor runs).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import replace

from streams.config import Settings
from tests.integration.test_dispatcher import due_task, history_rows, produce_due
from tests.integration.test_processor_failover import (
    assert_exactly_once,
    create_tasks,
    fire_id_counts,
)
from tests.support.harness import CallbackSink, Pipeline
from tests.support.waiting import wait_until


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
    static.assert_fenced_exit(zombie)
    assert_exactly_once(fire_id_counts(settings, expected, deadline_s=60), expected)


def test_static_dispatchers_a_sigkill_and_a_fenced_zombie_leave_one_outcome_per_fire_id(
    settings: Settings, pipeline: Pipeline
) -> None:
    """Two static dispatchers (0 and 1 of 2). Member 0 is SIGKILLed mid-stream and
    restarted in its slot; then member 1 freezes, a successor starts in its slot,
    and when it wakes its next commit is fenced and it exits. Every fire id has
    exactly one outcome in the history store."""
    static = static_pipeline(pipeline, processors=1)
    static.members["dispatcher"] = 2
    first, second = static.start("dispatcher"), static.start("dispatcher")
    static.wait_for_log(first, "assigned [0, 2]")
    static.wait_for_log(second, "assigned [1]")
    run = uuid.uuid4().hex[:8]
    with CallbackSink() as sink:
        wave1 = [due_task(f"static-{run}-{i}", sink.url) for i in range(300)]
        produce_due(settings, wave1)
        sink.wait_for(60, timeout_s=30)
        static.kill(first)
        restarted = static.restart(first)
        wave2 = [due_task(f"static-{run}-{i}", sink.url) for i in range(300, 600)]
        produce_due(settings, wave2)
        static.wait_for_log(restarted, "assigned [0, 2]")
        os.kill(second.process.pid, signal.SIGSTOP)
        try:
            successor = static.restart(second)
            static.wait_for_log(successor, "assigned [1]", timeout_s=60)
        finally:
            os.kill(second.process.pid, signal.SIGCONT)
        # Work for every partition: the zombie's next transaction is fenced.
        wave3 = [due_task(f"static-{run}-{i}", sink.url) for i in range(600, 700)]
        produce_due(settings, wave3)
        firings = wave1 + wave2 + wave3
        expected, mine = {d.fire_id for d in firings}, {d.task_id for d in firings}
        wait_until(
            lambda: {r.fire_id for r in history_rows(settings, mine)} >= expected,
            90,
            "all outcomes",
        )
        static.assert_fenced_exit(second)
    per_fire = Counter(r.fire_id for r in history_rows(settings, mine))
    assert set(per_fire) == expected, "no firing lost"
    assert all(count == 1 for count in per_fire.values()), "one outcome per fire id"
