"""Creates per second through the REST API, one per request and in batches, against
baselines measured in the same run:

* ``GET /healthz`` on the same API process and client (the HTTP ceiling: no
  validation, no Kafka);
* raw produce of the same Avro commands from this process (the broker ceiling).

    python -m bench.api_creates [--seconds 8] [--concurrency 64] [--batch 500]

Uses KAFKA_BOOTSTRAP_SERVERS when set, else an embedded broker. The API runs
as its own process (``kronwheel api``, projector included, which audits every
command it sees); the load comes from one aiohttp client in this process.
Every create is acknowledged by the broker (acks=all) before it is answered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import table
from streams.config import Settings, producer_config
from streams.core.clock import SystemClock
from streams.core.model import parse_task_spec
from streams.ingest import CommandPublisher, create_command
from streams.kafka.broker import EmbeddedBroker, free_loopback_port
from streams.kafka.clients import AsyncProducer
from streams.kafka.topics import ensure_topics
from tests.support.harness import Pipeline

TOKEN = "bench-admin-token"


def task_body(i: int) -> dict[str, Any]:
    return {
        "name": f"bench-{i}",
        "schedule": {"every_ms": 3_600_000},
        "target": {"http": {"url": "https://example.com/hook", "body": '{"n": 1}'}},
    }


async def drive(
    seconds: float, concurrency: int, call: Callable[[], Awaitable[int]]
) -> tuple[int, int, float]:
    """Run ``call`` from ``concurrency`` workers for ``seconds``: (requests, items, elapsed)."""
    deadline = time.monotonic() + seconds
    counts = [0, 0]

    async def worker() -> None:
        while time.monotonic() < deadline:
            done = await call()  # not `counts[1] += await ...`: that reads before awaiting
            counts[1] += done
            counts[0] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts[0], counts[1], time.monotonic() - started


async def http_scenarios(base: str, args: argparse.Namespace) -> list[tuple[str, int, int, float]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    rows = []
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        counter = iter(range(10**9))

        async def hello() -> int:
            async with session.get(f"{base}/healthz") as response:
                await response.read()
                return 1 if response.status == 200 else 0

        async def single() -> int:
            async with session.post(f"{base}/v1/tasks", json=task_body(next(counter))) as r:
                await r.read()
                return 1 if r.status == 202 else 0

        async def batch() -> int:
            body = {"tasks": [task_body(next(counter)) for _ in range(args.batch)]}
            async with session.post(f"{base}/v1/tasks:batch", json=body) as r:
                await r.read()
                return args.batch if r.status == 202 else 0

        rows.append(
            ("GET /healthz (HTTP baseline)", *await drive(args.seconds, args.concurrency, hello))
        )
        rows.append(("POST /v1/tasks", *await drive(args.seconds, args.concurrency, single)))
        rows.append(
            (
                f"POST /v1/tasks:batch x{args.batch}",
                *await drive(args.seconds, args.batch_concurrency, batch),
            )
        )
    return rows


async def raw_produce(settings: Settings, args: argparse.Namespace) -> tuple[str, int, int, float]:
    """The same commands, encoded and produced straight from this process (acks=all)."""
    producer = AsyncProducer(producer_config(settings, "bench"))
    publisher = CommandPublisher(settings, producer)
    clock = SystemClock()
    spec = parse_task_spec(task_body(0), clock.now_ms())
    requests = items = 0
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        commands = [
            create_command(spec, tenant="default", issuer="bench", now_ms=clock.now_ms())
            for _ in range(args.batch)
        ]
        await publisher.publish_many(commands)
        requests += 1
        items += len(commands)
    elapsed = time.monotonic() - started
    producer.close()
    return (f"raw produce x{args.batch} (broker baseline)", requests, items, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batch-concurrency", type=int, default=4)
    args = parser.parse_args()

    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        if not bootstrap:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap_servers
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = replace(
            Settings(),
            bootstrap_servers=bootstrap,
            topic_prefix=f"bench{os.getpid()}.",
            data_dir=workdir / "data",
            api_port=free_loopback_port(),
            api_token=TOKEN,
            session_timeout_ms=6000,
        )
        ensure_topics(settings)
        pipeline = Pipeline(settings, workdir / "logs")
        stack.callback(pipeline.stop_all)
        pipeline.start_ready("api")
        base = f"http://127.0.0.1:{settings.api_port}"
        rows = asyncio.run(http_scenarios(base, args))
        rows.append(asyncio.run(raw_produce(settings, args)))

    hello_rate = rows[0][2] / rows[0][3]
    print(
        table(
            ["scenario", "requests", "tasks", "seconds", "per s", "vs /healthz req/s"],
            [
                (name, requests, items, elapsed, items / elapsed, (items / elapsed) / hello_rate)
                for name, requests, items, elapsed in rows
            ],
        )
    )


if __name__ == "__main__":
    main()
