"""What the broker stores per task: records, bytes, transaction markers and
offset commits on each kronwheel topic (issue 15: the embedded broker is the
largest share of ``kronwheel dev``'s CPU).

    python -m bench.records_per_task [--tasks 2000]
    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m bench.records_per_task

Runs ``kronwheel dev`` (the embedded broker, or the one in
KAFKA_BOOTSTRAP_SERVERS, with topics of a fresh prefix) with its defaults,
creates ``--tasks`` one-time tasks with ``POST /v1/tasks:batch`` (as
``bench compare`` does: 1,000 per call, due at 1,667/s, created ``--lead-s``
ahead), waits until every one called back a loopback sink, and then, before
stopping dev (the embedded broker keeps nothing), reads every topic. How each
number is obtained:

* records, bytes (key + value + headers, uncompressed), tombstones: every
  record a read_uncommitted reader gets (aborted records included);
* aborted: that count minus a read_committed reader's (on the dev broker,
  which shows aborted records to read_committed readers too, always 0);
* markers: offsets between the low and high watermark that no reader gets,
  i.e. transaction commit/abort markers (one per partition a transaction
  wrote to); nothing is compacted in a run this short;
* processor transactions: the processor's ``kronwheel_transactions_total``
  (its /metrics, before and after the workload);
* offset commits: the records of each group in ``__consumer_offsets`` (one per
  partition per commit) and the commits that wrote them (batches: see
  bench.record_tally), from the groups' partitions' ends before the workload;
  a broker that has no readable ``__consumer_offsets`` (the dev broker) says n/a;
* CPU: user+sys per process of dev's tree over the workload (noisy; the
  record counts are not).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from bench.compare import deliveries, sink_base, wait_delivered
from bench.kafka_requests import CountedTansu
from bench.procstat import TreeSampler, cpu_delta
from bench.record_tally import (
    GroupCommits,
    SeenRecord,
    TopicTally,
    offset_commits,
    offsets_key_group,
    offsets_partition,
    tally_topic,
)
from bench.records_report import report
from bench.systems import KronwheelDev, now_ms
from bench.workloads import Workload, outcome
from streams.config import CONTRACT_TOPICS
from streams.kafka.reading import ToEnd, queried_end
from streams.ops.dev import DEV_SESSION_TIMEOUT_MS
from streams.ops.procs import wait_for_loopback_port
from tests.support.harness import CallbackSink

OFFSETS_TOPIC = "__consumer_offsets"
STEADY_PER_S = 1_667.0
BANNER = "kronwheel dev is running"
GROUPS_FORM_S = 3.0


def reader(bootstrap: str, isolation: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-records-per-task",  # assign() only: never joins or commits
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "isolation.level": isolation,
            "auto.offset.reset": "earliest",
        }
    )


def partitions_of(bootstrap: str, topic: str) -> list[int]:
    consumer = reader(bootstrap, "read_uncommitted")
    try:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None:
            return []
        return sorted(found.partitions)
    finally:
        consumer.close()


def read_topic(
    bootstrap: str, topic: str, isolation: str, starts: dict[int, int] | None = None
) -> tuple[list[tuple[int, int, bytes | None, int, bool]], dict[int, tuple[int, int]]]:
    """Every record from ``starts`` (default: each partition's beginning) to the end:
    (partition, offset, key, size, tombstone), and each partition's (start, end)."""
    if starts is None:
        starts = {p: OFFSET_BEGINNING for p in partitions_of(bootstrap, topic)}
    consumer = reader(bootstrap, isolation)
    seen: list[tuple[int, int, bytes | None, int, bool]] = []
    try:
        lows = {}
        for p, start in starts.items():
            low, _ = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            lows[p] = low if start == OFFSET_BEGINNING else start
        to_end = ToEnd(consumer, topic, starts, settle_s=0.5)
        for batch in to_end.batches():
            for m in batch:
                key, value = m.key(), m.value()
                size = len(key or b"") + len(value or b"")
                headers = m.headers()
                for name, data in headers if isinstance(headers, list) else []:
                    size += len(name) + len(data or b"")
                seen.append((m.partition() or 0, m.offset() or 0, key, size, value is None))
        ends = {p: (lows[p], max(to_end.ends.get(p, lows[p]), lows[p])) for p in starts}
    finally:
        consumer.close()
    return seen, ends


def tally(bootstrap: str, topic: str, name: str) -> TopicTally:
    seen, ends = read_topic(bootstrap, topic, "read_uncommitted")
    committed, _ = read_topic(bootstrap, topic, "read_committed")
    records = [SeenRecord(p, o, size, tomb) for p, o, _, size, tomb in seen]
    return tally_topic(name, records, ends, len(committed))


def offsets_starts(bootstrap: str, groups: list[str]) -> dict[int, int] | None:
    """Where each group's ``__consumer_offsets`` partition ends now (None: no such topic)."""
    partitions = partitions_of(bootstrap, OFFSETS_TOPIC)
    if not partitions:
        return None
    consumer = reader(bootstrap, "read_uncommitted")
    try:
        wanted = {offsets_partition(g, len(partitions)) for g in groups}
        return {p: queried_end(consumer, TopicPartition(OFFSETS_TOPIC, p)) for p in wanted}
    except KafkaException:
        return None
    finally:
        consumer.close()


def read_commits(
    bootstrap: str, starts: dict[int, int] | None, groups: list[str]
) -> dict[str, GroupCommits] | None:
    if starts is None:
        return None
    seen, _ = read_topic(bootstrap, OFFSETS_TOPIC, "read_uncommitted", starts)
    seen.sort(key=lambda r: (r[0], r[1]))
    return offset_commits(((p, o, offsets_key_group(key)) for p, o, key, _, _ in seen), groups)


def scrape(url: str) -> dict[str, float]:
    """One role's Prometheus text: ``name{labels}`` -> value (counters and gauges)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def banner(dev: KronwheelDev, timeout_s: float = 120.0) -> tuple[str, dict[str, str]]:
    """The broker and each role's /metrics, as dev's banner says once all are ready."""
    deadline = time.monotonic() + timeout_s
    path = dev.work / "dev.log"
    while time.monotonic() < deadline:
        text = path.read_text("utf-8", "replace") if path.exists() else ""
        if BANNER in text:
            text = text[text.index(BANNER) :]
            kafka = re.search(r"kafka\s*: .*?(\S+:\d+)\s*$", text, re.MULTILINE)
            urls = dict(re.findall(r"^ {4}(\S+)\s+(http://\S+/metrics)\s*$", text, re.MULTILINE))
            if kafka is not None:
                return kafka.group(1), urls
        time.sleep(0.2)
    raise TimeoutError(f"kronwheel dev printed no banner:\n{dev.log_tail()}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    prefix = f"rpt{uuid.uuid4().hex[:8]}."
    env = {"KRONWHEEL_TOPIC_PREFIX": prefix, **dict(kv.split("=", 1) for kv in args.env)}
    groups = [f"{prefix}kronwheel-processors", f"{prefix}kronwheel-dispatchers"]
    load_before = os.getloadavg()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        counted: CountedTansu | None = None
        if args.count_requests and not external:
            counted = stack.enter_context(CountedTansu(work / "requests.json"))
            wait_for_loopback_port(counted.broker_port, {}, timeout_s=20.0)
            # dev sees an external broker: no keeper; give the roles its dev session.
            env.setdefault("KRONWHEEL_SESSION_TIMEOUT_MS", str(DEV_SESSION_TIMEOUT_MS))
        if external or counted is not None:
            env["KAFKA_BOOTSTRAP_SERVERS"] = external or counted.bootstrap_servers  # type: ignore[union-attr]
        sink = stack.enter_context(CallbackSink())
        dev = KronwheelDev(work, extra_env=env)
        stack.callback(dev.stop)
        try:
            dev.start()
        except RuntimeError:
            print(dev.log_tail())
            raise
        bootstrap, urls = banner(dev)
        # dev reports ready before its dispatchers' group has formed (they join
        # within a second or two): let that pass, so the idle window is idle.
        time.sleep(GROUPS_FORM_S)
        starts = offsets_starts(bootstrap, groups)
        processor_before = scrape(urls.get("processor", ""))
        samplers = [stack.enter_context(dev.sampler())]
        if counted is not None:
            samplers.append(stack.enter_context(TreeSampler(counted.pid)))
        if args.broker_pid is not None:  # an external broker's process: its CPU too
            samplers.append(stack.enter_context(TreeSampler(args.broker_pid)))

        def cpu_now() -> dict[str, float]:
            return {k: v for sampler in samplers for k, v in sampler.cpu_by_role().items()}

        def requests_now() -> Counter[tuple[str, str]]:
            return Counter() if counted is None else counted.snapshot()

        # What dev costs with nothing to do (polling, heartbeats, the keeper's
        # cycles), over the same processes: the share of the workload's CPU
        # that is per second, not per task.
        idle_before, idle_requests = cpu_now(), requests_now()
        time.sleep(args.idle_s)
        idle = cpu_delta(idle_before, cpu_now())
        cpu_before, requests_before = cpu_now(), requests_now()
        idle_requests = requests_before - idle_requests
        started = time.monotonic()
        lead_ms = round(args.lead_s * 1000)
        workload = Workload("records", args.tasks, now_ms() + lead_ms + 500, args.per_s, lead_ms)
        created = dev.create(workload, sink_base(sink, dev))
        wait_delivered(sink, f"/{dev.name}{workload.path}", workload, args.timeout_s)
        time.sleep(args.settle_s)  # the last results' transactions commit
        cpu = cpu_delta(cpu_before, cpu_now())
        requests = requests_now() - requests_before
        workload_s = time.monotonic() - started
        processor_after = scrape(urls.get("processor", ""))
        path = f"/{dev.name}{workload.path}"
        delivered = outcome(deliveries(sink.received(), path), args.tasks)
        tallies = [tally(bootstrap, prefix + name, name) for name in CONTRACT_TOPICS]
        commits = read_commits(bootstrap, starts, groups)

    def txns(result: str) -> float:
        series = f'kronwheel_transactions_total{{result="{result}"}}'
        return processor_after.get(series, 0.0) - processor_before.get(series, 0.0)

    broker = f"Kafka at {external}" if external else "embedded (Tansu)"
    if counted is not None:
        broker = "Tansu behind a counting proxy (dev without its keeper)"
    return {
        "broker": broker,
        "env": args.env,
        "tasks": args.tasks,
        "delivered": delivered["delivered"],
        "doubled": delivered["doubled"],
        "lateness_ms": delivered["lateness_ms"],
        "create_failed_calls": created.failed_calls,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "topics": [dict(vars_of(t), markers=t.markers) for t in tallies],
        "processor_transactions": {"committed": txns("committed"), "aborted": txns("aborted")},
        "offset_commits": None
        if commits is None
        else {g.removeprefix(prefix): vars(c) for g, c in commits.items()},
        "cpu_s": cpu,
        "workload_s": workload_s,
        "idle_s": args.idle_s,
        "idle_cpu_s": idle,
        "requests": None if counted is None else _by_api(requests),
        "idle_requests": None if counted is None else _by_api(idle_requests),
    }


def _by_api(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (role, api), n in sorted(counts.items()):
        out.setdefault(role, {})[api] = n
    return out


def vars_of(tally: TopicTally) -> dict[str, Any]:
    return {f: getattr(tally, f) for f in tally.__dataclass_fields__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.records_per_task", description=__doc__)
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--per-s", type=float, default=STEADY_PER_S, help="0: all due at once")
    parser.add_argument("--lead-s", type=float, default=10.0, help="created this far ahead")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="after the last due time")
    parser.add_argument("--settle-s", type=float, default=3.0, help="after the last callback")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle CPU window before")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for dev's processes (e.g. KRONWHEEL_FETCH_WAIT_MAX_MS=200); repeatable",
    )
    parser.add_argument(
        "--count-requests",
        action="store_true",
        help="the dev broker behind a proxy that counts requests by role and API "
        "(dev then runs without its keeper)",
    )
    parser.add_argument(
        "--broker-pid",
        type=int,
        help="also sample this process's CPU (an external broker; shared brokers mislead)",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    summary = run(args)
    print(report(summary))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if summary["delivered"] == args.tasks else 1


if __name__ == "__main__":
    raise SystemExit(main())
