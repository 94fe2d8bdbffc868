"""Schedule jitter: a deterministic offset per firing, so hot instants spread out.

Thousands of ``0 * * * *`` tasks would otherwise all fall due in one
millisecond. A task with ``schedule.jitter_ms`` fires each run at its nominal
time plus an offset in ``[0, jitter_ms]`` drawn from the task id and the
nominal time: the same run always gets the same offset (a restore, a replay
or a re-read command lands on the same instant), different runs of a task and
different tasks at the same instant get different ones, spread about
uniformly. The firing still names its nominal run (``scheduled_at_ms`` and
the fire id are unchanged); only when it is emitted moves, and lateness is
measured from that moved instant.
"""

from __future__ import annotations

from hashlib import blake2b

# An hour: jitter is for spreading a burst, not for rescheduling.
MAX_JITTER_MS = 3_600_000
_PERSON = b"kw-jitter"


def jitter_offset_ms(task_id: str, nominal_ms: int, jitter_ms: int) -> int:
    """The offset of the run of ``task_id`` scheduled at ``nominal_ms``: 0..jitter_ms."""
    if jitter_ms <= 0:
        return 0
    # blake2b is stable across processes and Python versions (the built-in
    # hash() of a str is randomised per process) and costs well under a microsecond.
    digest = blake2b(f"{task_id}:{nominal_ms}".encode(), digest_size=8, person=_PERSON).digest()
    # 64 bits modulo at most 3.6e6 + 1: the bias is below 1e-12.
    return int.from_bytes(digest, "big") % (jitter_ms + 1)


def jittered_ms(task_id: str, nominal_ms: int, jitter_ms: int) -> int:
    """When the run scheduled at ``nominal_ms`` is due."""
    return nominal_ms + jitter_offset_ms(task_id, nominal_ms, jitter_ms)
