"""Run the pipeline's roles as real processes on loopback, for tests and benchmarks.

:class:`Pipeline` starts roles (``kronwheel processor`` etc.) as child
processes against a given broker, each with its own log file, and stops them
by PID. :class:`CallbackSink` is an HTTP target on 127.0.0.1 that records every
callback with its arrival time. Nothing here talks to anything but loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer

from streams.config import Settings, kafka_config, producer_config
from streams.core.events import CommandKind, TaskCommand
from streams.core.model import TaskSpec
from streams.kafka.broker import free_loopback_port
from streams.kafka.reading import ToEnd
from streams.kafka.records import encode_command
from streams.kafka.transactions import produce_retrying
from streams.ops.procs import kill, spawn, stop, wait_for_http_ok


@dataclass
class RoleProcess:
    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    slot: str = ""
    member_index: int | None = None  # static assignment only

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""


@dataclass
class Pipeline:
    settings: Settings
    log_dir: Path
    roles: list[RoleProcess] = field(default_factory=list)
    # With settings.assignment "static" (as dev on its embedded broker): how many
    # members each partition-owning role has; each new process takes the next index.
    members: dict[str, int] = field(default_factory=dict)

    def start(
        self, role: str, slot: str | None = None, member_index: int | None = None
    ) -> RoleProcess:
        """Start a role. Each process of a role gets its own slot ("processor-1");
        pass a dead process's slot (and member index) to restart it in its place
        (it fences the dead one)."""
        started_before = sum(1 for r in self.roles if r.role == role)
        if slot is None:
            slot = f"{role}-{started_before}"
        env = {
            **os.environ,
            **self.settings.to_env(),
            "KRONWHEEL_SLOT": slot,
            "PYTHONUNBUFFERED": "1",
        }
        if self.settings.assignment == "static" and role in self.members:
            member_index = started_before if member_index is None else member_index
            env["KRONWHEEL_MEMBER_INDEX"] = str(member_index)
            env["KRONWHEEL_MEMBER_COUNT"] = str(self.members[role])
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{role}-{len(self.roles)}.log"
        with log_path.open("ab") as log_file:
            process = spawn(
                [sys.executable, *self._profiler(role, slot), "-m", "streams.cli", role],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        started = RoleProcess(role, process, log_path, slot, member_index)
        self.roles.append(started)
        return started

    @staticmethod
    def _profiler(role: str, slot: str) -> list[str]:
        """With KRONWHEEL_PROFILE_DIR set, each role runs under cProfile and writes
        <dir>/<slot>.prof when it stops cleanly (SIGTERM): how benchmarks find where
        the time goes."""
        directory = os.environ.get("KRONWHEEL_PROFILE_DIR")
        if not directory:
            return []
        Path(directory).mkdir(parents=True, exist_ok=True)
        return ["-m", "cProfile", "-o", str(Path(directory) / f"{slot}.prof")]

    def wait_for_log(
        self, role: RoleProcess, text: str, timeout_s: float = 60.0, occurrence: int = 1
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if role.log_text().count(text) >= occurrence:
                return
            if role.process.poll() is not None:
                raise RuntimeError(f"{role.role} exited early:\n{role.log_text()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{role.role} did not log {text!r}:\n{role.log_text()[-3000:]}")

    def wait_for_api(self, timeout_s: float = 30.0) -> None:
        url = f"http://{self.settings.api_host}:{self.settings.api_port}/healthz"
        wait_for_http_ok(url, {r.role: r.process for r in self.roles}, timeout_s)

    def start_ready(self, *roles: str) -> dict[str, RoleProcess]:
        """Start roles and wait until each can work: the API answers, consumers own
        partitions (firing on time needs owners; the dev broker takes seconds to
        form a group)."""
        started = {role: self.start(role) for role in roles}
        for role, process in started.items():
            if role == "api":
                self.wait_for_api()
            else:
                self.wait_for_log(process, "assigned [")
        return started

    def stop(self, role: RoleProcess) -> int:
        """SIGTERM and wait: a clean shutdown that leaves the group."""
        return stop(role.process)

    def kill(self, role: RoleProcess) -> None:
        """SIGKILL, as a crash would: no shutdown code runs."""
        kill(role.process)

    def assert_fenced_exit(self, zombie: RoleProcess, timeout_s: float = 60.0) -> None:
        """A zombie whose slot a successor took must fail its next commit as fenced
        and exit with 1 (a fatal Kafka error), not keep running."""
        deadline = time.monotonic() + timeout_s
        while zombie.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert zombie.process.returncode == 1, zombie.log_text()[-2000:]
        assert "fatal Kafka error" in zombie.log_text()

    def restart(self, role: RoleProcess) -> RoleProcess:
        """Start the role again in the dead process's slot (it fences its predecessor)."""
        return self.start(role.role, slot=role.slot, member_index=role.member_index)

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for role in reversed(self.roles):
            codes[f"{role.role}:{role.process.pid}"] = stop(role.process)
        return codes


