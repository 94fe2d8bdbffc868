"""A processor restart in its slot, timed (used by ``bench.processor capacity``).

The processor is SIGKILLed, a few probe tasks due at once are created while it
is down (commands that wait on tasks.commands), and it is started again in the
same slot. From the moment the new process is spawned:

* start + join: until the group hands it its partitions (the first
  ``restored`` line's time minus that restore's own duration);
* restore: from there until every partition is restored (``assigned [``);
* first firing / all probes: until the first / last probe's due event, as the
  processor stamps it; the probes sit on every partition, so the last one says
  every partition fires again.

Times come from the processor's own log lines and due events, not from when
the bench happened to look. A baseline runs the same restart with another
checkout's code (``--baseline-pythonpath``: main), on the same data.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from streams.config import Settings, kafka_config, producer_config
from streams.core.events import TaskState, TaskStatus
from streams.core.model import AtSchedule, HttpTarget, TaskSpec
from streams.kafka.records import decode_due, encode_state
from streams.kafka.topics import COMMANDS, DUE, STATE
from streams.kafka.transactions import produce_retrying
from streams.wheel.outputs import DUE_HEADER
from tests.support.harness import Pipeline, RoleProcess, create_record, produce_records

PROBES = 48  # enough that every one of a few partitions gets some
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", re.M)
_RESTORED = re.compile(r"^(\S+ \S+) \S+ \S+ restored \S+ from .* in ([\d.]+) s$", re.M)


@dataclass(frozen=True)
class Restart:
    label: str
    join_s: float
    restore_s: float
    first_firing_s: float
    all_probes_s: float


def _log_ms(stamp: str) -> int:
    return int(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1000)


@contextmanager
def _python_path(path: str | None) -> Iterator[None]:
    """Role processes spawned inside run that checkout's code (they inherit os.environ)."""
    before = os.environ.get("PYTHONPATH")
    if path:
        os.environ["PYTHONPATH"] = path
    try:
        yield
    finally:
        if path:
            if before is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = before


def timed_restart(
    settings: Settings,
    pipeline: Pipeline,
    role: RoleProcess,
    label: str,
    python_path: str | None = None,
) -> tuple[Restart, RoleProcess]:
    """SIGKILL ``role``, create probes, restart it in its slot; the timings. The
    firings counted are those of the probes on the partitions ``role`` owned."""
    owned = re.findall(r"owns \[([\d, ]*)\]", role.log_text())
    partitions = {int(p) for p in owned[-1].split(", ") if p} if owned else set()
    pipeline.kill(role)
    probes = {}
    now = time.time_ns() // 1_000_000
    records = []
    for n in range(PROBES):
        task_id = f"probe-{label}-{n}-{uuid.uuid4().hex[:6]}"
        spec = TaskSpec(AtSchedule(now), HttpTarget("https://example.com/hook"))
        records.append(create_record(task_id, spec, tenant="bench", issuer="bench"))
        probes[task_id] = n
    produce_records(settings, settings.topic(COMMANDS), records)
    with _python_path(python_path):
        spawned_ms = time.time_ns() // 1_000_000
        again = pipeline.restart(role)
    deadline = time.monotonic() + 900
    while not (line := re.search(r"^.*assigned \[\d.*$", again.log_text(), re.M)):
        assert time.monotonic() < deadline, again.log_text()[-3000:]
        time.sleep(0.05)  # (an empty assignment first is common with several members)
    text = again.log_text()
    restored = [(_log_ms(stamp), float(s)) for stamp, s in _RESTORED.findall(text)]
    assigned_ms = min(at - int(took * 1000) for at, took in restored)
    stamp = _LOG_TIME.match(line.group(0))
    assert stamp is not None, line.group(0)
    restored_ms = max(_log_ms(stamp.group(1)), max(at for at, _ in restored))
    firings = _probe_firings(settings, set(probes), 300)
    assert len(firings) == PROBES, (
        f"{label}: {len(firings)} of {PROBES} probes fired\n"
        + "\n".join(
            f"--- {r.slot} {r.process.pid}\n" + "\n".join(r.log_text().splitlines()[-60:])
            for r in pipeline.roles
        )
    )
    fired = [at for partition, at in firings.values() if partition in partitions]
    assert fired, f"{label}: no probe on the partitions it owned, {sorted(partitions)}"
    return (
        Restart(
            label,
            join_s=(assigned_ms - spawned_ms) / 1000,
            restore_s=(restored_ms - assigned_ms) / 1000,
            first_firing_s=(min(fired) - spawned_ms) / 1000,
            all_probes_s=(max(fired) - spawned_ms) / 1000,
        ),
        again,
    )


def _probe_firings(
    settings: Settings, probes: set[str], timeout_s: float
) -> dict[str, tuple[int, int]]:
    """Read tasks.due (read_committed) until every probe fired: task id -> (partition,
    emitted at)."""
    consumer = Consumer(
        kafka_config(
            settings,
            "bench-reader",
            **{
                "group.id": f"bench-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 50,
            },
        )
    )
    topic = settings.topic(DUE)
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
    fired: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(fired) < len(probes) and time.monotonic() < deadline:
            for message in consumer.consume(5_000, 0.2):
                if message.error() is None and message.value():
                    due = decode_due(message.value() or b"")
                    if due.task_id in probes:
                        at = (message.partition() or 0, due.emitted_at_ms)
                        fired.setdefault(due.task_id, at)
        return fired
    finally:
        consumer.close()


def fill_changelog(settings: Settings, tasks: int, far_ms: int) -> int:
    """Write ``tasks`` pending one-time tasks straight to tasks.state, as the processor
    would have after reading their CREATE commands (same key, partitioner, value
    and due header): a processor assigned the partitions rebuilds its stores from
    them. 10M tasks through the commands path take about 25 min here; this takes
    about a minute and yields the same stores (what a restart reads)."""
    producer = Producer(producer_config(settings, "bench-fill", **{"linger.ms": 50}))
    topic = settings.topic(STATE)
    template = TaskState(
        task_id="",
        tenant="bench",
        spec=TaskSpec(AtSchedule(far_ms), HttpTarget("https://example.com/hook")),
        status=TaskStatus.SCHEDULED,
        next_fire_ms=far_ms,
        last_fire_ms=None,
        fire_count=0,
        created_at_ms=far_ms - 7 * 86_400_000,
        updated_at_ms=far_ms - 7 * 86_400_000,
        last_command_id="bench-fill",
        recent_command_ids=("bench-fill",),
    )
    for n in range(tasks):
        task_id = f"b{n}-{uuid.uuid4().hex[:8]}"
        due_ms = far_ms + n
        state = replace(
            template,
            task_id=task_id,
            next_fire_ms=due_ms,
            spec=replace(template.spec, schedule=AtSchedule(due_ms)),
        )
        produce_retrying(
            producer,
            topic,
            task_id.encode(),
            encode_state(state),
            headers=[(DUE_HEADER, str(due_ms).encode())],
        )
        if n % 100_000 == 0:
            print(f"\r  changelog {n:,}", end="", flush=True)
    if producer.flush(120) != 0:
        raise RuntimeError("could not deliver the changelog")
    print(f"\r  changelog {tasks:,}")
    return tasks
