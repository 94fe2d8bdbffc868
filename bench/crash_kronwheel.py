"""kronwheel in the crash benchmark: the roles as separate processes, the crash
a SIGKILL of the processor and the dispatcher, both started again at once in
their slots (each fences its dead predecessor).

The processes are those of ``kronwheel dev`` (a processor, a dispatcher, the
API; the embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set), started by
the bench through tests/support/harness.py (``bench.systems.KronwheelRoles``),
with its settings: the topics' default partitions and its session timeout (2 s
on the embedded broker, 6 s on Kafka: ``streams.ops.dev.dev_session_timeout_ms``)
and its assignment (static on the embedded broker, so a restarted role owns its
partitions in its first poll; the group on Kafka: ``streams.ops.dev.dev_assignment``).
Tasks are created through ``POST /v1/tasks:batch`` (1,000 per call, 4 calls
in flight), every call accepted (202: on ``tasks.commands``) before the first
task falls due.

:meth:`KronwheelCrash.outage` says where the outage went, per role: from its
new process's log (started, partitions assigned, restore seconds) and, for the
processor, from ``tasks.due`` (the first firing emitted after the restart).
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import datetime
from typing import Any

import aiohttp

from bench.common import bench_settings
from bench.crash_child import now_ms
from bench.systems import (
    IN_FLIGHT,
    KronwheelRoles,
    dev_pipeline,
    dev_topic_partitions,
    task_body,
)
from bench.workloads import Workload
from streams.kafka.records import decode_due
from streams.kafka.topics import DUE, ensure_topics
from tests.support.harness import RoleProcess, read_topic

# The roles' text log lines start with asctime, local time, milliseconds after a comma.
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
ASSIGNED = re.compile(r"\bassigned \[\d")  # a non-empty assignment
RESTORED_S = re.compile(r"restored \S+ from offset .* in ([\d.]+) s")
STARTED = {"processor": "processor started", "dispatcher": "dispatcher started"}


def stamp_ms(line: str) -> int | None:
    match = STAMP.match(line)
    if match is None:
        return None
    return int(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1000)


def first_line_ms(text: str, pattern: re.Pattern[str] | str) -> int | None:
    """When the first line matching ``pattern`` (a regex, or a plain substring) was logged."""
    for line in text.splitlines():
        found = pattern.search(line) if isinstance(pattern, re.Pattern) else pattern in line
        if found:
            return stamp_ms(line)
    return None


def role_outage(role: str, log: str, killed_ms: int, restarted_ms: int) -> dict[str, Any]:
    """One restarted role's outage from its new log, in seconds after the kill.

    ``partitions_back``: its first non-empty assignment. The processor logs that
    line once every assigned partition is restored, so for it the assignment
    came at the start of the first restore (that line's time minus its
    duration), and ``all_restored`` is the assignment line."""

    def since_kill(ms: float | None) -> float | None:
        return None if ms is None else round((ms - killed_ms) / 1000, 2)

    assigned_ms = first_line_ms(log, ASSIGNED)
    restores = [
        (stamp, float(match.group(1)))
        for line in log.splitlines()
        if (match := RESTORED_S.search(line)) and (stamp := stamp_ms(line)) is not None
    ]
    up_ms = first_line_ms(log, STARTED[role])
    outage = {"restarted_s": since_kill(restarted_ms), "up_s": since_kill(up_ms)}
    if not restores:
        return {**outage, "partitions_back_s": since_kill(assigned_ms)}
    first_restore_ms = min(stamp - seconds * 1000 for stamp, seconds in restores)
    return {
        **outage,
        "partitions_back_s": since_kill(first_restore_ms),
        "all_restored_s": since_kill(assigned_ms),
        "restores": len(restores),
        "restore_s": round(sum(seconds for _, seconds in restores), 2),
    }


class KronwheelCrash(KronwheelRoles):
    name = "kronwheel"

    def prep_s(self, count: int) -> float:
        return 5.0 + count / 1000  # 1,000 per call, each answered once applied

    @property
    def broker(self) -> str:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        return f"Kafka {bootstrap}" if bootstrap else "embedded (Tansu)"

    def unavailable(self) -> str | None:
        return None

    def start(self, timeout_s: float = 180.0) -> None:
        self.settings, work = bench_settings(
            self._stack,
            api_port=self.port,
            api_token=self.token,
            partitions=dev_topic_partitions(),  # as dev has them
            target_allowlist=("127.0.0.0/8", "::1"),
        )
        ensure_topics(self.settings)
        self._pipeline = dev_pipeline(self.settings, work)
        self._stack.callback(self._pipeline.stop_all)
        started = self._pipeline.start_ready("processor", "dispatcher", "api")
        self.alive: dict[str, RoleProcess] = {r: started[r] for r in ("processor", "dispatcher")}
        self.crashes: dict[str, tuple[int, int, RoleProcess]] = {}

    def load(self, workload: Workload, url_base: str) -> None:
        refused = asyncio.run(self._create_all(workload, url_base + workload.path))
        if refused:
            raise RuntimeError(f"{refused} create calls were refused")

    async def _create_all(self, workload: Workload, url: str) -> int:
        """Every batch now, IN_FLIGHT calls at once; how many were not accepted.
        Accepted (202) means written to ``tasks.commands`` with acks=all: durable;
        the bench does not ask to wait for the read model (no projector runs)."""
        gate = asyncio.Semaphore(IN_FLIGHT)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(headers=headers) as session:

            async def one(chunk: list[tuple[str, int]]) -> bool:
                body = {"tasks": [task_body(key, due, url) for key, due in chunk]}
                async with gate, session.post(f"{self.base}/v1/tasks:batch", json=body) as r:
                    await r.read()
                    return r.status == 202

            accepted = await asyncio.gather(*(one(chunk) for _, chunk in workload.batches()))
        return accepted.count(False)

    def crash(self) -> None:
        """SIGKILL the processor and the dispatcher, then start both in their slots."""
        killed = {}
        for role, process in self.alive.items():
            self._pipeline.kill(process)
            killed[role] = now_ms()
        for role, process in list(self.alive.items()):
            restarted_ms = now_ms()
            self.alive[role] = self._pipeline.restart(process)
            self.crashes[role] = (killed[role], restarted_ms, self.alive[role])

    def outage(self) -> dict[str, Any]:
        breakdown: dict[str, Any] = {}
        for role, (killed_ms, restarted_ms, process) in self.crashes.items():
            breakdown[role] = role_outage(role, process.log_text(), killed_ms, restarted_ms)
        if "processor" in self.crashes:
            killed_ms, restarted_ms, _ = self.crashes["processor"]
            emitted = self._due_emitted()
            after = [ms for ms, _ in emitted if ms >= restarted_ms]
            if after:
                breakdown["processor"]["fired_again_s"] = round((min(after) - killed_ms) / 1000, 2)
            breakdown["processor"]["due_events"] = len(emitted)
            # The same firing emitted twice (the dispatcher drops the second): a
            # processor that re-fired what its dead predecessor had committed.
            fires = {fire for _, fire in emitted}
            breakdown["processor"]["due_doubled"] = len(emitted) - len(fires)
        return breakdown

    def _due_emitted(self) -> list[tuple[int, str]]:
        """(emitted at, fire id) of every committed firing on ``tasks.due``."""
        records = read_topic(self.settings, self.settings.topic(DUE), idle_s=1.0)
        dues = [decode_due(value) for _, value, _ in records if value is not None]
        return [(due.emitted_at_ms, due.fire_id) for due in dues]

    def killed_ms(self) -> int:
        return min(killed for killed, _, _ in self.crashes.values())

    def restarted_ms(self) -> int:
        return max(restarted for _, restarted, _ in self.crashes.values())
