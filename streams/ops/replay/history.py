"""``kronwheel replay history``: rebuild or fill gaps in the history store from tasks.results.

Every attempt's outcome is on tasks.results (the dispatcher publishes it
before it writes the store), so the store can always be rebuilt from the
topic. ``record_executions`` is idempotent by fire id: re-running a replay, or
replaying over a store that already has part of the window, adds only what is
missing and changes nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from streams.config import Settings
from streams.core.errors import MalformedEvent
from streams.core.events import ExecutionResult
from streams.kafka.records import decode_result
from streams.kafka.topics import RESULTS
from streams.ops.replay.scan import ScanStats, log_malformed, scan_window
from streams.ops.replay.window import Window
from streams.ports import ExecutionHistory

log = logging.getLogger(__name__)


@dataclass
class HistoryReplay:
    scan: ScanStats = field(default_factory=ScanStats)
    inserted: int = 0
    already_present: int = 0
    malformed: int = 0

    def summary(self) -> str:
        return (
            f"{self.scan.summary()}; {self.inserted} executions added, "
            f"{self.already_present} already in the store, {self.malformed} malformed skipped"
        )


def replay_history(
    settings: Settings, store: ExecutionHistory, window: Window, *, progress: bool = True
) -> HistoryReplay:
    report = HistoryReplay()
    topic = settings.topic(RESULTS)
    for batch in scan_window(
        settings, topic, window, report.scan, progress=progress, purpose="history"
    ):
        results: list[ExecutionResult] = []
        for message in batch:
            try:
                results.append(decode_result(message.value() or b""))
            except MalformedEvent as exc:
                report.malformed += 1
                log_malformed(log, "result", message, exc)
        if results:
            added = store.record_executions(results)
            report.inserted += added
            report.already_present += len(results) - added
    return report
