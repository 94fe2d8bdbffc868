"""The dispatcher's per-firing bookkeeping with and without a log line each, same run.

    python -m bench.logline [--firings 100000]

``log_attempt`` (metrics, the partition's tally, the line) for the same
firings, with the text log format of the roles written to a temporary file:
at DEBUG (a line per firing, as INFO was before) and at INFO (no line; the
per-partition summary once a minute instead). CPU seconds of this thread.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from bench.common import table
from streams.config import Settings
from streams.core.attempts import Attempt, DueRecord, result_of
from streams.core.events import DueTask
from streams.core.ids import fire_id
from streams.core.model import HttpTarget, Outcome, RetryPolicy
from streams.dispatching.outputs import PartitionState, Taken, log_attempt, outputs_of
from streams.logs import TEXT_FORMAT

BASE_MS = 1_800_000_000_000


def run(level: int, firings: int, log_path: Path) -> tuple[float, int]:
    """(CPU µs per firing, log bytes per firing) at ``level``."""
    settings = Settings()
    logger = logging.getLogger("streams.dispatching.dispatcher")
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    state = PartitionState()
    cases = []
    for n in range(firings):
        scheduled = BASE_MS + n
        due = DueTask(
            fire_id(f"t{n}", scheduled, 1), f"t{n}", "acme", "n", scheduled, 1, scheduled,
            HttpTarget("http://127.0.0.1/hook"), RetryPolicy(),
        )  # fmt: skip
        taken = Taken(due, DueRecord("tasks.due", 2, n, None, None), state)
        result = result_of(due, Attempt(Outcome.SUCCEEDED, scheduled + 9, scheduled + 11), "d")
        cases.append((taken, result, outputs_of(settings, taken, result)))
    started = time.thread_time()
    for taken, result, outputs in cases:
        log_attempt(settings, taken, result, outputs)
    elapsed = time.thread_time() - started
    logger.removeHandler(handler)
    handler.close()
    return elapsed / firings * 1e6, log_path.stat().st_size // firings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--firings", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        before = run(logging.DEBUG, args.firings, Path(work, "before.log"))
        after = run(logging.INFO, args.firings, Path(work, "after.log"))
    rows = [
        ["a line per firing (INFO before, DEBUG now)", *before],
        ["INFO now: the summary only", *after],
    ]
    print(f"{args.firings:,} firings through log_attempt")
    print(table(["logging", "CPU µs/firing", "log B/firing"], rows))


if __name__ == "__main__":
    main()
