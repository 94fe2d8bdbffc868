"""``kronwheel replay due``: re-drive the firings of a time window from tasks.due.

The dispatcher runs a fire id at most once to a recorded outcome (it skips
fire ids that already have one), so re-driving works in two ways:

* without ``--status``: every firing of the window is produced again exactly as
  it was, same fire id. Dispatchers drop the ones that have an outcome and run
  the ones that never got one (a lost batch, a history store that was behind).
* ``--status failed``: firings without a succeeded attempt are re-driven. One
  whose latest attempt never got an outcome is produced again as it was; one
  whose latest attempt failed gets the NEXT attempt: same task, same scheduled
  time, attempt + 1 (so a new fire id), reason ``retry``. That is the same
  firing the wheel would have emitted for a retry, written straight to
  tasks.due because the processor may no longer hold the task at all (a
  one-time task is gone from the wheel once it fired).

Both are safe to repeat: a re-run computes the same fire ids until an outcome
is recorded, and dispatchers drop fire ids that already have one, so a firing
ends with at most one succeeded attempt however often the replay runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from streams.config import Settings
from streams.core.errors import MalformedEvent
from streams.core.events import DueTask, ExecutionResult, FireReason
from streams.core.ids import fire_id
from streams.core.model import Outcome
from streams.kafka.records import decode_due, encode_due
from streams.kafka.topics import DUE
from streams.ops.replay.produce import produce_all
from streams.ops.replay.scan import ScanStats, log_malformed, scan_window
from streams.ops.replay.window import Window
from streams.ports import ExecutionHistory

log = logging.getLogger(__name__)

# A firing: one scheduled run of one task, over all its attempts.
FiringKey = tuple[str, int]
# Executions looked up per task when filtering by outcome; far more than one
# task has in any window an operator re-drives.
HISTORY_LOOKUP_LIMIT = 100_000


class Action(StrEnum):
    RESEND = "resend"
    NEXT_ATTEMPT = "next-attempt"


@dataclass(frozen=True, slots=True)
class Redrive:
    due: DueTask
    partition: int
    action: Action


@dataclass(frozen=True, slots=True)
class Candidate:
    """A firing read from tasks.due, with the partition it was on."""

    due: DueTask
    partition: int


def plan_redrive(
    candidates: Iterable[Candidate],
    recorded: Mapping[FiringKey, Sequence[ExecutionResult]] | None,
    now_ms: int,
) -> list[Redrive]:
    """What to produce. ``recorded`` None means no outcome filter: resend everything."""
    latest: dict[FiringKey, Candidate] = {}
    seen_fire_ids: set[str] = set()
    everything: list[Redrive] = []
    for candidate in candidates:
        due = candidate.due
        if recorded is None:
            if due.fire_id not in seen_fire_ids:
                seen_fire_ids.add(due.fire_id)
                everything.append(Redrive(due, candidate.partition, Action.RESEND))
            continue
        key = (due.task_id, due.scheduled_at_ms)
        if key not in latest or due.attempt > latest[key].due.attempt:
            latest[key] = candidate
    if recorded is None:
        return everything
    plan = []
    for key, candidate in latest.items():
        attempts = recorded.get(key, ())
        if any(r.outcome is Outcome.SUCCEEDED for r in attempts):
            continue
        recorded_attempts = {r.attempt for r in attempts}
        due = candidate.due
        if due.attempt not in recorded_attempts:
            plan.append(Redrive(due, candidate.partition, Action.RESEND))
            continue
        attempt = max(recorded_attempts | {due.attempt}) + 1
        retry = replace(
            due,
            fire_id=fire_id(due.task_id, due.scheduled_at_ms, attempt),
            attempt=attempt,
            emitted_at_ms=now_ms,
            reason=FireReason.RETRY,
        )
        plan.append(Redrive(retry, candidate.partition, Action.NEXT_ATTEMPT))
    return sorted(plan, key=lambda r: (r.due.scheduled_at_ms, r.due.task_id))


def recorded_outcomes(
    store: ExecutionHistory, keys: Iterable[FiringKey]
) -> dict[FiringKey, list[ExecutionResult]]:
    """The recorded attempts of each firing, looked up once per task."""
    wanted = set(keys)
    found: dict[FiringKey, list[ExecutionResult]] = {key: [] for key in wanted}
    for task_id in sorted({task for task, _ in wanted}):
        for result in store.executions(task_id, limit=HISTORY_LOOKUP_LIMIT):
            key = (result.task_id, result.scheduled_at_ms)
            if key in found:
                found[key].append(result)
    return found


@dataclass
class DueReplay:
    scan: ScanStats = field(default_factory=ScanStats)
    malformed: int = 0
    planned: list[Redrive] = field(default_factory=list)
    produced: int = 0

    def summary(self) -> str:
        resend = sum(1 for r in self.planned if r.action is Action.RESEND)
        return (
            f"{self.scan.summary()}; {len(self.planned)} firings to re-drive "
            f"({resend} resent as they were, {len(self.planned) - resend} as the next attempt), "
            f"{self.produced} produced, {self.malformed} malformed skipped"
        )


def read_candidates(
    settings: Settings,
    window: Window,
    report: DueReplay,
    task_id: str | None,
    *,
    progress: bool,
) -> list[Candidate]:
    wanted_key = task_id.encode() if task_id is not None else None
    candidates = []
    for batch in scan_window(
        settings, settings.topic(DUE), window, report.scan, progress=progress, purpose="due"
    ):
        for message in batch:
            if wanted_key is not None and message.key() != wanted_key:
                continue
            try:
                due = decode_due(message.value() or b"")
            except MalformedEvent as exc:
                report.malformed += 1
                log_malformed(log, "firing", message, exc)
                continue
            if task_id is None or due.task_id == task_id:
                candidates.append(Candidate(due, message.partition() or 0))
    return candidates


def replay_due(
    settings: Settings,
    store: ExecutionHistory,
    window: Window,
    now_ms: int,
    *,
    task_id: str | None = None,
    only_failed: bool = False,
    dry_run: bool = False,
    progress: bool = True,
) -> DueReplay:
    report = DueReplay()
    candidates = read_candidates(settings, window, report, task_id, progress=progress)
    recorded = None
    if only_failed:
        keys = {(c.due.task_id, c.due.scheduled_at_ms) for c in candidates}
        recorded = recorded_outcomes(store, keys)
    report.planned = plan_redrive(candidates, recorded, now_ms)
    if not dry_run and report.planned:
        report.produced = produce_firings(settings, report.planned)
    return report


def produce_firings(settings: Settings, plan: Sequence[Redrive]) -> int:
    """Each firing goes to the partition it came from (the one its task lives on)."""
    for redrive in plan:
        log.debug(
            "re-driving %s (%s) to partition %d",
            redrive.due.fire_id,
            redrive.action.value,
            redrive.partition,
            extra={"task_id": redrive.due.task_id, "partition": redrive.partition},
        )
    return produce_all(
        settings,
        settings.topic(DUE),
        ((r.partition, r.due.task_id.encode(), encode_due(r.due)) for r in plan),
    )
