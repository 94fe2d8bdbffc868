"""One timewheel processor, measured: throughput, lateness, memory, restore.

    python -m bench.processor throughput [--tasks 100000]
    python -m bench.processor lateness [--rate 1667] [--seconds 30]
    python -m bench.processor capacity [--tasks 1000000]

* throughput: create commands for one-time tasks that are due at once, all
  produced before the processor starts; firings/s = tasks / (last due event
  - processor assigned). Baseline in the same run: the raw broker moving the
  same number of records of the same size, produce -> consume, in Python.
* lateness: tasks due at a steady rate; lateness = due event emitted -
  scheduled, as the processor stamps it (its own clock).
* capacity: pending tasks far in the future; processor RSS once all are in
  its index, then SIGKILL and restart in the same slot, timed from the new
  process's start to its first firing (bench/restart.py), optionally after the
  same restart with a baseline's code (``--baseline-pythonpath``).

Uses KAFKA_BOOTSTRAP_SERVERS when set, else an embedded broker (in memory:
10M tasks need about 6 GB of broker memory for commands and changelog), with
as many partitions as ``kronwheel dev`` would make (``--partitions`` to choose).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench.common import percentile, table
from bench.partitions import TOPICS_DEFAULT_PARTITIONS
from bench.restart import Restart, fill_changelog, timed_restart
from bench.systems import dev_topic_partitions
from streams.config import Settings, kafka_config
from streams.core.model import AtSchedule, HttpTarget, TaskSpec
from streams.kafka.broker import EmbeddedBroker, free_loopback_port
from streams.kafka.records import decode_due
from streams.kafka.topics import COMMANDS, DUE, ensure_topics, topic_partitions
from streams.ops.dev import dev_assignment
from streams.ops.dev_partitions import DEV_PARTITIONS
from tests.support.harness import Pipeline, RoleProcess, create_record, produce_records


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def commands(count: int, due_ms: Iterator[int]) -> Iterator[tuple[bytes, bytes]]:
    target = HttpTarget("https://example.com/hook")
    for n in range(count):
        spec = TaskSpec(AtSchedule(next(due_ms)), target)
        yield create_record(f"b{n}-{uuid.uuid4().hex[:8]}", spec, tenant="bench", issuer="bench")


def produce_all(settings: Settings, topic: str, records: Iterator[tuple[bytes, bytes]]) -> int:
    def counted() -> Iterator[tuple[bytes, bytes]]:
        for n, record in enumerate(records, 1):
            if n % 50_000 == 0:
                print(f"\r  produced {n:,}", end="", flush=True)
            yield record

    count = produce_records(settings, topic, counted())
    print(f"\r  produced {count:,}")
    return count


def drain(settings: Settings, topic: str, expected: int, timeout_s: float) -> list[bytes]:
    """Read (read_committed) until ``expected`` records arrived; values, in arrival order."""
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
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < expected and time.monotonic() < deadline:
            for message in consumer.consume(5_000, 0.2):
                if message.error() is None and message.value() is not None:
                    values.append(message.value() or b"")
        return values
    finally:
        consumer.close()


def raw_rate(settings: Settings, count: int, size: int) -> float:
    """Records/s the broker moves produce -> consume in Python, with nothing in between."""
    topic = settings.topic("bench.raw")
    admin = AdminClient(kafka_config(settings, "bench"))
    admin.create_topics([NewTopic(topic, topic_partitions(settings, DUE), 1)])[topic].result()
    payload = os.urandom(size)
    started = time.monotonic()
    produce_all(settings, topic, ((str(n).encode(), payload) for n in range(count)))
    got = drain(settings, topic, count, 300)
    elapsed = time.monotonic() - started
    assert len(got) == count, f"raw: read {len(got)} of {count}"
    return count / elapsed


def start_processor(pipeline: Pipeline, slot: str = "bench-0") -> RoleProcess:
    role = pipeline.start("processor", slot=slot)
    pipeline.wait_for_log(role, "assigned [", timeout_s=600)
    return role


# --- scenarios ---------------------------------------------------------------------


def throughput(settings: Settings, pipeline: Pipeline, tasks: int) -> None:
    due = iter(lambda: now_ms(), None)  # due at once: create and fire in one go
    print("raw broker baseline ...")
    sample_size = len(next(commands(1, iter([0])))[1])
    baseline = raw_rate(settings, tasks, sample_size)
    print("pipeline: commands first, then the processor ...")
    produce_all(settings, settings.topic(COMMANDS), commands(tasks, due))
    started = time.monotonic()
    start_processor(pipeline)
    values = drain(settings, settings.topic(DUE), tasks, 900)
    elapsed = time.monotonic() - started
    emitted = [decode_due(v).emitted_at_ms for v in values]
    busy_s = max(1, max(emitted) - min(emitted)) / 1000
    rate = len(values) / busy_s
    print()
    print(
        table(
            ["measure", "records", "seconds", "records/s", "ratio"],
            [
                ["raw broker produce->consume", tasks, tasks / baseline, baseline, 1.0],
                ["processor commands->due, sustained", len(values), busy_s, rate, rate / baseline],
                [
                    "processor incl. start-up",
                    len(values),
                    elapsed,
                    len(values) / elapsed,
                    len(values) / elapsed / baseline,
                ],
            ],
        )
    )
    print("sustained: first to last due event as the processor stamps them;")
    print("start-up adds the group join and the restore of the (empty) partitions")


def lateness(settings: Settings, pipeline: Pipeline, rate: int, seconds: int) -> None:
    start_processor(pipeline)
    count = rate * seconds
    first = now_ms() + 15_000  # after all commands are in
    due = (first + n * 1000 // rate for n in range(count))
    produce_all(settings, settings.topic(COMMANDS), commands(count, due))
    values = drain(settings, settings.topic(DUE), count, seconds + 120)
    late = [d.emitted_at_ms - d.scheduled_at_ms for d in map(decode_due, values)]
    print()
    print(
        table(
            ["firings", "rate/s", "p50 ms", "p90 ms", "p99 ms", "max ms"],
            [
                [
                    len(late),
                    rate,
                    percentile(late, 50),
                    percentile(late, 90),
                    percentile(late, 99),
                    max(late),
                ]
            ],
        )
    )


def metric_sum(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(m) for m in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def capacity(
    settings: Settings,
    pipeline: Pipeline,
    tasks: int,
    fill: str,
    baseline: str | None,
    processors: int = 1,
) -> None:
    """With ``processors`` > 1, the others keep running while the first restarts."""
    ports = [free_loopback_port() for _ in range(processors)]
    far = now_ms() + 7 * 86_400_000
    started = time.monotonic()
    if fill == "changelog":  # the processor rebuilds its stores from it when it starts
        fill_changelog(settings, tasks, far)
    roles = []
    for n, port in enumerate(ports):
        pipeline.settings = replace(settings, metrics_port=port)
        roles.append(start_processor(pipeline, slot=f"bench-{n}"))
    pipeline.settings = settings = replace(settings, metrics_port=ports[0])
    # A cooperative rebalance takes two rounds: wait until each one owns partitions,
    # so the kill below does not land in the middle of one.
    deadline = time.monotonic() + 120
    while not all(re.findall(r"owns \[\d", r.log_text()) for r in roles):
        assert time.monotonic() < deadline, "the processors did not share the partitions"
        time.sleep(0.1)
    role = roles[0]
    idle_rss = rss_mb(role.process.pid) if fill == "commands" else float("nan")
    if fill == "commands":
        due = (far + n for n in range(tasks))
        produce_all(settings, settings.topic(COMMANDS), commands(tasks, due))
    while (held := sum(metric_sum(p, "kronwheel_index_tasks") for p in ports)) < tasks:
        print(f"\r  indexed {held:,.0f} of {tasks:,}", end="", flush=True)
        time.sleep(5)  # the gauge is refreshed every 5 s
    ingest_s = time.monotonic() - started
    full_rss = rss_mb(role.process.pid)
    print()
    restarts: list[Restart] = []
    if baseline:
        restart, role = timed_restart(settings, pipeline, role, "baseline", baseline)
        restarts.append(restart)
        # A dead dynamic member stays in the group until its session ends: one
        # restart to clear it, so the measured one starts from a static member.
        restart, role = timed_restart(settings, pipeline, role, "after-baseline")
        restarts.append(restart)
    restart, role = timed_restart(settings, pipeline, role, "this")
    restarts.append(restart)
    restored_rss = rss_mb(role.process.pid)
    print(
        table(
            ["measure", "value"],
            [
                ["pending tasks", tasks],
                ["processors (the first restarts)", processors],
                [f"fill ({fill} -> indexed), s", ingest_s],
                ["fill rate, tasks/s", tasks / ingest_s],
                ["processor RSS idle, MB", idle_rss],
                ["processor RSS holding all tasks, MB", full_rss],
                ["processor RSS after restart, MB", restored_rss],
            ],
        )
    )
    print(f"restart after SIGKILL, in the same slot, seconds from process start ({uptime()}):")
    print(
        table(
            ["code", "start + join", "restore", "first firing", "all partitions firing"],
            [[r.label, r.join_s, r.restore_s, r.first_firing_s, r.all_probes_s] for r in restarts],
        )
    )


def uptime() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=["throughput", "lateness", "capacity"])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1_667)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--fill",
        choices=["commands", "changelog"],
        default="commands",
        help="capacity: create the pending tasks through tasks.commands (as users do) or "
        "write them straight to tasks.state (fast enough for 10M)",
    )
    parser.add_argument(
        "--processors", type=int, default=1, help="capacity: processors in the group"
    )
    parser.add_argument(
        "--baseline-pythonpath",
        help="capacity: also restart once with the code on this path (a checkout of main), "
        "on the same data, before this code's restart",
    )
    parser.add_argument(
        "--assignment",
        choices=["group", "static"],
        help="how processors get their partitions (streams.kafka.assignment); default "
        "as kronwheel dev: static on the embedded broker, group on an external one",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        help="partitions of every topic; default as kronwheel dev gives a new data "
        f"directory: {DEV_PARTITIONS} on the embedded broker, {TOPICS_DEFAULT_PARTITIONS} on an "
        "external one",
    )
    parser.add_argument(
        "--session-timeout-ms",
        type=int,
        default=6000,
        help="the group session timeout of every role (the dev broker holds joins for "
        "about half of it; a SIGKILLed member's partitions move after it)",
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kw-bench-")))
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        embedded = not bootstrap
        if not bootstrap:
            broker = stack.enter_context(EmbeddedBroker(log_path=work / "broker.log"))
            bootstrap = broker.bootstrap_servers
        base = Settings()
        if embedded:
            base = base.with_embedded_broker(bootstrap)
        settings = replace(
            base,
            bootstrap_servers=bootstrap,
            topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
            partitions=args.partitions or dev_topic_partitions() or TOPICS_DEFAULT_PARTITIONS,
            data_dir=work / "data",
            session_timeout_ms=args.session_timeout_ms,
            assignment=args.assignment or dev_assignment(embedded),
        )
        print(
            f"assignment: {settings.assignment}, session {settings.session_timeout_ms} ms, "
            f"{settings.partitions} partitions"
        )
        ensure_topics(settings)
        # Static members: one index per processor, kept by a restart in its slot.
        pipeline = Pipeline(settings, work / "logs", members={"processor": args.processors})
        stack.callback(pipeline.stop_all)
        if args.scenario == "throughput":
            throughput(settings, pipeline, args.tasks)
        elif args.scenario == "lateness":
            lateness(settings, pipeline, args.rate, args.seconds)
        else:
            capacity(
                settings,
                pipeline,
                args.tasks,
                args.fill,
                args.baseline_pythonpath,
                args.processors,
            )


if __name__ == "__main__":
    main()
