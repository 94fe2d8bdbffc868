"""``kronwheel replay history|due|state``: argument handling and what is printed.

Summaries go to stdout, progress bars and logs to stderr. Ctrl-C stops a
replay cleanly (nothing is committed anywhere, so running it again is the way
to finish it) and exits 130.
"""

from __future__ import annotations

import argparse
import logging
import time

from streams.config import Settings
from streams.core.model import Outcome
from streams.core.timefmt import format_rfc3339_ms
from streams.ops.replay.due import DueReplay, replay_due
from streams.ops.replay.history import replay_history
from streams.ops.replay.state import replay_state
from streams.ops.replay.window import Window
from streams.ops.tables import render_table
from streams.views.history import open_execution_history

log = logging.getLogger(__name__)

INTERRUPTED = 130


def run_replay(settings: Settings, args: argparse.Namespace, progress: bool) -> int:
    started = time.monotonic()
    try:
        summary = _run(settings, args, progress)
    except KeyboardInterrupt:
        print("interrupted: nothing was half-applied; run the same command again to finish")
        return INTERRUPTED
    except ValueError as exc:
        raise SystemExit(f"kronwheel replay {args.replay}: {exc}") from exc
    print(f"{summary} in {time.monotonic() - started:.1f} s")
    return 0


def _run(settings: Settings, args: argparse.Namespace, progress: bool) -> str:
    if args.replay == "state":
        report = replay_state(settings, dry_run=args.dry_run, force=args.force, progress=progress)
        if report.per_partition:
            print(render_table(["partition", "live tasks"], sorted(report.per_partition.items())))
        return ("dry run: " if args.dry_run else "") + report.summary()
    now_ms = time.time_ns() // 1_000_000
    window = Window.parse(args.start, args.end, now_ms)
    log.info("replay %s over %s", args.replay, window.describe())
    store = open_execution_history(settings)
    try:
        if args.replay == "history":
            return replay_history(settings, store, window, progress=progress).summary()
        due = replay_due(
            settings,
            store,
            window,
            now_ms,
            task_id=args.task,
            only_failed=args.status == Outcome.FAILED,
            dry_run=args.dry_run,
            progress=progress,
        )
    finally:
        store.close()
    if args.dry_run:
        print(_plan_table(due))
        return "dry run, nothing sent: " + due.summary()
    return due.summary()


def _plan_table(report: DueReplay) -> str:
    return render_table(
        ["fire id", "task", "scheduled at", "attempt", "partition", "action"],
        [
            (
                r.due.fire_id,
                r.due.task_id,
                format_rfc3339_ms(r.due.scheduled_at_ms),
                r.due.attempt,
                r.partition,
                r.action.value,
            )
            for r in report.planned
        ],
    )
