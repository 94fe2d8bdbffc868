"""The crash benchmark's arq baseline: deferred jobs in Redis, run by an arq worker.

    python -m bench.crash_arq enqueue --redis-port P --order ORDER.json   # enqueue, exit
    python -m bench.crash_arq worker --redis-port P                       # run jobs until killed

Configuration: arq's defaults (``poll_delay`` 0.5 s, 5 tries, results kept)
except two. ``max_jobs`` 32, kronwheel's calls at once per target host: with
the default 10, jobs that each wait on an HTTP call capped this worker near
200/s on a busy machine, the workload's own rate, and it fell 10 s behind
before any crash (measured once: p50 10 s). ``job_timeout`` 5 s, a callback's
timeout; it matters after a crash: a job the dead worker had started is
retried only when its in-progress key expires, ``job_timeout`` + 10 s later
(with the default 300 s, 310 s).
Each job is enqueued with ``_defer_until`` its due time and ``_job_id`` the
task key (so a second enqueue of a key is refused, as a user would do it), and
POSTs to the sink with kronwheel's headers (``bench.aps_baseline.fire``).

``enqueue`` reads the order (a :class:`bench.workloads.Workload` and
``sink_base`` as JSON), enqueues every job, prints ``loaded <n>`` and exits. ``worker``
prints ``ready`` once it is connected, and runs until killed or SIGTERM.
Redis at 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from bench.aps_baseline import fire as post_callback
from bench.workloads import Workload

JOB_TIMEOUT_S = 5
MAX_JOBS = 32


async def fire(ctx: dict[str, Any], url: str, key: str, due_ms: int) -> None:
    await post_callback(ctx["session"], url, key, due_ms)


async def on_startup(ctx: dict[str, Any]) -> None:
    ctx["session"] = aiohttp.ClientSession()
    print("ready", flush=True)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    await ctx["session"].close()


async def enqueue(port: int, order: dict[str, Any]) -> None:
    workload = Workload.from_json(order)
    url = order["sink_base"] + workload.path
    redis = await create_pool(RedisSettings(host="127.0.0.1", port=port))
    count = 0
    for _, chunk in workload.batches():
        for key, due_ms in chunk:
            when = datetime.fromtimestamp(due_ms / 1000, UTC)
            job = await redis.enqueue_job("fire", url, key, due_ms, _job_id=key, _defer_until=when)
            count += job is not None
    await redis.aclose()
    print(f"loaded {count}", flush=True)


def worker(port: int) -> None:
    Worker(
        functions=[fire],
        redis_settings=RedisSettings(host="127.0.0.1", port=port),
        job_timeout=JOB_TIMEOUT_S,
        max_jobs=MAX_JOBS,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        log_results=False,
    ).run()


def read_order(path: str) -> dict[str, Any]:
    order: dict[str, Any] = json.loads(Path(path).read_text())
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["enqueue", "worker"])
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--order", help="enqueue: the order's JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.mode == "enqueue":
        asyncio.run(enqueue(args.redis_port, read_order(args.order)))
    else:
        worker(args.redis_port)


if __name__ == "__main__":
    main()
