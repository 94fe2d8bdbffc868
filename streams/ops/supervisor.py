"""Run roles as child processes and keep them running: ``kronwheel dev``'s supervisor.

Each role runs in a fixed slot (``KRONWHEEL_SLOT=dev-processor``...). When a
role exits, whatever the cause, it is started again in the same slot after a
backoff (:mod:`streams.ops.restarts`): the same slot means the same
transactional id, so a restarted processor fences its dead predecessor's open
transaction at once. The cause is logged, restarts are counted
(``kronwheel_dev_role_restarts_total{role}``) and a crash loop is flagged
(a log line and ``kronwheel_dev_role_crash_looping{role}``), but the others
keep going: only the caller decides to stop everything.

Readiness is each role's own /readyz (the processor and the dispatcher on
their ops ports, the API on its port), asked over loopback.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from streams import metrics
from streams.ops.procs import spawn, stop
from streams.ops.restarts import Backoff, RoleRun, after_exit, exit_cause, restarted

log = logging.getLogger(__name__)

READY_PROBE_TIMEOUT_S = 1.0


@dataclass
class RoleSpec:
    name: str
    env: Mapping[str, str]
    ready_url: str
    command: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        return self.command or [sys.executable, "-m", "streams.cli", self.name]


@dataclass
class _Slot:
    spec: RoleSpec
    run: RoleRun
    process: subprocess.Popen[bytes] | None = None
    start_at: float = 0.0  # when a stopped role is due to start again
    restarts: int = 0


def probe_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=READY_PROBE_TIMEOUT_S) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Supervisor:
    def __init__(
        self,
        roles: list[RoleSpec],
        clock: Callable[[], float],
        policy: Backoff | None = None,
        ready: Callable[[str], bool] = probe_ready,
    ) -> None:
        self._clock = clock
        self._policy = policy or Backoff()
        self._ready = ready
        self._slots = {spec.name: _Slot(spec, RoleRun(started_at=clock())) for spec in roles}

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    def pids(self) -> dict[str, int]:
        return {n: s.process.pid for n, s in self._slots.items() if s.process is not None}

    def restarts(self, name: str) -> int:
        return self._slots[name].restarts

    def start_all(self) -> None:
        for slot in self._slots.values():
            self._start(slot)

    def check(self) -> None:
        """Notice exits and start what is due to start; call it often (every 0.2 s)."""
        now = self._clock()
        for name, slot in self._slots.items():
            if slot.process is not None and slot.process.poll() is not None:
                self._exited(name, slot, slot.process.returncode, now)
            elif slot.process is not None and now - slot.run.started_at >= self._policy.stable_s:
                metrics.DEV_ROLE_CRASH_LOOPING.labels(role=name).set(0)
            if slot.process is None and now >= slot.start_at:
                pid = self._start(slot)
                slot.restarts += 1
                metrics.DEV_ROLE_RESTARTS.labels(role=name).inc()
                log.warning("restarted the %s (pid %d, restart %d)", name, pid, slot.restarts)

    def not_ready(self) -> list[str]:
        """The roles that do not answer 200 on /readyz (or are not running) now."""
        return [
            name
            for name, slot in self._slots.items()
            if slot.process is None or not self._ready(slot.spec.ready_url)
        ]

    def stop_all(self) -> None:
        """Stop the roles, last started first (the API before the loops)."""
        for name, slot in reversed(list(self._slots.items())):
            if slot.process is not None:
                stop(slot.process)
                slot.process = None
                metrics.DEV_ROLE_UP.labels(role=name).set(0)

    def _start(self, slot: _Slot) -> int:
        process = spawn(slot.spec.argv(), env=slot.spec.env)
        slot.process = process
        slot.run = restarted(slot.run, self._clock())
        metrics.DEV_ROLE_UP.labels(role=slot.spec.name).set(1)
        return process.pid

    def _exited(self, name: str, slot: _Slot, code: int, now: float) -> None:
        decision = after_exit(slot.run, now, self._policy)
        slot.run = decision.run
        slot.process = None
        slot.start_at = now + decision.delay_s
        metrics.DEV_ROLE_UP.labels(role=name).set(0)
        metrics.DEV_ROLE_CRASH_LOOPING.labels(role=name).set(1 if decision.crash_loop else 0)
        log.error(
            "the %s exited (%s) after %.1f s; restarting it in %.1f s",
            name,
            exit_cause(code),
            now - decision.run.started_at,
            decision.delay_s,
        )
        if decision.crash_loop:
            log.error(
                "the %s is crash-looping: %d exits in a row, each within %.0f s of its start; "
                "see its log lines above",
                name,
                decision.run.exits_in_a_row,
                self._policy.stable_s,
            )
