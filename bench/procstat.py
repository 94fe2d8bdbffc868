"""CPU seconds and resident memory of a process tree, read from /proc while it runs.

A benchmark of a system made of several processes (``kronwheel dev``: the
supervisor, the broker, every role) has to count all of them, and a process
that exits before the end must keep what it used. :class:`TreeSampler` walks
the descendants of one root PID every ``interval_s`` in a thread of its own and
keeps, per PID, the last CPU counters seen and the peak of VmHWM; a phase's
CPU is the difference of two :meth:`TreeSampler.cpu_by_role` readings.

Linux only (it reads /proc/<pid>/stat, status and cmdline).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class StatLine:
    """What a benchmark needs from /proc/<pid>/stat: the parent and the CPU ticks."""

    ppid: int
    own_ticks: int  # utime + stime
    reaped_ticks: int  # cutime + cstime: children this process has waited for


def parse_stat(text: str) -> StatLine:
    # The command name sits in parentheses and may hold spaces or ")" itself:
    # split after the last ")".
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is the state (field 3 of proc(5)); utime is field 14.
    return StatLine(
        ppid=int(fields[1]),
        own_ticks=int(fields[11]) + int(fields[12]),
        reaped_ticks=int(fields[13]) + int(fields[14]),
    )


def parse_status_kb(text: str, key: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), 0 when absent."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def role_of(argv: list[str]) -> str:
    """A short name for a process of the tree: the kronwheel role, the broker, or argv[0]."""
    for marker in ("streams.cli", "bench.aps_baseline", "bench.crash_aps", "bench.crash_arq"):
        if marker in argv:
            rest = argv[argv.index(marker) + 1 :]
            return rest[0] if rest and marker == "streams.cli" else marker.split(".")[-1]
    if argv and "tansu" in Path(argv[0]).name:
        return "broker"
    # A server that renames itself ("redis-server 127.0.0.1:6379") keeps its first word.
    return Path(argv[0]).name.split(" ")[0] if argv else "?"


@dataclass
class Seen:
    role: str
    ppid: int
    own_ticks: int = 0
    reaped_ticks: int = 0
    peak_rss_kb: int = 0
    alive: bool = True


class TreeSampler:
    """Samples a root PID and all its descendants until :meth:`stop` (the root
    itself left out with ``include_root=False``: a bench that starts the
    processes itself and must not count its own work)."""

    def __init__(self, root_pid: int, interval_s: float = 0.5, include_root: bool = True) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self.include_root = include_root
        self._seen: dict[int, Seen] = {}
        self._peak_total_rss_kb = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        stats = _all_stats()
        tree = _descendants(self.root_pid, {pid: s.ppid for pid, s in stats.items()})
        if not self.include_root:
            tree = [pid for pid in tree if pid != self.root_pid]
        total_rss = 0
        with self._lock:
            for seen in self._seen.values():
                seen.alive = False
            for pid in tree:
                stat = stats[pid]
                if pid not in self._seen:
                    self._seen[pid] = Seen(_read_role(pid), stat.ppid)
                seen = self._seen[pid]
                seen.alive = True
                seen.own_ticks = max(seen.own_ticks, stat.own_ticks)
                seen.reaped_ticks = max(seen.reaped_ticks, stat.reaped_ticks)
                status = _read(PROC / str(pid) / "status")
                seen.peak_rss_kb = max(seen.peak_rss_kb, parse_status_kb(status, "VmHWM"))
                total_rss += parse_status_kb(status, "VmRSS")
            self._peak_total_rss_kb = max(self._peak_total_rss_kb, total_rss)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds so far by role, every process ever seen in the tree included."""
        self.sample()
        with self._lock:
            ticks = ticks_by_role(self._seen)
        return {role: count / TICKS_PER_S for role, count in ticks.items()}

    def peak_rss_mb(self) -> dict[str, float]:
        """Peak resident memory: per role (sum of per-process peaks) and ``total``
        (the largest sum of every process's RSS at one sampling instant)."""
        with self._lock:
            by_role: dict[str, float] = defaultdict(float)
            for seen in self._seen.values():
                by_role[seen.role] += seen.peak_rss_kb / 1024
            by_role["total"] = self._peak_total_rss_kb / 1024
        return dict(by_role)


def ticks_by_role(seen: dict[int, Seen]) -> dict[str, int]:
    """Each process's own ticks, plus what it reaped from children never seen.

    A parent's reaped counter also holds what its seen children used once it
    has waited for them; counting both would count those children twice."""
    gone_children: dict[int, int] = defaultdict(int)
    for process in seen.values():
        if not process.alive:
            gone_children[process.ppid] += process.own_ticks + process.reaped_ticks
    by_role: dict[str, int] = defaultdict(int)
    for pid, process in seen.items():
        unseen_reaped = max(0, process.reaped_ticks - gone_children.get(pid, 0))
        by_role[process.role] += process.own_ticks + unseen_reaped
    return dict(by_role)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds used between two readings, by role, plus ``total``."""
    delta = {role: after[role] - before.get(role, 0.0) for role in after}
    delta["total"] = sum(delta.values())
    return delta


def _descendants(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    found, stack = [], [root] if root in parents else []
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _all_stats() -> dict[int, StatLine]:
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            text = _read(entry / "stat")
            if text:
                stats[int(entry.name)] = parse_stat(text)
    return stats


def _read_role(pid: int) -> str:
    raw = _read(PROC / str(pid) / "cmdline")
    return role_of([part for part in raw.split("\0") if part])


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # the process exited between listing and reading
        return ""
