"""The two systems the comparison runs, started and fed the way their users would.

* :class:`KronwheelDev`: ``kronwheel dev`` (``python -m streams.cli dev``) with
  its defaults, its own data directory and free ports, the embedded broker
  included; tasks are created with ``POST /v1/tasks:batch``, 1,000 per call,
  at most 4 calls in flight, each batch when its first task is ``lead`` away.
* :class:`KronwheelRoles`: the same processes as ``kronwheel dev`` (the
  embedded broker, a processor, a dispatcher, the API), started by the bench
  itself through tests/support/harness.py, so ``KRONWHEEL_PROFILE_DIR`` runs
  each role under cProfile (``--profile``);
* :class:`ApsBaseline`: APScheduler 3 in one process (``bench.aps_baseline``,
  whose docstring states its configuration), told each workload over stdin.

Both expose the PID whose process tree holds all their CPU, and both call the
same sink. Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import aiohttp

from bench.common import bench_settings
from bench.partitions import TOPICS_DEFAULT_PARTITIONS
from bench.procstat import TreeSampler
from bench.workloads import Workload
from streams.config import Settings
from streams.core.timefmt import format_rfc3339_ms
from streams.kafka.broker import free_loopback_port
from streams.kafka.topics import ensure_topics
from streams.ops.dev import dev_assignment
from streams.ops.dev_partitions import DEV_PARTITIONS, PARTITIONS_FILE
from streams.ops.procs import spawn, stop, wait_for_http_ok
from tests.support.harness import Pipeline

IN_FLIGHT = 4  # create calls at once, as the runs did


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without kronwheel or Kafka settings: each system runs with
    its defaults, not whatever the shell that started the bench had set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KRONWHEEL_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class CreateStats:
    """How the creates went: calls refused, and how far behind plan each was answered."""

    failed_calls: int = 0
    ack_lag_ms: list[float] = field(default_factory=list)


class KronwheelDev:
    name = "kronwheel"

    def __init__(
        self,
        work: Path,
        dispatchers: int | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.work = work
        self.dispatchers = dispatchers  # None: dev's default for this machine
        # On top of dev's defaults (e.g. a topic prefix, an external broker).
        self.extra_env = dict(extra_env or {})
        self.port = free_loopback_port()
        self.token = secrets.token_urlsafe(16)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def partitions(self) -> int:
        """Partitions of its tasks.due, as dev wrote them down for its data directory."""
        recorded = self.work / "data" / PARTITIONS_FILE
        return int(recorded.read_text()) if recorded.exists() else TOPICS_DEFAULT_PARTITIONS

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float = 180.0) -> None:
        env = clean_env(
            KRONWHEEL_DATA_DIR=str(self.work / "data"),
            KRONWHEEL_API_PORT=str(self.port),
            KRONWHEEL_API_TOKEN=self.token,
            **(
                {}
                if self.dispatchers is None
                else {"KRONWHEEL_DEV_DISPATCHERS": str(self.dispatchers)}
            ),
            **self.extra_env,
        )
        self._log = (self.work / "dev.log").open("ab")
        self.process = spawn(
            [sys.executable, "-m", "streams.cli", "dev"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_http_ok(f"{self.base}/healthz", {"kronwheel dev": self.process}, timeout_s)

    def create(self, workload: Workload, sink_base: str) -> CreateStats:
        return asyncio.run(self._create(workload, sink_base + workload.path))

    async def _create(self, workload: Workload, url: str) -> CreateStats:
        stats = CreateStats()
        gate = asyncio.Semaphore(IN_FLIGHT)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(headers=headers) as session:

            async def one(create_at_ms: int, chunk: list[tuple[str, int]]) -> None:
                await asyncio.sleep(max(0.0, (create_at_ms - now_ms()) / 1000))
                body = {"tasks": [task_body(key, due, url) for key, due in chunk]}
                async with gate, session.post(f"{self.base}/v1/tasks:batch", json=body) as r:
                    await r.read()
                    # 202 is accepted (published, acks=all). Kronwheel-Applied is "true"
                    # only when a call asks to wait for the projector, which these do not.
                    if r.status != 202:
                        stats.failed_calls += 1
                stats.ack_lag_ms.append(float(now_ms() - create_at_ms))

            await asyncio.gather(*(one(at, chunk) for at, chunk in workload.batches()))
        return stats

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, timeout=30)
        if self._log is not None:
            self._log.close()

    def sampler(self) -> TreeSampler:
        return TreeSampler(self.pid)

    def log_tail(self) -> str:
        path = self.work / "dev.log"
        return path.read_text("utf-8", "replace")[-3000:] if path.exists() else ""


class KronwheelRoles(KronwheelDev):
    """What ``kronwheel dev`` runs, started from here: every process is a child of
    this one, which the sampler leaves out."""

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self._stack = ExitStack()

    @property
    def partitions(self) -> int:
        return dev_topic_partitions() or TOPICS_DEFAULT_PARTITIONS

    @property
    def pid(self) -> int:
        return os.getpid()

    def start(self, timeout_s: float = 180.0) -> None:
        settings, work = bench_settings(
            self._stack,
            api_port=self.port,
            api_token=self.token,
            partitions=dev_topic_partitions(),
            target_allowlist=("127.0.0.0/8", "::1"),
        )
        ensure_topics(settings)
        pipeline = dev_pipeline(settings, work)
        self._stack.callback(pipeline.stop_all)  # SIGTERM: the profiles get written
        pipeline.start_ready("processor", "dispatcher", "api")
        self._pipeline = pipeline

    def stop(self) -> None:
        self._stack.close()

    def sampler(self) -> TreeSampler:
        return TreeSampler(self.pid, include_root=False)

    def log_tail(self) -> str:
        return "\n".join(r.log_text()[-1000:] for r in self._pipeline.roles)


# The partition-owning roles these benches start, one process each (as dev with
# KRONWHEEL_DEV_DISPATCHERS=1).
DEV_MEMBERS = {"processor": 1, "dispatcher": 1}


def dev_topic_partitions() -> int | None:
    """The partition count dev gives a new data directory: DEV_PARTITIONS on the
    embedded broker; with an external broker the topics' defaults (None)."""
    return None if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else DEV_PARTITIONS


