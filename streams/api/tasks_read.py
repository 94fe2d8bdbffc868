"""Reads: the caller's tasks from the read model, executions from the history store.

A task of another tenant is a 404, exactly like a task that does not exist, so
no call reveals whether another tenant's task id is in use.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from aiohttp import web

from streams.api.auth import principal_of, store_of
from streams.api.errors import ApiError, json_response
from streams.api.keys import CLOCK, HISTORY, LIMITS
from streams.api.params import decode_cursor, encode_cursor, path_task_id, query_bool, query_int
from streams.api.views import audit_view, execution_view, task_view
from streams.core.errors import ValidationError
from streams.core.jitter import jittered_ms
from streams.core.model import parse_jitter, parse_schedule
from streams.core.projection import SHOWN_STATUSES, ShownStatus
from streams.core.timefmt import format_rfc3339_ms
from streams.core.upcoming import upcoming_fire_ms
from streams.ports import TaskQuery, TaskRecord

MAX_PAGE = 500
MAX_UPCOMING = 100
MAX_EXECUTIONS = 1_000
# A stored spec was valid when accepted; its `at` may be long past by now.
NO_PAST_LIMIT = 2**62


async def _task(request: web.Request) -> TaskRecord:
    task_id = path_task_id(request)
    record = None
    if task_id is not None:
        record = await asyncio.to_thread(
            store_of(request).get_task, principal_of(request).tenant, task_id
        )
    if record is None:
        raise ApiError.not_found(f"task {request.match_info['task_id']!r}")
    return record


async def list_tasks(request: web.Request) -> web.Response:
    statuses = frozenset(s for s in request.query.get("status", "").lower().split(",") if s)
    unknown = statuses - set(SHOWN_STATUSES)
    if unknown:
        raise ValidationError(
            "status", f"must be among {', '.join(SHOWN_STATUSES)} (comma-separated)", "invalid"
        )
    text = request.query.get("name") or None
    if text is not None and len(text) > 200:
        raise ValidationError("name", "is longer than 200 characters", "too_long")
    limit = query_int(request, "limit", 50, 1, MAX_PAGE)
    cursor = request.query.get("cursor")
    query = TaskQuery(
        tenant=principal_of(request).tenant,
        statuses=statuses,
        text=text,
        limit=limit + 1,
        before=decode_cursor(cursor) if cursor else None,
    )
    rows = await asyncio.to_thread(store_of(request).list_tasks, query)
    page = rows[:limit]
    next_cursor = (
        encode_cursor(page[-1].created_at_ms, page[-1].task_id) if len(rows) > limit else None
    )
    return json_response({"tasks": [task_view(r) for r in page], "next_cursor": next_cursor})


async def get_task(request: web.Request) -> web.Response:
    record = await _task(request)
    view = task_view(record)
    if query_bool(request, "audit"):
        entries = await asyncio.to_thread(
            store_of(request).audit, record.tenant, record.task_id, 500
        )
        view["audit"] = [audit_view(e) for e in entries]
    return json_response(view)


async def task_audit(request: web.Request) -> web.Response:
    record = await _task(request)
    limit = query_int(request, "limit", 100, 1, 1_000)
    entries = await asyncio.to_thread(store_of(request).audit, record.tenant, record.task_id, limit)
    return json_response({"audit": [audit_view(e) for e in entries]})


async def list_executions(request: web.Request) -> web.Response:
    record = await _task(request)
    limit = query_int(request, "limit", 100, 1, MAX_EXECUTIONS)
    results = await asyncio.to_thread(request.app[HISTORY].executions, record.task_id, limit)
    # The history is keyed by task id alone: keep only what the caller's tenant owns.
    mine = [r for r in results if r.tenant == record.tenant]
    return json_response({"executions": [execution_view(r) for r in mine]})


async def upcoming(request: web.Request) -> web.Response:
    record = await _task(request)
    n = query_int(request, "n", 5, 1, MAX_UPCOMING)
    times: list[int] = []
    jitter_ms = parse_jitter(record.spec["schedule"])
    if record.status in (ShownStatus.SCHEDULED, ShownStatus.PAUSED):
        now_ms = request.app[CLOCK].now_ms()
        limits = replace(request.app[LIMITS], past_grace_ms=NO_PAST_LIMIT)
        schedule = parse_schedule(record.spec["schedule"], now_ms, limits)
        first = record.next_fire_ms if record.status == ShownStatus.SCHEDULED else None
        times = upcoming_fire_ms(schedule, now_ms, n, first)
    # fire_times are the nominal runs (what each callback names); due_times when
    # each will fire, after its schedule.jitter_ms offset (the same without jitter).
    due = [jittered_ms(record.task_id, t, jitter_ms) for t in times]
    return json_response(
        {
            "task_id": record.task_id,
            "jitter_ms": jitter_ms,
            "fire_times": [format_rfc3339_ms(t) for t in times],
            "due_times": [format_rfc3339_ms(t) for t in due],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/tasks", list_tasks)
    app.router.add_get("/v1/tasks/{task_id}", get_task)
    app.router.add_get("/v1/tasks/{task_id}/audit", task_audit)
    app.router.add_get("/v1/tasks/{task_id}/executions", list_executions)
    app.router.add_get("/v1/tasks/{task_id}/upcoming", upcoming)
