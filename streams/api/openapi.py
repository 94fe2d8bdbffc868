"""The OpenAPI 3 document of the REST API, served at /openapi.json.

Written by hand next to the handlers and checked against them by the
schemathesis run in tests/integration/test_api_schema.py: that test calls every
operation with generated input and fails on any 5xx or any answer that breaks
this document.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.api.errors import json_response
from streams.core.model import Misfire, Outcome
from streams.core.projection import SHOWN_STATUSES

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "invalid input; `field` names it",
        401: "no valid Bearer token",
        403: "not allowed for this token",
        404: "no such task (or another tenant's)",
        409: "the task has ended, or (with wait) the scheduler refused the command",
        413: "body too large",
    }
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


STRING = {"type": "string"}
INSTANT = {"type": "string", "format": "date-time"}
TASK_ID = {
    "name": "task_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
}
WAIT = [
    {
        "name": "wait",
        "in": "query",
        "schema": {"type": "boolean"},
        "description": "answer after the read model shows the command's effect (max 5 s)",
    },
    {
        "name": "wait_ms",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": 10000},
    },
]
COMMAND_HEADERS = {
    "Kronwheel-Command-Id": {"schema": STRING},
    "Kronwheel-Applied": {"schema": {"type": "string", "enum": ["true", "false"]}},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "properties": {"code": STRING, "message": STRING, "field": _nullable(STRING)},
            }
        },
    },
    "Schedule": {
        "oneOf": [
            {
                "type": "object",
                "required": ["at"],
                "additionalProperties": False,
                "properties": {"at": INSTANT},
            },
            {
                "type": "object",
                "required": ["cron"],
                "additionalProperties": False,
                "properties": {"cron": STRING, "timezone": STRING},
            },
            {
                "type": "object",
                "required": ["every_ms"],
                "additionalProperties": False,
                "properties": {
                    "every_ms": {"type": "integer", "minimum": 1000},
                    "start": _nullable(INSTANT),
                    "end": _nullable(INSTANT),
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
                            "body": _nullable(STRING),
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
                            "key": _nullable(STRING),
                            "value": _nullable(STRING),
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
            "schedule": _ref("Schedule"),
            "target": _ref("Target"),
            "retry": _ref("Retry"),
            "misfire": {"type": "string", "enum": [m.value for m in Misfire]},
            "notify": _ref("Notify"),
            "dedupe_key": {"type": "string", "maxLength": 200},
        },
    },
    "TaskPatch": {
        "type": "object",
        "description": "JSON merge patch of the task; schedule and target are replaced whole.",
        "additionalProperties": False,
        "properties": {
            "name": _nullable({"type": "string", "maxLength": 200}),
            "schedule": _ref("Schedule"),
            "target": _ref("Target"),
            "retry": _ref("Retry"),
            "misfire": {"type": "string", "enum": [m.value for m in Misfire]},
            "notify": _ref("Notify"),
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
            "next_fire_at": _nullable(INSTANT),
            "fire_count": {"type": "integer"},
            "created_at": INSTANT,
            "updated_at": INSTANT,
            "last_outcome": _nullable(
                {
                    "type": "object",
                    "properties": {
                        "fire_id": _nullable(STRING),
                        "outcome": STRING,
                        "finished_at": _nullable(INSTANT),
                    },
                }
            ),
            "audit": {"type": "array", "items": _ref("AuditEntry")},
        },
    },
    "TaskList": {
        "type": "object",
        "required": ["tasks", "next_cursor"],
        "properties": {
            "tasks": {"type": "array", "items": _ref("Task")},
            "next_cursor": _nullable(STRING),
        },
    },
    "Batch": {
        "type": "object",
        "required": ["tasks"],
        "additionalProperties": False,
        "properties": {
            "tasks": {"type": "array", "minItems": 1, "maxItems": 1000, "items": _ref("TaskInput")}
        },
    },
    "BatchResult": {
        "type": "object",
        "required": ["tasks"],
        "properties": {"tasks": {"type": "array", "items": _ref("Task")}},
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
            "http_status": _nullable({"type": "integer"}),
            "error": _nullable(STRING),
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
            "schedule": _ref("Schedule"),
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


def _task_operation(
    operation_id: str, summary: str, ok: str, *, body: str | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [TASK_ID, *WAIT],
        "responses": {
            "202": {**_json(_ref("Task"), ok), "headers": COMMAND_HEADERS},
            **_errors(400, 401, 404, 409, 413),
        },
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
    return operation


def _get(
    operation_id: str, summary: str, schema: dict[str, Any], params: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": [TASK_ID, *params],
            "responses": {"200": _json(schema, "found"), **_errors(400, 401, 404)},
        }
    }


def _limit(default: int, maximum: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
    }


PUBLIC: list[dict[str, Any]] = []
TASK_EXAMPLE = {
    "name": "nightly-report",
    "schedule": {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"},
    "target": {"http": {"url": "https://example.com/hook", "method": "POST"}},
    "retry": {"max_attempts": 3},
}

# Links from a created task to the calls on it, so generated test sequences (and
# readers) see which id goes where. Reads may 404 for the read-after-write lag.
TASK_LINKS = {
    name: {"operationId": operation, "parameters": {"task_id": "$response.body#/id"}}
    for name, operation in (
        ("GetTask", "getTask"),
        ("UpdateTask", "updateTask"),
        ("CancelTask", "cancelTask"),
        ("PauseTask", "pauseTask"),
        ("ResumeTask", "resumeTask"),
        ("TriggerTask", "triggerTask"),
        ("TaskExecutions", "taskExecutions"),
        ("TaskUpcoming", "taskUpcoming"),
        ("TaskAudit", "taskAudit"),
    )
}

PATHS: dict[str, Any] = {
    "/v1/tasks": {
        "post": {
            "summary": "Create a task (202: accepted; see wait for read-after-write)",
            "parameters": WAIT,
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref("TaskInput"), "example": TASK_EXAMPLE}},
            },
            "responses": {
                "200": _json(_ref("Task"), "a task with this dedupe_key exists already"),
                "202": {
                    **_json(_ref("Task"), "accepted"),
                    "headers": COMMAND_HEADERS,
                    "links": TASK_LINKS,
                },
                **_errors(400, 401, 409, 413),
            },
        },
        "get": {
            "summary": "List the caller's tasks, newest first, with cursor paging",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "description": "comma-separated: " + ", ".join(SHOWN_STATUSES),
                    "schema": STRING,
                },
                {
                    "name": "name",
                    "in": "query",
                    "description": "substring of name or id",
                    "schema": STRING,
                },
                _limit(50, 500),
                {"name": "cursor", "in": "query", "schema": STRING},
            ],
            "responses": {"200": _json(_ref("TaskList"), "a page"), **_errors(400, 401)},
        },
    },
    "/v1/tasks:batch": {
        "post": {
            "summary": "Create up to 1,000 tasks in one call (all valid, or none created)",
            "parameters": WAIT,
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Batch")}}},
            "responses": {
                "202": {
                    **_json(_ref("BatchResult"), "accepted"),
                    "headers": {"Kronwheel-Applied": COMMAND_HEADERS["Kronwheel-Applied"]},
                },
                **_errors(400, 401, 413),
            },
        }
    },
    "/v1/tasks/{task_id}": {
        **_get(
            "getTask",
            "One task: status, schedule, next fire time, last outcome (and audit=true)",
            _ref("Task"),
            [{"name": "audit", "in": "query", "schema": {"type": "boolean"}}],
        ),
        "patch": _task_operation(
            "updateTask", "Update or reschedule", "update accepted", body="TaskPatch"
        ),
        "delete": _task_operation("cancelTask", "Cancel", "cancel accepted"),
    },
    "/v1/tasks/{task_id}/trigger": {
        "post": _task_operation("triggerTask", "Run now", "trigger accepted")
    },
    "/v1/tasks/{task_id}/pause": {"post": _task_operation("pauseTask", "Pause", "pause accepted")},
    "/v1/tasks/{task_id}/resume": {
        "post": _task_operation("resumeTask", "Resume", "resume accepted")
    },
    "/v1/tasks/{task_id}/executions": _get(
        "taskExecutions",
        "Execution history, newest first",
        {
            "type": "object",
            "required": ["executions"],
            "properties": {"executions": {"type": "array", "items": _ref("Execution")}},
        },
        [_limit(100, 1000)],
    ),
    "/v1/tasks/{task_id}/audit": _get(
        "taskAudit",
        "Audit trail: who issued which command, when, and what changed",
        {
            "type": "object",
            "required": ["audit"],
            "properties": {"audit": {"type": "array", "items": _ref("AuditEntry")}},
        },
        [_limit(100, 1000)],
    ),
    "/v1/tasks/{task_id}/upcoming": _get(
        "taskUpcoming",
        "The next n fire times",
        {
            "type": "object",
            "required": ["task_id", "fire_times"],
            "properties": {
                "task_id": STRING,
                "fire_times": {"type": "array", "items": INSTANT},
            },
        },
        [{"name": "n", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
    ),
    "/v1/schedules:preview": {
        "post": {
            "summary": "The next n fire times of a schedule (the web form's cron preview)",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("PreviewInput")}}},
            "responses": {"200": _json(_ref("Preview"), "fire times"), **_errors(400, 401, 413)},
        }
    },
    "/v1/tokens": {
        "post": {
            "summary": "Create a token for a tenant (admin token only); shown once",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("TokenInput")}}},
            "responses": {"201": _json(_ref("Token"), "created"), **_errors(400, 401, 403, 413)},
        }
    },
    "/v1/whoami": {
        "get": {
            "summary": "The caller's tenant and token name",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["tenant", "name", "admin"],
                        "properties": {
                            "tenant": STRING,
                            "name": STRING,
                            "admin": {"type": "boolean"},
                        },
                    },
                    "the caller",
                ),
                **_errors(401),
            },
        }
    },
    "/v1/stream": {
        "get": {
            "summary": "WebSocket of the caller's tenant's live task, execution and command "
            "events (token in Authorization, or as subprotocol bearer.<token> beside kronwheel)",
            "responses": {
                "101": {"description": "switching to WebSocket"},
                **_errors(400, 401),
            },
        }
    },
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "security": PUBLIC,
            "responses": {"200": _json({"type": "object"}, "alive")},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: broker reachable, projector assigned and caught up",
            "security": PUBLIC,
            "responses": {
                "200": _json({"type": "object"}, "ready"),
                "503": _json({"type": "object"}, "not ready, with the reason"),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "security": PUBLIC,
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3"), **_errors(401)},
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "kronwheel",
        "version": "1",
        "description": "Distributed task scheduler. Writes are commands on tasks.commands "
        "(202); reads come from a read model kept from the topics, a short moment behind.",
    },
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": SCHEMAS,
    },
    "paths": PATHS,
}


def document() -> dict[str, Any]:
    return DOCUMENT


async def openapi_json(_request: web.Request) -> web.Response:
    return json_response(DOCUMENT)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)
