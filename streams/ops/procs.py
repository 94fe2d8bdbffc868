"""Child processes that never outlive their parent.

Every process kronwheel starts (the embedded broker, the roles of ``kronwheel
dev``) is started through :func:`spawn`, which asks Linux to SIGKILL the child
when the parent dies (PR_SET_PDEATHSIG), so even a SIGKILLed ``kronwheel dev``
or test run leaves no orphan. Processes are stopped by their PID only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child that is SIGKILLed if this process dies first.

    The parent-death signal is tied to the thread that forked, so call this from
    a thread that lives as long as the child should (the main thread, normally).
    """
    return subprocess.Popen(
        list(args),
        env=dict(env) if env is not None else None,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        # Only prctl runs between fork and exec: safe even with threads in the parent.
        preexec_fn=_die_with_parent,
        # Its own session: a Ctrl-C at the terminal reaches only the parent, which
        # then stops its children in order (roles first, the broker last).
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM, wait, then SIGKILL; returns the exit code. Safe to call twice."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(5)
    return process.returncode


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL now (the chaos tests' way to die), and reap."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` that has not been reaped (Linux, from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for_http_ok(
    url: str, children: Mapping[str, subprocess.Popen[bytes]], timeout_s: float = 30.0
) -> None:
    """Wait until ``url`` answers 200, failing early if one of ``children`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _fail_if_exited(children)
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered 200 on {url} within {timeout_s} s")


def wait_for_loopback_port(
    port: int, children: Mapping[str, subprocess.Popen[bytes]], timeout_s: float = 30.0
) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``, failing early
    if one of ``children`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _fail_if_exited(children)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout_s} s")


def _fail_if_exited(children: Mapping[str, subprocess.Popen[bytes]]) -> None:
    for name, child in children.items():
        if child.poll() is not None:
            raise RuntimeError(f"the {name} exited with code {child.returncode} at start")