@dataclass(frozen=True)
class Callback:
    received_ms: int
    path: str
    headers: dict[str, str]
    body: bytes


class CallbackSink:
    """An HTTP target on 127.0.0.1 that records every request, in its own thread."""

    def __init__(self, status: int = 200) -> None:
        self.port = free_loopback_port()
        self.status = status
        self.callbacks: list[Callback] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="callback-sink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> CallbackSink:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("callback sink did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def received(self) -> list[Callback]:
        with self._lock:
            return list(self.callbacks)

    def wait_for(self, count: int, timeout_s: float) -> list[Callback]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(self.received()) < count:
            time.sleep(0.05)
        return self.received()

    async def _handle(self, request: web.Request) -> web.Response:
        received_ms = time.time_ns() // 1_000_000
        body = await request.read()
        with self._lock:
            self.callbacks.append(Callback(received_ms, request.path, dict(request.headers), body))
        return web.Response(status=self.status, text="ok")

    def _serve(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        asyncio.run(main())


def produce_records(
    settings: Settings, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    """Produce records to a topic (its physical name, as ``read_topic`` takes) as another
    service would: keyed, default partitioner; then flush. Returns how many."""
    producer = Producer(producer_config(settings, "test-producer", **{"linger.ms": 20}))
    count = 0
    for key, value in records:
        produce_retrying(producer, topic, key, value)
        count += 1
    if producer.flush(60) != 0:
        raise RuntimeError(f"could not deliver every record to {topic}")
    return count


def create_record(
    task_id: str, spec: TaskSpec, tenant: str = "acme", issuer: str = "test"
) -> tuple[bytes, bytes]:
    """A CREATE command as another service would produce it: (key, Avro value)."""
    command = TaskCommand(
        command_id=uuid.uuid4().hex,
        task_id=task_id,
        tenant=tenant,
        kind=CommandKind.CREATE,
        issued_at_ms=time.time_ns() // 1_000_000,
        issuer=issuer,
        spec=spec,
    )
    return task_id.encode(), encode_command(command)


def read_topic(
    settings: Settings, topic: str, idle_s: float = 2.0
) -> list[tuple[bytes | None, bytes | None, int]]:
    """Every record of a topic (read_committed), as (key, value, partition).

    Reads every partition to its end (streams.kafka.reading) and on until no record
    has arrived for ``idle_s``, so records still on their way are waited for.
    """
    consumer = Consumer(
        kafka_config(
            settings,
            "reader",
            **{
                "group.id": f"reader-{os.getpid()}-{time.monotonic_ns()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,
            },
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        starts = dict.fromkeys(metadata.partitions, OFFSET_BEGINNING)
        records: list[tuple[bytes | None, bytes | None, int]] = []
        reader = ToEnd(consumer, topic, starts, settle_s=idle_s, give_up_idle_s=30.0, batch=1000)
        for batch in reader.batches():
            records.extend((m.key(), m.value(), m.partition() or 0) for m in batch)
        return records
    finally:
        consumer.close()


class ApiClient:
    """A small blocking client of the REST API (standard library only)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: object) -> tuple[int, Any]:
        return self.request("POST", path, body)
