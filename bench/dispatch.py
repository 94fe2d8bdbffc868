"""One dispatcher against a local aiohttp sink, beside a raw aiohttp client baseline.

    python -m bench.dispatch [--callbacks 3000] [--concurrency 256]

Baseline: a plain aiohttp client (one pooled session, the same concurrency) in
its own process POSTs as fast as it can; delay = sent -> received by the sink.
Dispatcher: one ``kronwheel dispatcher`` process; the bench produces the due
events straight to tasks.due, each scheduled at the instant it is produced;
delay = scheduled -> received (so it includes the broker hop, the duplicate
check, the SSRF guard and the signing). Throughput counts from the first send
to the last callback received. Both run in the same session on the same sink,
and the table gives the dispatcher's numbers as ratios of the baseline's.

Uses KAFKA_BOOTSTRAP_SERVERS when set, else an embedded broker.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
import uuid
from contextlib import ExitStack

import aiohttp
from confluent_kafka import Producer

from bench.common import bench_settings, percentile, table
from streams.config import producer_config
from streams.core.events import DueTask
from streams.core.ids import fire_id
from streams.core.model import HttpTarget, RetryPolicy
from streams.core.timefmt import parse_rfc3339_ms
from streams.kafka.records import encode_due
from streams.kafka.topics import DUE, ensure_topics
from tests.support.harness import CallbackSink, Pipeline

SENT_HEADER = "X-Bench-Sent-Ms"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def paced(count: int, rate: float) -> list[float]:
    """Offsets in seconds at which to send each of ``count`` (rate 0 = all at once)."""
    return [i / rate if rate > 0 else 0.0 for i in range(count)]


def raw_client(url: str, count: int, concurrency: int, rate: float) -> None:
    """The baseline, run in a child process so it does not share the sink's GIL.

    Each request is stamped when it becomes due to send (before it waits for a
    free slot), as a due event is stamped when it is produced."""

    async def main() -> None:
        limit = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int, due_s: float) -> None:
                await asyncio.sleep(max(0.0, start + due_s - loop.time()))
                headers = {SENT_HEADER: str(now_ms())}
                async with limit, session.post(url, data=b"{}", headers=headers) as response:
                    await response.read()

            await asyncio.gather(*(one(i, at) for i, at in enumerate(paced(count, rate))))

    asyncio.run(main())


def run_baseline(count: int, concurrency: int, rate: float) -> tuple[float, list[int]]:
    with CallbackSink() as sink:
        started = now_ms()
        child = multiprocessing.get_context("spawn").Process(
            target=raw_client, args=(sink.url, count, concurrency, rate)
        )
        child.start()
        callbacks = sink.wait_for(count, timeout_s=120)
        child.join(30)
    delays = [c.received_ms - int(c.headers[SENT_HEADER]) for c in callbacks]
    return _rate(len(callbacks), started, callbacks[-1].received_ms), delays


def run_dispatcher(pipeline: Pipeline, count: int, rate: float) -> tuple[float, list[int]]:
    """Produce ``count`` due events (paced at ``rate``/s, 0 = at once) and time the callbacks."""
    settings = pipeline.settings
    producer = Producer(producer_config(settings, "bench"))
    # Fetch metadata first: the first records would otherwise wait for it (~0.5 s).
    producer.list_topics(settings.topic(DUE), timeout=10)
    with CallbackSink() as sink:
        start = time.monotonic()
        started = now_ms()
        for i, due_s in enumerate(paced(count, rate)):
            time.sleep(max(0.0, start + due_s - time.monotonic()))
            at = now_ms()
            task = f"bench-{uuid.uuid4().hex[:8]}-{i}"
            due = DueTask(
                fire_id(task, at, 1),
                task,
                "bench",
                task,
                at,
                1,
                at,
                HttpTarget(sink.url, body=f'{{"n": {i}}}'),
                RetryPolicy(),
            )
            while True:
                try:
                    producer.produce(settings.topic(DUE), encode_due(due), key=task.encode())
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
        producer.flush(30)
        callbacks = sink.wait_for(count, timeout_s=180)
    delays = [
        c.received_ms - parse_rfc3339_ms(c.headers["Kronwheel-Scheduled-At"]) for c in callbacks
    ]
    return _rate(len(callbacks), started, max(c.received_ms for c in callbacks)), delays


def _rate(count: int, started_ms: int, last_ms: int) -> float:
    return count / max(0.001, (last_ms - started_ms) / 1000)


def row(name: str, rate: float, delays: list[int], base: tuple[float, list[int]]) -> list[object]:
    base_rate, base_delays = base
    return [
        name,
        len(delays),
        rate,
        percentile(delays, 50),
        percentile(delays, 99),
        rate / base_rate,
        percentile(delays, 99) / max(1.0, percentile(base_delays, 99)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callbacks", type=int, default=3000, help="burst size (throughput)")
    parser.add_argument("--paced", type=int, default=1000, help="callbacks in the paced run")
    parser.add_argument("--rate", type=float, default=200.0, help="paced run: callbacks per second")
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    with ExitStack() as stack:
        settings, work = bench_settings(
            stack,
            signing_secret="bench-secret",
            dispatch_concurrency=args.concurrency,
            dispatch_per_host_concurrency=args.concurrency,
        )
        burst_base = run_baseline(args.callbacks, args.concurrency, 0)
        paced_base = run_baseline(args.paced, args.concurrency, args.rate)
        ensure_topics(settings)
        pipeline = Pipeline(settings, work / "logs")
        try:
            dispatcher = pipeline.start("dispatcher")
            pipeline.wait_for_log(dispatcher, "assigned [")
            burst = run_dispatcher(pipeline, args.callbacks, 0)
            steady = run_dispatcher(pipeline, args.paced, args.rate)
        finally:
            pipeline.stop_all()
    print(
        f"local aiohttp sink, concurrency {args.concurrency}; delay in ms from the moment a "
        "call is due (baseline: due to send; dispatcher: produced to tasks.due) to received"
    )
    print(
        table(
            ["run", "n", "callbacks/s", "p50 delay", "p99 delay", "rate / raw", "p99 / raw p99"],
            [
                row(f"raw aiohttp, burst of {args.callbacks}", *burst_base, burst_base),
                row("dispatcher, same burst", *burst, burst_base),
                row(f"raw aiohttp, paced {args.rate:g}/s", *paced_base, paced_base),
                row("dispatcher, same pace", *steady, paced_base),
            ],
        )
    )
    for name, (_, delays), expected in (
        ("burst", burst, args.callbacks),
        ("paced", steady, args.paced),
    ):
        if len(delays) < expected:
            print(f"MISSING CALLBACKS in the {name} run: {expected - len(delays)}")


if __name__ == "__main__":
    main()
