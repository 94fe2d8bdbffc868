"""Avro codec throughput against orjson, measured in the same run.

python -m bench.codec [--n 50000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson

from bench.common import table
from streams.core.events import DueTask
from streams.core.model import HttpTarget, RetryPolicy
from streams.kafka.records import decode_due, encode_due


def rate(n: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        work()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    n = parser.parse_args().n
    due = DueTask(
        "0123456789abcdef0123456789abcdef:1796115600000:1",
        "0123456789abcdef0123456789abcdef",
        "acme",
        "nightly-report",
        1_796_115_600_000,
        1,
        1_796_115_600_003,
        HttpTarget("https://example.com/hook", "POST", {"X-Team": "billing"}, '{"a": 1}'),
        RetryPolicy(5, 1_000, 60_000),
    )
    encoded = encode_due(due)
    as_json = {
        "fire_id": due.fire_id,
        "task_id": due.task_id,
        "tenant": due.tenant,
        "name": due.name,
        "scheduled_at_ms": due.scheduled_at_ms,
        "attempt": 1,
        "emitted_at_ms": 1,
        "target": {
            "url": "https://example.com/hook",
            "method": "POST",
            "headers": {"X-Team": "billing"},
            "body": '{"a": 1}',
            "timeout_ms": 10000,
        },
        "retry": {"max_attempts": 5, "backoff_ms": 1000, "max_backoff_ms": 60000},
    }
    json_bytes = orjson.dumps(as_json)
    rows = []
    json_encode = rate(n, lambda: orjson.dumps(as_json))
    json_decode = rate(n, lambda: orjson.loads(json_bytes))
    avro_encode = rate(n, lambda: encode_due(due))
    avro_decode = rate(n, lambda: decode_due(encoded))
    rows.append(
        ["DueTask encode", len(encoded), avro_encode, json_encode, avro_encode / json_encode]
    )
    rows.append(
        ["DueTask decode", len(encoded), avro_decode, json_decode, avro_decode / json_decode]
    )
    print(f"codec, {n:,} records each (baseline: orjson on the same fields, same run)")
    print(table(["operation", "bytes", "avro/s", "orjson/s", "ratio"], rows))


if __name__ == "__main__":
    main()
