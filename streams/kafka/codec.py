"""Avro (fastavro, schemaless binary) for every topic value, parsed once per process.

Values are plain Avro binary without a schema-registry header; the schema files
in ``schemas/`` are the reference other services write and read with. Schemas
evolve only compatibly: a new field has a default and goes at the END of a
topic's top-level record. A record written before the field existed is then
exactly a prefix of today's encoding, so it is told apart without a writer
schema id: decoded with today's schema it runs out of bytes, and decoded as
written by the older schema (today's minus its last fields) with today's as the
reader, Avro schema resolution fills in the defaults. Exactly one of those
readings uses up every byte, so a record is never read two ways.
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

# Top-level fields added after a record type's first version, oldest first; each
# has a default and they are the record's last fields (see the module doc). A
# record that stops before one of them was written by an older version.
ADDED_FIELDS: dict[str, tuple[str, ...]] = {
    "TaskCommand": ("jitter_ms",),
    "TaskState": ("pending_retries", "recent_command_ids", "jitter_ms"),
    "DueTask": ("reason", "jitter_ms"),
}


def load_schema_json(name: str) -> dict[str, Any]:
    text = resources.files("streams.schemas").joinpath(SCHEMA_FILES[name]).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


class AvroCodec:
    """Encode and decode one record type. Thread-safe; holds only the parsed schema."""

    def __init__(self, name: str) -> None:
        self.name = name
        schema = load_schema_json(name)
        self._schema = fastavro.parse_schema(schema)
        # The writers of older records: today's schema without the last 1, 2, ...
        # of the fields added since the first version.
        fields = schema["fields"]
        added = ADDED_FIELDS.get(name, ())
        newer = fields[len(fields) - len(added) :]
        if tuple(f["name"] for f in newer) != added or not all("default" in f for f in newer):
            raise ValueError(f"{name}: the fields added later, {added}, must come last")
        self._older_writers = [
            fastavro.parse_schema({**schema, "fields": schema["fields"][:-dropped]})
            for dropped in range(1, len(added) + 1)
        ]

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._schema, record)
        return buffer.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode, raising MalformedEvent (never a bare fastavro error) on bad bytes;
        a record an older schema wrote gets today's defaults for the newer fields."""
        try:
            return self._decode(data, self._schema, None)
        except MalformedEvent as today:
            for writer in self._older_writers:
                try:
                    return self._decode(data, writer, self._schema)
                except MalformedEvent:
                    continue
            raise today from today.__cause__

    def _decode(self, data: bytes, writer: Any, reader: Any) -> dict[str, Any]:
        buffer = io.BytesIO(data)
        try:
            record = fastavro.schemaless_reader(
                buffer,
                writer,
                reader,
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
