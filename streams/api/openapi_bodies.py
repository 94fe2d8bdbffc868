"""The component schemas of the OpenAPI document: the bodies the REST API
reads and writes (tasks, executions, audit entries, errors, tokens).

The paths that use them are in :mod:`streams.api.openapi`. Enumerated values
come from the core's enums, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from streams.core.jitter import MAX_JITTER_MS
from streams.core.model import Misfire, Outcome
from streams.core.projection import SHOWN_STATUSES

STRING = {"type": "string"}
INSTANT = {"type": "string", "format": "date-time"}
# Each run fires this much after its nominal time at most (a deterministic offset);
# shorter than the schedule's period.
JITTER = {"type": "integer", "minimum": 0, "maximum": MAX_JITTER_MS}


def ref(name: str) -> dict[str, str]:
    """A reference to one of the SCHEMAS below."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "properties": {"code": STRING, "message": STRING, "field": nullable(STRING)},
            }
        },
    },
    "Schedule": {
        "oneOf": [
            {
                "type": "object",
                "required": ["at"],
                "additionalProperties": False,
                "properties": {"at": INSTANT, "jitter_ms": JITTER},
            },
            {
                "type": "object",
                "required": ["cron"],
                "additionalProperties": False,
                "properties": {"cron": STRING, "timezone": STRING, "jitter_ms": JITTER},
            },
            {
                "type": "object",
                "required": ["every_ms"],
                "additionalProperties": False,
                "properties": {
                    "every_ms": {"type": "integer", "minimum": 1000},
                    "start": nullable(INSTANT),
                    "end": nullable(INSTANT),
                    "jitter_ms": JITTER,
                },
            },
        ]
    },
    "Target": {
        "oneOf": [
            {
                "type": "object",
                "required": ["http"],
                "additionalProperties": False,
                "properties": {
                    "http": {
                        "type": "object",
                        "required": ["url"],
                        "additionalProperties": False,
                        "properties": {
                            "url": {"type": "string", "format": "uri"},
                            "method": {
                                "type": "string",
                                "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
                            },
                            "headers": {"type": "object", "additionalProperties": STRING},
                            "body": nullable(STRING),
                            "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 60000},
                        },
                    }
                },
            },
            {
                "type": "object",
                "required": ["kafka"],
                "additionalProperties": False,
                "properties": {
                    "kafka": {
                        "type": "object",
                        "required": ["topic"],
                        "additionalProperties": False,
                        "properties": {
                            "topic": STRING,
                            "key": nullable(STRING),
                            "value": nullable(STRING),
                        },
                    }
                },
            },
        ]
    },
    "Retry": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
            "backoff_ms": {"type": "integer", "minimum": 10},
            "max_backoff_ms": {"type": "integer", "minimum": 10},
        },
    },
    "Notify": {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "on": {
                "type": "array",
                "items": {"type": "string", "enum": [o.value for o in Outcome]},
            },
        },
    },
    "TaskInput": {
        "type": "object",
        "required": ["schedule", "target"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "schedule": ref("Schedule"),
            "target": ref("Target"),
            "retry": ref("Retry"),
            "misfire": {"type": "string", "enum": [m.value for m in Misfire]},
            "notify": ref("Notify"),
            "dedupe_key": {"type": "string", "maxLength": 200},
        },
    },
    "TaskPatch": {
        "type": "object",
        "description": "JSON merge patch of the task; schedule and target are replaced whole.",
        "additionalProperties": False,
        "properties": {
            "name": nullable({"type": "string", "maxLength": 200}),
            "schedule": ref("Schedule"),
            "target": ref("Target"),
            "retry": ref("Retry"),
            "misfire": {"type": "string", "enum": [m.value for m in Misfire]},
            "notify": ref("Notify"),
        },
    },
    "Task": {
        "type": "object",
        "required": [
            "id",
            "tenant",
            "name",
            "schedule",
            "target",
            "status",
            "next_fire_at",
            "fire_count",
            "created_at",
            "updated_at",
            "last_outcome",
        ],
        "properties": {
            "id": STRING,
            "tenant": STRING,
            "name": STRING,
            "schedule": {"type": "object"},
            "target": {"type": "object"},
            "retry": {"type": "object"},
            "misfire": STRING,
            "notify": {"type": "object"},
            "dedupe_key": STRING,
            "status": {"type": "string", "enum": list(SHOWN_STATUSES)},
            "next_fire_at": nullable(INSTANT),
            "fire_count": {"type": "integer"},
            "created_at": INSTANT,
            "updated_at": INSTANT,
            "last_outcome": nullable(
                {
                    "type": "object",
                    "properties": {
                        "fire_id": nullable(STRING),
                        "outcome": STRING,
                        "finished_at": nullable(INSTANT),
                    },
                }
            ),
            "audit": {"type": "array", "items": ref("AuditEntry")},
        },
    },
    "TaskList": {
        "type": "object",
        "required": ["tasks", "next_cursor"],
        "properties": {
            "tasks": {"type": "array", "items": ref("Task")},
            "next_cursor": nullable(STRING),
        },
    },
    "Batch": {
        "type": "object",
        "required": ["tasks"],
        "additionalProperties": False,
        "properties": {
            "tasks": {"type": "array", "minItems": 1, "maxItems": 1000, "items": ref("TaskInput")}
        },
    },
    "BatchResult": {
        "type": "object",
        "required": ["tasks"],
        "properties": {"tasks": {"type": "array", "items": ref("Task")}},
    },
    "Execution": {
        "type": "object",
        "required": [
            "fire_id",
            "task_id",
            "scheduled_at",
            "attempt",
            "outcome",
            "final",
            "started_at",
            "finished_at",
            "lateness_ms",
            "duration_ms",
        ],
        "properties": {
            "fire_id": STRING,
            "task_id": STRING,
            "scheduled_at": INSTANT,
            "attempt": {"type": "integer"},
            "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
            "final": {"type": "boolean"},
            "started_at": INSTANT,
            "finished_at": INSTANT,
            "lateness_ms": {"type": "integer"},
            "duration_ms": {"type": "integer"},
            "http_status": nullable({"type": "integer"}),
            "error": nullable(STRING),
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": ["command_id", "kind", "issuer", "issued_at", "changes"],
        "properties": {
            "command_id": STRING,
            "kind": STRING,
            "issuer": STRING,
            "issued_at": INSTANT,
            "changes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field"],
                    "properties": {"field": STRING, "from": {}, "to": {}},
                },
            },
        },
    },
    "PreviewInput": {
        "type": "object",
        "required": ["schedule"],
        "additionalProperties": False,
        "properties": {
            "schedule": ref("Schedule"),
            "n": {"type": "integer", "minimum": 1, "maximum": 20},
        },
    },
    "Preview": {
        "type": "object",
        "required": ["timezone", "fire_times"],
        "properties": {
            "timezone": STRING,
            "fire_times": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["at", "local"],
                    "properties": {"at": INSTANT, "local": STRING},
                },
            },
        },
    },
    "TokenInput": {
        "type": "object",
        "required": ["tenant"],
        "additionalProperties": False,
        "properties": {
            "tenant": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"},
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
        },
    },
    "Token": {
        "type": "object",
        "required": ["token", "tenant", "name", "created_at"],
        "properties": {"token": STRING, "tenant": STRING, "name": STRING, "created_at": INSTANT},
    },
}
