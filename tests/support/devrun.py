"""``kronwheel dev`` as a user runs it, for tests: start it on a data directory,
find its roles by PID, SIGKILL one role or the whole tree, start it again.

Every process touched here is one this module started or a descendant of it,
found by PID under /proc; nothing is killed by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.kafka.broker import free_loopback_port
from streams.ops.procs import descendants, is_running, kill, spawn
from tests.support.harness import ApiClient
from tests.support.waiting import wait_until

BANNER = "kronwheel dev is running"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def slot_of(pid: int) -> str | None:
    """The KRONWHEEL_SLOT a child of dev runs in (None if unreadable or unset)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in environ:
        if entry.startswith(b"KRONWHEEL_SLOT="):
            return entry.split(b"=", 1)[1].decode()
    return None


class DevRun:
    """One ``kronwheel dev`` process tree; :meth:`start` again after :meth:`kill_tree`."""

    def __init__(self, tmp_path: Path, token: str, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_loopback_port()
        self.data_dir = tmp_path / "data"
        self.tmp_path = tmp_path
        self.token = token
        self.extra_env = extra_env or {}
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = tmp_path / "dev-0.log"

    @property
    def api(self) -> ApiClient:
        return ApiClient(f"http://127.0.0.1:{self.port}", self.token)

    def start(self, *args: str) -> DevRun:
        # kronwheel dev is the one-machine shape: its embedded broker and SQLite,
        # whatever real servers the rest of the suite was pointed at.
        outside = {"KAFKA_BOOTSTRAP_SERVERS", "CASSANDRA_CONTACT_POINTS"}
        env = {k: v for k, v in os.environ.items() if k not in outside}
        env.update(
            {
                "KRONWHEEL_API_PORT": str(self.port),
                "KRONWHEEL_API_TOKEN": self.token,
                "KRONWHEEL_DATA_DIR": str(self.data_dir),
                "PYTHONUNBUFFERED": "1",
                **self.extra_env,
            }
        )
        self.log_path = self.tmp_path / f"dev-{self.runs}.log"
        self.runs += 1
        with self.log_path.open("wb") as log_file:
            self.process = spawn(
                [sys.executable, "-m", "streams.cli", "dev", *args],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def wait_running(self, timeout_s: float = 90.0) -> float:
        """Wait for the banner; returns the seconds it took since :meth:`start`."""
        started = time.monotonic()
        assert self.process is not None
        wait_until(
            lambda: BANNER in self.log() or self.process.poll() is not None,  # type: ignore[union-attr]
            timeout_s,
            "the banner",
        )
        assert BANNER in self.log(), self.log()[-4000:]
        return time.monotonic() - started

    def role_pid(self, role: str) -> int | None:
        """The PID of the running child of this role (``dispatcher-2`` is the second
        dispatcher: the same command line, its own slot), if any."""
        assert self.process is not None
        command = role.partition("-")[0]
        for pid in descendants(self.process.pid):
            line = command_line(pid)
            if (
                is_running(pid)
                and line.rstrip().endswith(f"streams.cli {command}")
                and slot_of(pid) in (None, f"dev-{role}")
            ):
                return pid
        return None

    def kill_role(self, role: str) -> int:
        pid = self.role_pid(role)
        assert pid is not None, f"no {role} running"
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_tree(self) -> None:
        """SIGKILL the dev process and every process below it at once, as a power cut would."""
        if self.process is None:
            return
        below = descendants(self.process.pid)
        os.kill(self.process.pid, signal.SIGKILL)
        for pid in below:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
        kill(self.process)
        wait_until(lambda: not [p for p in below if is_running(p)], 20, "the tree to die")
        self.process = None

    def api_answers(self) -> bool:
        try:
            return self.api.get("/healthz")[0] == 200
        except OSError:
            return False
