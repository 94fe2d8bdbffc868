"""The REST API and web page (aiohttp), on one port.

Routes live in small modules: tasks_write (commands), tasks_read (read model
and history), misc (schedule preview, tokens), stream (WebSocket), ops
(metrics, probes, static page) and openapi (the document). This module wires
them with the middlewares and runs the process: the app, the command
producer and the projector thread that keeps the read model.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from streams.api import misc, openapi, ops, stream, tasks_read, tasks_write
from streams.api.auth import TOKENS, TokenCache, auth_middleware
from streams.api.errors import Handler, errors_middleware
from streams.api.failfast import api_producer_config
from streams.api.keys import (
    CLOCK,
    HISTORY,
    HUB,
    LIMITS,
    PROJECTOR_STATUS,
    PUBLISHER,
    READ_MODEL,
    SETTINGS,
)
from streams.api.live import Hub
from streams.config import Settings
from streams.core.clock import Clock, SystemClock
from streams.core.model import Limits
from streams.ingest import CommandPublisher
from streams.kafka.clients import AsyncProducer
from streams.kafka.topics import STATE
from streams.metrics import API_REQUESTS
from streams.ops.durable import journal_from_env
from streams.ports import ExecutionHistory, ReadModel
from streams.views.history import open_execution_history
from streams.views.readmodel import open_read_model
from streams.views.readmodel.projector import Projector, ProjectorStatus
from streams.views.retention import keep_retention

log = logging.getLogger(__name__)

# Bodies above this are refused with 413 before they are read whole; a batch of
# 1,000 ordinary tasks is far below it, task payloads have their own 64 KiB limit.
MAX_BODY_BYTES = 2 * 1024 * 1024


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    route = request.match_info.route.resource
    API_REQUESTS.labels(
        request.method, route.canonical if route is not None else "unmatched", response.status
    ).inc()
    return response


def build_app(
    settings: Settings,
    read_model: ReadModel,
    history: ExecutionHistory,
    publisher: CommandPublisher,
    *,
    hub: Hub | None = None,
    projector_status: ProjectorStatus | None = None,
    clock: Clock | None = None,
    limits: Limits | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[metrics_middleware, errors_middleware, auth_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS] = settings
    app[READ_MODEL] = read_model
    app[HISTORY] = history
    app[PUBLISHER] = publisher
    app[HUB] = hub or Hub(read_model)
    app[PROJECTOR_STATUS] = projector_status or ProjectorStatus()
    app[CLOCK] = clock or SystemClock()
    app[LIMITS] = limits or Limits()
    app[TOKENS] = TokenCache(read_model)

    async def bind_hub(app: web.Application) -> None:
        app[HUB].bind(asyncio.get_running_loop())

    app.on_startup.append(bind_hub)
    for module in (ops, openapi, misc, tasks_read, tasks_write, stream):
        module.add_routes(app)
    return app


def run_api(settings: Settings) -> None:
    if not settings.api_token:
        raise SystemExit("KRONWHEEL_API_TOKEN must be set: the API refuses to run without a token")

    async def main() -> None:
        history = open_execution_history(settings)
        read_model = open_read_model(settings)
        producer = AsyncProducer(api_producer_config(settings))
        hub = Hub(read_model)
        projector = Projector(settings, read_model, on_batch=hub.deliver_threadsafe)
        app = build_app(
            settings,
            read_model,
            history,
            CommandPublisher(
                settings, producer, journal_from_env(os.environ, settings.topic(STATE))
            ),
            hub=hub,
            projector_status=projector.status,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        projector.start()
        retention = asyncio.create_task(
            keep_retention([history, read_model], SystemClock(), settings.history_ttl_s)
        )
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
            retention.cancel()
            await runner.cleanup()
            await asyncio.to_thread(projector.stop)
            producer.close()
            read_model.close()
            history.close()

    asyncio.run(main())
