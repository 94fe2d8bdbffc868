"""Writes: every change to a task is a TaskCommand on tasks.commands, answered 202.

Handlers never write the read model; the projector does, from the topics. A
client that must read its own write asks ``?wait=true`` (or ``wait_ms``): the
answer then comes after the projector applied the command (bounded), with
``Kronwheel-Applied: true``, or at the bound with ``false``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from functools import lru_cache
from typing import Any

from aiohttp import web

from streams.api.auth import principal_of, store_of
from streams.api.errors import ApiError, json_response
from streams.api.failfast import published
from streams.api.keys import CLOCK, HUB, LIMITS, PUBLISHER, SETTINGS
from streams.api.params import json_body, object_fields, path_task_id, query_bool, query_int
from streams.api.views import accepted_record, task_view
from streams.core.errors import ValidationError
from streams.core.events import CommandKind, TaskCommand
from streams.core.model import HttpTarget, TaskSpec, parse_task_spec
from streams.core.netguard import (
    Allowlist,
    IPAddress,
    canonical_host,
    check_target,
    literal_address,
)
from streams.core.projection import ENDED_STATUSES
from streams.core.validation import Rules, validate_spec
from streams.ingest import create_command, task_command
from streams.metrics import API_COMMANDS
from streams.ports import TaskRecord

WAIT_DEFAULT_MS = 5_000
WAIT_MAX_MS = 10_000
MAX_BATCH = 1_000
LOCAL_NAMES = ("localhost", "localhost.localdomain")


@lru_cache(maxsize=8)
def _allowlist(entries: tuple[str, ...]) -> Allowlist:
    return Allowlist.parse(entries)


def _literal_addresses(host: str) -> list[IPAddress] | None:
    """The addresses a canonical host stands for without DNS, or None for a DNS name.

    DNS names are checked by the dispatcher at call time, with the addresses they
    resolve to then (a name resolved here could point elsewhere by then).
    """
    lowered = host.rstrip(".")
    if lowered in LOCAL_NAMES or lowered.endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    address = literal_address(lowered)
    return None if address is None else [address]


def check_addresses(spec: TaskSpec, request: web.Request) -> None:
    """Refuse, naming the field, targets the dispatcher would refuse anyway.

    Decided on the host as the HTTP client will see it (IDNA-normalised by
    yarl), so a host written in full-width digits is the loopback address it becomes.
    """
    entries = request.app[SETTINGS].target_allowlist
    urls: list[tuple[str, str]] = []
    if isinstance(spec.target, HttpTarget):
        urls.append(("target.http.url", spec.target.url))
    if spec.notify is not None:
        urls.append(("notify.url", spec.notify.url))
    for field, url in urls:
        reason = _refusal(url, entries)
        if reason:
            raise ValidationError(field, reason, "refused_target")


# Batches repeat their targets: parsing the URL and its address was 15 % of the
# API's own time under batch creates. Both are pure functions of the URL and the
# allowlist, so the answer is kept per pair (bounded).
@lru_cache(maxsize=4096)
def _refusal(url: str, entries: tuple[str, ...]) -> str | None:
    host = canonical_host(url)
    addresses = _literal_addresses(host)
    if addresses is None:
        return None
    return check_target(host, addresses, _allowlist(entries))


def rules_of(request: web.Request) -> Rules:
    return Rules(request.app[LIMITS], request.app[SETTINGS].topic_prefix)


def validated_spec(body: Any, request: web.Request, now_ms: int, prefix: str = "") -> TaskSpec:
    """Parse, validate (the one validation every way in shares) and check addresses."""
    try:
        spec = parse_task_spec(body, now_ms, request.app[LIMITS])
        validate_spec(spec, now_ms, rules_of(request))
        check_addresses(spec, request)
    except ValidationError as exc:
        if not prefix:
            raise
        field = f"{prefix}.{exc.field}" if exc.field != "body" else prefix
        raise ValidationError(field, exc.message, exc.code) from None
    return spec


def wait_budget_ms(request: web.Request) -> int:
    if "wait_ms" in request.query:
        return query_int(request, "wait_ms", WAIT_DEFAULT_MS, 0, WAIT_MAX_MS)
    return WAIT_DEFAULT_MS if query_bool(request, "wait") else 0


async def publish(
    request: web.Request, commands: list[TaskCommand], wait_ms: int, *, one: bool = True
) -> bool:
    """Publish (acks=all) and, with a budget, wait for the projector. True if applied.

    A single command the processors refused (dead-lettered) is a 409 naming their
    reason; a batch with a refused command is only "not applied".
    """
    hub = request.app[HUB]
    expected = (
        [(c.task_id, hub.expect(c.task_id, c.command_id)) for c in commands] if wait_ms else []
    )
    try:
        await published(request.app[PUBLISHER].publish_many(commands))
        for command in commands:
            API_COMMANDS.labels(command.kind.value.lower()).inc()
        if not expected:
            return False
        futures = [future for _, future in expected]
        _done, pending = await asyncio.wait(futures, timeout=wait_ms / 1000)
        for future in futures:
            if future.done() and (reason := future.result()) is not None:
                if not one:
                    return False
                raise ApiError(409, "rejected", f"the scheduler refused the command: {reason}")
        return not pending
    finally:
        for task_id, future in expected:
            hub.forget(task_id, future)


def _answer(
    record: TaskRecord, command: TaskCommand, applied: bool, status: int = 202
) -> web.Response:
    return json_response(
        task_view(record),
        status,
        headers={
            "Location": f"/v1/tasks/{record.task_id}",
            "Kronwheel-Command-Id": command.command_id,
            "Kronwheel-Applied": "true" if applied else "false",
        },
    )


async def create_task(request: web.Request) -> web.Response:
    principal = principal_of(request)
    now_ms = request.app[CLOCK].now_ms()
    spec = validated_spec(await json_body(request), request, now_ms)
    wait_ms = wait_budget_ms(request)
    command = create_command(spec, tenant=principal.tenant, issuer=principal.issuer, now_ms=now_ms)
    if spec.dedupe_key is not None:
        existing = await asyncio.to_thread(
            store_of(request).get_task, principal.tenant, command.task_id
        )
        if existing is not None:
            return _answer(existing, command, True, status=200)
    # The answer is computed before the publish: nothing published may end in a 500.
    accepted = accepted_record(command, now_ms)
    applied = await publish(request, [command], wait_ms)
    shown = await _current(request, command.task_id) if applied else None
    return _answer(shown or accepted, command, applied)


async def create_batch(request: web.Request) -> web.Response:
    principal = principal_of(request)
    now_ms = request.app[CLOCK].now_ms()
    items = object_fields(await json_body(request), {"tasks"}).get("tasks")
    if not isinstance(items, list) or not items:
        raise ValidationError("tasks", "must be a non-empty list of tasks", "wrong_type")
    if len(items) > MAX_BATCH:
        raise ValidationError("tasks", f"may hold at most {MAX_BATCH} tasks", "too_many")
    commands = [
        create_command(
            validated_spec(item, request, now_ms, f"tasks[{i}]"),
            tenant=principal.tenant,
            issuer=principal.issuer,
            now_ms=now_ms,
        )
        for i, item in enumerate(items)
    ]
    store = store_of(request)
    shown: dict[str, TaskRecord] = {}
    fresh: list[TaskCommand] = []
    for command in commands:
        assert command.spec is not None
        existing = (
            await asyncio.to_thread(store.get_task, principal.tenant, command.task_id)
            if command.spec.dedupe_key is not None
            else None
        )
        if existing is not None:
            shown[command.task_id] = existing
        elif command.task_id not in shown:  # the same dedupe key twice in one batch
            shown[command.task_id] = accepted_record(command, now_ms)
            fresh.append(command)
    applied = await publish(request, fresh, wait_budget_ms(request), one=False) if fresh else True
    if applied and fresh:
        for command in fresh:
            shown[command.task_id] = (
                await _current(request, command.task_id) or shown[command.task_id]
            )
    return json_response(
        {"tasks": [task_view(shown[c.task_id]) for c in commands]},
        202,
        headers={"Kronwheel-Applied": "true" if applied else "false"},
    )


async def _current(request: web.Request, task_id: str) -> TaskRecord | None:
    return await asyncio.to_thread(
        store_of(request).get_task, principal_of(request).tenant, task_id
    )


async def _live_task(request: web.Request) -> TaskRecord:
    """The caller's task from the path; 404 for a missing or another tenant's task."""
    task_id = path_task_id(request)
    record = await _current(request, task_id) if task_id else None
    if record is None:
        raise ApiError.not_found(f"task {request.match_info['task_id']!r}")
    if record.status in ENDED_STATUSES:
        raise ApiError(409, "task_ended", f"task {record.task_id} is {record.status}")
    return record


async def _command(
    request: web.Request,
    kind: CommandKind,
    spec: TaskSpec | None = None,
    record: TaskRecord | None = None,
) -> web.Response:
    record = record or await _live_task(request)
    principal = principal_of(request)
    command = task_command(
        kind,
        record.task_id,
        tenant=principal.tenant,
        issuer=principal.issuer,
        now_ms=request.app[CLOCK].now_ms(),
        spec=spec,
    )
    applied = await publish(request, [command], wait_budget_ms(request))
    shown = await _current(request, record.task_id) if applied else None
    return _answer(shown or record, command, applied)


def merge_patch(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """JSON merge patch (RFC 7396) on the spec, except that schedule and target are
    replaced whole: they are one-of objects, and a cron merged into an ``at`` is neither."""
    if not isinstance(patch, dict):
        raise ValidationError.wrong_type("body", "an object")
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif (
            isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and key
            not in (
                "schedule",
                "target",
            )
        ):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


async def update_task(request: web.Request) -> web.Response:
    record = await _live_task(request)
    patch = await json_body(request)
    merged = merge_patch(record.spec, patch)
    if merged.get("dedupe_key") != record.spec.get("dedupe_key"):
        raise ValidationError("dedupe_key", "cannot be changed", "immutable")
    spec = validated_spec(merged, request, request.app[CLOCK].now_ms())
    return await _command(request, CommandKind.UPDATE, spec, record)


async def cancel_task(request: web.Request) -> web.Response:
    return await _command(request, CommandKind.CANCEL)


async def trigger_task(request: web.Request) -> web.Response:
    return await _command(request, CommandKind.TRIGGER)


async def pause_task(request: web.Request) -> web.Response:
    return await _command(request, CommandKind.PAUSE)


async def resume_task(request: web.Request) -> web.Response:
    return await _command(request, CommandKind.RESUME)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/tasks", create_task)
    app.router.add_post("/v1/tasks:batch", create_batch)
    app.router.add_patch("/v1/tasks/{task_id}", update_task)
    app.router.add_delete("/v1/tasks/{task_id}", cancel_task)
    app.router.add_post("/v1/tasks/{task_id}/trigger", trigger_task)
    app.router.add_post("/v1/tasks/{task_id}/pause", pause_task)
    app.router.add_post("/v1/tasks/{task_id}/resume", resume_task)
