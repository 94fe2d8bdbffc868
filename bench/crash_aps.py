"""The crash benchmark's APScheduler baseline: APScheduler 3 with a persistent job store.

    python -m bench.crash_aps load --db PATH --order ORDER.json   # add the jobs, exit
    python -m bench.crash_aps run --db PATH                         # run them until killed

Configuration (what a user who wants jobs to survive a restart would write):
``AsyncIOScheduler`` with ``SQLAlchemyJobStore`` on a SQLite file,
``AsyncIOExecutor`` running ``async def`` jobs on the event loop,
``misfire_grace_time=None`` (a job found late after a restart still runs),
``coalesce=False``. Jobs are stored by reference (``bench.crash_aps:fire``)
with plain arguments, as the store requires; each POSTs to the sink with the
headers kronwheel's dispatcher sends (``bench.aps_baseline.fire``).

``load`` reads the order (a :class:`bench.workloads.Workload` and ``sink_base``
as JSON), adds every job with the scheduler paused (one INSERT and commit
each, as ``add_job`` does), prints ``loaded <n>`` and exits. ``run`` prints
``ready`` once the scheduler is started, and runs until it is killed or
SIGTERMed. Between the two the jobs live only in the SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bench.aps_baseline import fire as post_callback
from bench.workloads import Workload

_session: aiohttp.ClientSession | None = None


async def fire(url: str, key: str, due_ms: int) -> None:
    """The stored job: one callback, on the process's one client session."""
    global _session
    if _session is None:
        _session = aiohttp.ClientSession()
    await post_callback(_session, url, key, due_ms)


def scheduler(db: str) -> AsyncIOScheduler:
    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{db}")},
        executors={"default": AsyncIOExecutor()},
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone=UTC,
    )


async def load(db: str, order: dict[str, Any]) -> None:
    workload = Workload.from_json(order)
    url = order["sink_base"] + workload.path
    jobs = scheduler(db)
    jobs.start(paused=True)  # the store is written, nothing runs
    count = 0
    for _, chunk in workload.batches():
        for key, due_ms in chunk:
            jobs.add_job(
                "bench.crash_aps:fire",
                DateTrigger(datetime.fromtimestamp(due_ms / 1000, UTC)),
                args=(url, key, due_ms),
                id=key,
            )
            count += 1
    jobs.shutdown(wait=False)
    print(f"loaded {count}", flush=True)


async def run(db: str) -> None:
    jobs = scheduler(db)
    jobs.start()
    print("ready", flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await stopping.wait()
    jobs.shutdown(wait=False)


def read_order(path: str) -> dict[str, Any]:
    order: dict[str, Any] = json.loads(Path(path).read_text())
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["load", "run"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--order", help="load: the order's JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(load(args.db, read_order(args.order)) if args.mode == "load" else run(args.db))


if __name__ == "__main__":
    main()
