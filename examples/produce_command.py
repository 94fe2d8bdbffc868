"""Create a kronwheel task from another service: one Avro TaskCommand on tasks.commands.

This is the whole contract a producer needs, with nothing of kronwheel imported:

* value: Avro binary (no schema-registry header) of schemas/task_command.avsc;
* key: the task id, UTF-8 (it picks the partition, so a task's commands stay in
  order); task ids must be globally unique: prefix them with your tenant;
* header ``kw-schema: TaskCommand`` (informative, for people reading the topic);
* producer settings acks=all and idempotence, so an accepted command is never lost.

Run it (with kronwheel's schemas/ beside it, or --schema pointing at the file):

    python examples/produce_command.py --bootstrap 127.0.0.1:9092 --tenant billing \\
        --url https://billing.example.com/hooks/invoice --cron "0 9 * * MON-FRI" \\
        --timezone Europe/Berlin

It prints the task id; ``GET /v1/tasks/<id>`` with a token of that tenant shows
the task once the processor has it, and its audit trail names --issuer.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Producer

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "task_command.avsc"
NS = "io.kronwheel."


def command_record(args: argparse.Namespace, task_id: str) -> dict[str, Any]:
    if args.cron:
        schedule: tuple[str, dict[str, Any]] = (
            NS + "CronSchedule",
            {"expression": args.cron, "timezone": args.timezone},
        )
    else:
        at_ms = int(time.time() * 1000) + args.in_seconds * 1000
        schedule = (NS + "AtSchedule", {"at_ms": at_ms})
    return {
        "command_id": uuid.uuid4().hex,  # unique per command: processors dedupe by it
        "task_id": task_id,
        "tenant": args.tenant,
        "kind": "CREATE",
        "issued_at_ms": int(time.time() * 1000),
        "issuer": args.issuer,
        "spec": {
            "name": args.name,
            "schedule": schedule,
            "target": (
                NS + "HttpTarget",
                {
                    "url": args.url,
                    "method": "POST",
                    "headers": {},
                    "body": None,
                    "timeout_ms": 10_000,
                },
            ),
            "retry": {"max_attempts": 3, "backoff_ms": 1_000, "max_backoff_ms": 60_000},
            "misfire": "FIRE_ONCE",
            "notify": None,
            "dedupe_key": None,
        },
        "retry": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="tasks.commands")
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--issuer", default="billing-service")
    parser.add_argument("--name", default="from-another-service")
    parser.add_argument("--url", required=True)
    parser.add_argument("--cron", help="5 fields, or 6 with seconds first")
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--in-seconds", type=int, default=60, help="one-time task: fire in N s")
    args = parser.parse_args()

    schema = fastavro.parse_schema(json.loads(args.schema.read_text()))
    task_id = f"{args.tenant}.{uuid.uuid4().hex}"
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, command_record(args, task_id))

    producer = Producer(
        {"bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True}
    )
    producer.produce(
        args.topic,
        value=buffer.getvalue(),
        key=task_id.encode("utf-8"),
        headers=[("kw-schema", b"TaskCommand")],
    )
    if producer.flush(30) != 0:
        raise SystemExit("the broker did not acknowledge the command")
    print(task_id)


if __name__ == "__main__":
    main()
