"""A child process of the crash benchmark: started with its output in a log file,
waited for by a line it prints, SIGKILLed or stopped by its PID.

Children are started with ``streams.ops.procs.spawn``: they die with the bench,
so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.ops.procs import kill, spawn, stop


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Child:
    label: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @staticmethod
    def start(label: str, args: list[str], log_path: Path, env: dict[str, str]) -> Child:
        with log_path.open("ab") as log:
            process = spawn(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        return Child(label, process, log_path)

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def log_tail(self) -> str:
        return self.log_text()[-2000:]

    def wait_for(self, line: str, timeout_s: float) -> None:
        """Until the child prints ``line`` (a whole line), or fail with its log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(got.strip().startswith(line) for got in self.log_text().splitlines()):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited early:\n{self.log_tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.label} did not print {line!r} in {timeout_s} s")

    def kill(self) -> None:
        kill(self.process)

    def stop(self) -> int:
        return stop(self.process)
