"""Avro (fastavro, schemaless binary) for every topic value, parsed once per process.

Values are plain Avro binary without a schema-registry header; the schema files
in ``schemas/`` are the reference other services write and read with. Schemas
evolve only compatibly (new fields have defaults), so a reader can always use
the newest file.
"""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from typing import Any

import fastavro

from streams.core.errors import MalformedEvent

SCHEMA_FILES = {
    "TaskCommand": "task_command.avsc",
    "TaskState": "task_state.avsc",
    "DueTask": "due_task.avsc",
    "ExecutionResult": "execution_result.avsc",
    "DeadLetter": "dead_letter.avsc",
}


def load_schema_json(name: str) -> dict[str, Any]:
    text = resources.files("streams.schemas").joinpath(SCHEMA_FILES[name]).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


class AvroCodec:
    """Encode and decode one record type. Thread-safe; holds only the parsed schema."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._schema = fastavro.parse_schema(load_schema_json(name))

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._schema, record)
        return buffer.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode, raising MalformedEvent (never a bare fastavro error) on bad bytes."""
        buffer = io.BytesIO(data)
        try:
            record = fastavro.schemaless_reader(
                buffer,
                self._schema,
                None,
                return_record_name=True,
                return_record_name_override=True,
            )
        except Exception as exc:  # fastavro raises many kinds on garbage input
            raise MalformedEvent(f"not a valid {self.name}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(record, dict):
            raise MalformedEvent(f"not a valid {self.name}: not a record")
        if buffer.tell() != len(data):
            raise MalformedEvent(
                f"not a valid {self.name}: {len(data) - buffer.tell()} trailing bytes"
            )
        return record


@cache
def codec(name: str) -> AvroCodec:
    """The process-wide codec for a record type (schemas are parsed once)."""
    return AvroCodec(name)
