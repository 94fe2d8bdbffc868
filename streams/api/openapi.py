"""The OpenAPI 3 document of the REST API, served at /openapi.json: its paths
and operations here, the bodies' schemas in :mod:`streams.api.openapi_bodies`.

Written by hand next to the handlers and checked against them by the
schemathesis run in tests/integration/test_api_schema.py: that test calls every
operation with generated input and fails on any 5xx or any answer that breaks
this document.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.api.errors import json_response
from streams.api.openapi_bodies import INSTANT, SCHEMAS, STRING, ref
from streams.core.projection import SHOWN_STATUSES

JSON = "application/json"


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
    return {str(s): _json(ref("Error"), text[s]) for s in statuses}


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


def _task_operation(
    operation_id: str, summary: str, ok: str, *, body: str | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [TASK_ID, *WAIT],
        "responses": {
            "202": {**_json(ref("Task"), ok), "headers": COMMAND_HEADERS},
            **_errors(400, 401, 404, 409, 413),
        },
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
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
                "content": {JSON: {"schema": ref("TaskInput"), "example": TASK_EXAMPLE}},
            },
            "responses": {
                "200": _json(ref("Task"), "a task with this dedupe_key exists already"),
                "202": {
                    **_json(ref("Task"), "accepted"),
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
            "responses": {"200": _json(ref("TaskList"), "a page"), **_errors(400, 401)},
        },
    },
    "/v1/tasks:batch": {
        "post": {
            "summary": "Create up to 1,000 tasks in one call (all valid, or none created)",
            "parameters": WAIT,
            "requestBody": {"required": True, "content": {JSON: {"schema": ref("Batch")}}},
            "responses": {
                "202": {
                    **_json(ref("BatchResult"), "accepted"),
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
            ref("Task"),
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
            "properties": {"executions": {"type": "array", "items": ref("Execution")}},
        },
        [_limit(100, 1000)],
    ),
    "/v1/tasks/{task_id}/audit": _get(
        "taskAudit",
        "Audit trail: who issued which command, when, and what changed",
        {
            "type": "object",
            "required": ["audit"],
            "properties": {"audit": {"type": "array", "items": ref("AuditEntry")}},
        },
        [_limit(100, 1000)],
    ),
    "/v1/tasks/{task_id}/upcoming": _get(
        "taskUpcoming",
        "The next n fire times: nominal (fire_times) and after jitter (due_times)",
        {
            "type": "object",
            "required": ["task_id", "jitter_ms", "fire_times", "due_times"],
            "properties": {
                "task_id": STRING,
                "jitter_ms": {"type": "integer", "minimum": 0},
                "fire_times": {"type": "array", "items": INSTANT},
                "due_times": {"type": "array", "items": INSTANT},
            },
        },
        [{"name": "n", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
    ),
    "/v1/schedules:preview": {
        "post": {
            "summary": "The next n fire times of a schedule (the web form's cron preview)",
            "requestBody": {"required": True, "content": {JSON: {"schema": ref("PreviewInput")}}},
            "responses": {"200": _json(ref("Preview"), "fire times"), **_errors(400, 401, 413)},
        }
    },
    "/v1/tokens": {
        "post": {
            "summary": "Create a token for a tenant (admin token only); shown once",
            "requestBody": {"required": True, "content": {JSON: {"schema": ref("TokenInput")}}},
            "responses": {"201": _json(ref("Token"), "created"), **_errors(400, 401, 403, 413)},
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
