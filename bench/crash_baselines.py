"""The crash benchmark's baselines, driven the way their users run them.

* :class:`ApsCrash`: APScheduler 3 with its SQLAlchemy job store on SQLite
  (``bench.crash_aps``): the jobs are added by a loader process, then one
  scheduler process runs them; at the crash it is SIGKILLed and started again
  on the same file.
* :class:`ArqCrash`: arq with Redis (``bench.crash_arq``): a redis-server of
  its own on 127.0.0.1 and a free port, without persistence (no RDB, no AOF,
  its directory a temporary one: the crash is the worker's, not Redis's); the
  jobs are enqueued deferred, one worker runs them; at the crash the worker is
  SIGKILLed and started again.

Neither needs anything in the project's dependencies: arq and SQLAlchemy are
found on ``KRONWHEEL_BENCH_DEPS`` (default ``.artifacts/bench-deps``, filled
with ``pip install --target``); :meth:`unavailable` says why a baseline cannot
run, and the table prints it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.crash_child import Child, now_ms
from bench.systems import clean_env
from bench.workloads import Workload
from streams.kafka.broker import free_loopback_port
from streams.ops.procs import spawn, stop

DEPS_HINT = "pip install --target .artifacts/bench-deps arq 'SQLAlchemy>=2,<3'"


def deps_dir() -> Path:
    return Path(os.environ.get("KRONWHEEL_BENCH_DEPS", ".artifacts/bench-deps")).resolve()


def baseline_env() -> dict[str, str]:
    """This project's code, then the baselines' own packages, then the venv's."""
    here = str(Path(__file__).resolve().parent.parent)
    return clean_env(PYTHONPATH=os.pathsep.join([here, str(deps_dir())]))


def missing_module(*modules: str) -> str | None:
    """Why the baselines' Python cannot import ``modules``, or None."""
    probe = subprocess.run(
        [sys.executable, "-c", f"import {', '.join(modules)}"],
        env=baseline_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["?"])[-1]
    return f"{last} (install with: {DEPS_HINT})"


class _Baseline:
    name = ""
    broker = ""

    def prep_s(self, count: int) -> float:
        """Between planning the workload and its first due time: creating it all."""
        return 5.0 + count / 1000

    def __init__(self, work: Path) -> None:
        self.work = work / self.name
        self.work.mkdir(parents=True, exist_ok=True)
        self.runner: Child | None = None
        self.events: list[tuple[str, int]] = []

    def _python(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def _order(self, workload: Workload, url_base: str) -> str:
        path = self.work / "order.json"
        path.write_text(json.dumps({"sink_base": url_base, **workload.to_json()}))
        return str(path)

    def _run_once(self, label: str, args: list[str], expect: str, timeout_s: float) -> None:
        loader = Child.start(label, args, self.work / f"{label}.log", baseline_env())
        try:
            loader.wait_for(expect, timeout_s)
            loader.process.wait(timeout_s)
        finally:
            loader.stop()

    def _start_runner(self, args: list[str]) -> None:
        count = sum(1 for event, _ in self.events if event == "started")
        self.runner = Child.start(
            f"{self.name}-{count}", args, self.work / f"runner-{count}.log", baseline_env()
        )
        self.events.append(("started", now_ms()))
        self.runner.wait_for("ready", 60)
        self.events.append(("ready", now_ms()))

    def crash(self) -> None:
        """SIGKILL the process that runs the jobs, and start it again at once."""
        assert self.runner is not None
        self.runner.kill()
        self.events.append(("killed", now_ms()))
        self._start_runner(self.runner_args())

    def runner_args(self) -> list[str]:
        raise NotImplementedError

    def killed_ms(self) -> int:
        return next(ms for event, ms in self.events if event == "killed")

    def restarted_ms(self) -> int:
        return max(ms for event, ms in self.events if event == "started")

    def outage(self) -> dict[str, Any]:
        """The worker's restart, seconds after the kill."""
        killed = self.killed_ms()
        after = [(event, ms) for event, ms in self.events if ms >= killed and event != "killed"]
        return {"worker": {f"{event}_s": round((ms - killed) / 1000, 2) for event, ms in after}}

    def log_tail(self) -> str:
        return self.runner.log_tail() if self.runner is not None else ""

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()


class ApsCrash(_Baseline):
    name = "apscheduler"
    broker = "SQLite job store"

    def prep_s(self, count: int) -> float:
        # add_job is an INSERT and a commit: 1.5 ms on an idle machine, 3.5 ms and
        # more on a busy one (12,000 took over 40 s once).
        return 10.0 + count * 0.006

    def unavailable(self) -> str | None:
        return missing_module("apscheduler", "sqlalchemy")

    def start(self) -> None:
        self.db = self.work / "jobs.sqlite3"

    def runner_args(self) -> list[str]:
        return self._python("bench.crash_aps", "run", "--db", str(self.db))

    def load(self, workload: Workload, url_base: str) -> None:
        order = self._order(workload, url_base)
        args = self._python("bench.crash_aps", "load", "--db", str(self.db), "--order", order)
        self._run_once("load", args, "loaded", self.prep_s(workload.count) + 60)
        self._start_runner(self.runner_args())


class ArqCrash(_Baseline):
    name = "arq"
    broker = "Redis"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.redis: subprocess.Popen[bytes] | None = None
        self.port = 0

    def unavailable(self) -> str | None:
        if shutil.which("redis-server") is None:
            return "no redis-server on PATH (apt-get install -y redis-server)"
        return missing_module("arq")

    def start(self) -> None:
        version = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()
        self.broker = f"Redis {next((v[2:] for v in version if v.startswith('v=')), '?')}"
        self.port = free_loopback_port()
        redis_dir = self.work / "redis"
        redis_dir.mkdir(exist_ok=True)
        with (self.work / "redis.log").open("ab") as log:
            self.redis = spawn(
                [
                    *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                    *("--save", "", "--appendonly", "no", "--dir", str(redis_dir)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_redis(self.port, self.redis, 30)

    def runner_args(self) -> list[str]:
        return self._python("bench.crash_arq", "worker", "--redis-port", str(self.port))

    def load(self, workload: Workload, url_base: str) -> None:
        order = self._order(workload, url_base)
        port = str(self.port)
        args = self._python("bench.crash_arq", "enqueue", "--redis-port", port, "--order", order)
        self._run_once("enqueue", args, "loaded", self.prep_s(workload.count) + 60)
        self._start_runner(self.runner_args())

    def stop(self) -> None:
        super().stop()
        if self.redis is not None:
            stop(self.redis)


def wait_for_redis(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until the server answers PING (or it exits, or the time runs out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited ({process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("redis-server did not answer PING")
