"""The dispatcher's per-record boundary: running one firing always ends in an Attempt.

TargetRunner turns the failures it knows into outcomes; this catches what it
does not (a bug, a value nothing expected), so a firing still gets a
recorded failed attempt and its offset is released. Without it the task that
ran the firing would die silently and its partition would never commit past
that record again.
"""

from __future__ import annotations

import logging

from streams.core.attempts import Attempt
from streams.core.clock import Clock
from streams.core.events import DueTask
from streams.core.model import Outcome
from streams.dispatching.targets import MAX_ERROR_CHARS
from streams.metrics import DEAD_LETTERS
from streams.ports import FiringRunner

log = logging.getLogger(__name__)


async def run_guarded(runner: FiringRunner, due: DueTask, clock: Clock) -> Attempt:
    started = clock.now_ms()
    try:
        return await runner.run(due)
    except Exception as exc:
        log.exception("running %s failed unexpectedly", due.fire_id)
        DEAD_LETTERS.labels(role="dispatcher", reason=type(exc).__name__).inc()
        error = f"internal error: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return Attempt(Outcome.FAILED, started, clock.now_ms(), error=error)
