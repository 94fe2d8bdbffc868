"""The comparison's baseline: APScheduler 3 in one process, driven over stdin.

    python -m bench.aps_baseline [--bare]

``--bare`` is the floor under both schedulers: no scheduler at all, each call
started by ``loop.call_at`` at its due time, the same client and sink. When
it is late, the machine (client, sink, CPU share) is the limit, not a scheduler.

Configuration (what a user of one machine would write): ``AsyncIOScheduler``,
``MemoryJobStore``, ``AsyncIOExecutor`` running ``async def`` jobs on the
event loop, ``misfire_grace_time=None`` (a late job still runs; the default of
1 s would drop late jobs and make lateness look better than it is), logging at
WARNING (APScheduler's INFO line per job is off, as by default). Each job POSTs
to the callback sink with one shared ``aiohttp.ClientSession`` (default
connector: 100 connections), sending the same headers kronwheel's dispatcher
sends, so the sink tells the two apart only by the path.

Protocol: prints ``ready``; then for every JSON line on stdin (a
:class:`bench.workloads.Workload` and the ``sink_base`` URL) adds its jobs in batches at the planned
times (the same lead ahead as the REST creates) and prints ``added <name>``;
exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import aiohttp
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bench.workloads import Workload
from streams.core.timefmt import format_rfc3339_ms


async def fire(session: aiohttp.ClientSession, url: str, key: str, due_ms: int) -> None:
    headers = {
        "Idempotency-Key": f"{key}:{due_ms}:1",
        "Kronwheel-Task-Id": key,
        "Kronwheel-Scheduled-At": format_rfc3339_ms(due_ms),
        "Kronwheel-Attempt": "1",
    }
    async with session.post(url, data=b'{"n": 1}', headers=headers) as response:
        await response.read()


async def add_jobs(
    scheduler: AsyncIOScheduler | None,
    session: aiohttp.ClientSession,
    base: str,
    workload: Workload,
    calls: set[asyncio.Task[None]],
) -> None:
    """Add the workload's jobs batch by batch at the planned times; without a
    scheduler, arm a loop timer per call instead (``calls`` holds their tasks)."""
    url = base + workload.path
    loop = asyncio.get_running_loop()
    for create_at_ms, chunk in workload.batches():
        wait_s = (create_at_ms - time.time_ns() // 1_000_000) / 1000
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        for key, due_ms in chunk:
            if scheduler is None:
                delay_s = (due_ms - time.time_ns() // 1_000_000) / 1000
                loop.call_at(loop.time() + delay_s, _start, calls, fire(session, url, key, due_ms))
            else:
                scheduler.add_job(
                    fire,
                    DateTrigger(datetime.fromtimestamp(due_ms / 1000, UTC)),
                    args=(session, url, key, due_ms),
                    id=key,
                )
    print(f"added {workload.name}", flush=True)


def _start(calls: set[asyncio.Task[None]], call: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(call)
    calls.add(task)
    task.add_done_callback(calls.discard)


async def main(bare: bool) -> None:
    scheduler = None
    if not bare:
        scheduler = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": AsyncIOExecutor()},
            job_defaults={"misfire_grace_time": None, "coalesce": False},
            timezone=UTC,
        )
    loop = asyncio.get_running_loop()
    calls: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession() as session:
        if scheduler is not None:
            scheduler.start()
        print("ready", flush=True)
        adding: list[asyncio.Task[None]] = []
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            order = json.loads(line)
            workload = Workload.from_json(order)
            job = add_jobs(scheduler, session, order["sink_base"], workload, calls)
            adding.append(asyncio.create_task(job))
        await asyncio.gather(*adding, *calls)
        if scheduler is not None:
            scheduler.shutdown(wait=False)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(bare="--bare" in sys.argv[1:]))
