"""The REST API and web page (aiohttp), on one port.

Walking-skeleton scope: create a task, read it and its executions, health.
The rest of the contract's calls, tenants, audit and the live page come with
the API issue.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from streams.api.views import execution_view, task_view
from streams.config import Settings, producer_config
from streams.core.clock import Clock, SystemClock
from streams.core.errors import ValidationError
from streams.core.ids import is_valid_task_id
from streams.core.model import Limits, parse_task_spec
from streams.core.render import spec_to_json
from streams.core.schedule import first_fire_ms
from streams.history import open_history_store
from streams.ingest import CommandPublisher, create_command
from streams.kafka_io import AsyncProducer
from streams.ports import HistoryStore, TaskRow

log = logging.getLogger(__name__)

DEFAULT_TENANT = "default"
MAX_BODY_BYTES = 1024 * 1024
UNAUTHENTICATED = frozenset({"/healthz", "/"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STORE = web.AppKey("store", HistoryStore)
PUBLISHER = web.AppKey("publisher", CommandPublisher)
SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
LIMITS = web.AppKey("limits", Limits)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    return json_response({"error": {"code": code, "message": message, "field": field}}, status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ValidationError as exc:
        return error_response(400, exc.code, exc.message, exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status, "http_error"
        )
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the server log")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in UNAUTHENTICATED:
        return await handler(request)
    expected = request.app[SETTINGS].api_token
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if (
        not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.strip().encode(), expected.encode())
    ):
        return error_response(401, "unauthorized", "a valid Bearer token is required")
    return await handler(request)


async def create_task(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"is not valid JSON: {exc}", "invalid_json") from None
    now_ms = request.app[CLOCK].now_ms()
    spec = parse_task_spec(body, now_ms, request.app[LIMITS])
    command = create_command(spec, tenant=DEFAULT_TENANT, issuer="admin", now_ms=now_ms)
    await request.app[PUBLISHER].publish(command)
    row = TaskRow(
        task_id=command.task_id,
        tenant=command.tenant,
        name=spec.name,
        spec=spec_to_json(spec),
        status="SCHEDULED",
        next_fire_ms=first_fire_ms(spec.schedule, now_ms),
        created_at_ms=now_ms,
        updated_at_ms=now_ms,
    )
    await asyncio.to_thread(request.app[STORE].upsert_task, row)
    return json_response(task_view(row), status=202)


async def _task_row(request: web.Request) -> TaskRow:
    task_id = request.match_info["task_id"]
    row = None
    if is_valid_task_id(task_id):
        row = await asyncio.to_thread(request.app[STORE].get_task, task_id)
    if row is None:
        raise web.HTTPNotFound(reason=f"no task {task_id!r}")
    return row


async def get_task(request: web.Request) -> web.Response:
    return json_response(task_view(await _task_row(request)))


async def list_executions(request: web.Request) -> web.Response:
    row = await _task_row(request)
    results = await asyncio.to_thread(request.app[STORE].executions, row.task_id, 100)
    return json_response({"executions": [execution_view(r) for r in results]})


async def healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def index(_request: web.Request) -> web.Response:
    page = resources.files("streams.api").joinpath("static/index.html").read_bytes()
    return web.Response(body=page, content_type="text/html")


def build_app(
    settings: Settings,
    store: HistoryStore,
    publisher: CommandPublisher,
    clock: Clock | None = None,
    limits: Limits | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[errors_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[SETTINGS] = settings
    app[STORE] = store
    app[PUBLISHER] = publisher
    app[CLOCK] = clock or SystemClock()
    app[LIMITS] = limits or Limits()
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/tasks", create_task)
    app.router.add_get("/v1/tasks/{task_id}", get_task)
    app.router.add_get("/v1/tasks/{task_id}/executions", list_executions)
    return app


def run_api(settings: Settings) -> None:
    if not settings.api_token:
        raise SystemExit("KRONWHEEL_API_TOKEN must be set: the API refuses to run without a token")

    async def main() -> None:
        store = open_history_store(settings)
        producer = AsyncProducer(producer_config(settings, "api"))
        app = build_app(settings, store, CommandPublisher(settings, producer))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.api_host, settings.api_port)
        await site.start()
        log.info("API listening on http://%s:%s", settings.api_host, settings.api_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            producer.close()
            store.close()

    asyncio.run(main())
