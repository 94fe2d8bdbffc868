"""Whether a decoded record can be shown, and applying a batch one record at a time.

The projector is one thread for every tenant: a record it cannot project
(an instant no RFC 3339 string can carry, a spec that does not render) must
cost that record, counted, never the thread. Records written through the
API or the processor pass validation first; these checks are for what other
tools may have written to the topics.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from streams.core.events import ExecutionResult, TaskCommand, TaskState
from streams.core.model import AtSchedule, IntervalSchedule, TaskSpec
from streams.core.timefmt import MAX_INSTANT_MS, MIN_INSTANT_MS
from streams.metrics import PROJECTOR_SKIPPED
from streams.ports import Projection, ReadModel

log = logging.getLogger(__name__)


def _instants(*values: int | None) -> None:
    for value in values:
        # Durations and fire counts are not instants; only these are shown as times.
        if value is not None and not MIN_INSTANT_MS <= value <= MAX_INSTANT_MS:
            raise ValueError(f"instant {value} is outside 1970..9999")


def _spec_instants(spec: TaskSpec) -> None:
    """The instants of a spec are all that can keep it from rendering (spec_to_json):
    checked here instead of rendering it twice, once here and once in the store (a
    record that still fails in the store costs its batch a record-by-record redo,
    :func:`apply_each`, never the thread)."""
    match spec.schedule:
        case AtSchedule(at_ms=at_ms):
            _instants(at_ms)
        case IntervalSchedule(start_ms=start_ms, end_ms=end_ms):
            _instants(start_ms, end_ms)
        case _:
            pass


def check_state(state: TaskState) -> None:
    _spec_instants(state.spec)
    _instants(state.next_fire_ms, state.last_fire_ms, state.created_at_ms, state.updated_at_ms)


def check_result(result: ExecutionResult) -> None:
    _instants(result.scheduled_at_ms, result.started_at_ms, result.finished_at_ms)


def check_command(command: TaskCommand) -> None:
    if command.spec is not None:
        _spec_instants(command.spec)
    _instants(command.issued_at_ms)


def skipped(what: str, exc: BaseException) -> None:
    PROJECTOR_SKIPPED.labels(reason=type(exc).__name__).inc()
    log.warning("projector skipped %s: %s: %s", what, type(exc).__name__, exc)


def apply_each(store: ReadModel, name: str, batch: Projection) -> None:
    """Apply a batch the store refused as a whole, one record at a time, skipping
    (and counting) the records it refuses on their own; offsets go last."""
    parts: list[Projection] = [Projection(states=(s,)) for s in batch.states]
    parts += [Projection(results=(r,)) for r in batch.results]
    parts += [Projection(commands=(c,)) for c in batch.commands]
    for part in parts:
        try:
            store.apply(name, part)
        except Exception as exc:
            skipped(repr(part)[:200], exc)
    store.apply(name, replace(Projection(), offsets=batch.offsets))