def dev_pipeline(settings: Settings, work: Path) -> Pipeline:
    """A pipeline of roles as ``kronwheel dev`` runs them: static assignment on the
    embedded broker (``streams.ops.dev.dev_assignment``), group mode on Kafka."""
    embedded = not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    settings = replace(settings, assignment=dev_assignment(embedded))
    return Pipeline(settings, work / "logs", members=dict(DEV_MEMBERS))


def task_body(key: str, due_ms: int, url: str) -> dict[str, Any]:
    return {
        "name": key,
        "schedule": {"at": format_rfc3339_ms(due_ms)},
        "target": {"http": {"url": url, "body": '{"n": 1}'}},
    }


class ApsBaseline:
    """APScheduler 3 in one process; ``bare=True``: the same process without a
    scheduler (a loop timer per call), the floor of the HTTP path on this machine."""

    def __init__(self, work: Path, bare: bool = False) -> None:
        self.work = work
        self.bare = bare
        self.name = "bare-aiohttp" if bare else "apscheduler"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float = 30.0) -> None:
        # Not procs.spawn: this child is fed over stdin, and exits when stdin closes.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.aps_baseline", *(["--bare"] if self.bare else [])],
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._expect("ready", timeout_s)

    def create(self, workload: Workload, sink_base: str) -> CreateStats:
        """Hands the workload over; the baseline adds the jobs at the planned times."""
        assert self.process is not None
        assert self.process.stdin is not None
        order = {"sink_base": sink_base, **workload.to_json()}
        self.process.stdin.write((json.dumps(order) + "\n").encode())
        self.process.stdin.flush()
        self._expect(f"added {workload.name}", timeout_s=workload.count / 100 + 120)
        return CreateStats()

    def _expect(self, line: str, timeout_s: float) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.process.stdout.readline().decode().strip()
            if got == line:
                return
            if not got and self.process.poll() is not None:
                raise RuntimeError(f"the APScheduler baseline exited ({self.process.returncode})")
        raise TimeoutError(f"the APScheduler baseline did not say {line!r}")

    def sampler(self) -> TreeSampler:
        return TreeSampler(self.pid)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                stop(self.process)
            if self.process.stdout is not None:
                self.process.stdout.close()

    def log_tail(self) -> str:
        return ""
