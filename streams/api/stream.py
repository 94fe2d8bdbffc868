"""GET /v1/stream: a WebSocket of the caller's tenant's live events.

Events (JSON text frames): ``{"type": "task", "task": {...}}`` when a task
changes, ``{"type": "execution", "execution": {...}}`` per attempt, and
``{"type": "command", "command": {...}}`` per command seen on tasks.commands.
Only the caller's tenant's events are ever sent. A client too slow to keep up
gets ``{"type": "lagged"}`` and should reload what it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from streams.api.auth import principal_of
from streams.api.keys import HUB
from streams.metrics import WEBSOCKET_CLIENTS

SUBPROTOCOL = "kronwheel"
# Open connections, closed on shutdown: aiohttp waits for handlers, and a stream's
# handler would otherwise wait for its client for ever.
OPEN_STREAMS = web.AppKey("open_streams", weakref.WeakSet[web.WebSocketResponse])


async def stream(request: web.Request) -> web.WebSocketResponse:
    principal = principal_of(request)
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=30.0)
    await ws.prepare(request)
    request.app[OPEN_STREAMS].add(ws)
    hub = request.app[HUB]
    subscriber = hub.subscribe(principal.tenant)
    WEBSOCKET_CLIENTS.inc()

    async def forward() -> None:
        await ws.send_str(orjson.dumps({"type": "hello", "tenant": principal.tenant}).decode())
        while True:
            event = await subscriber.queue.get()
            if subscriber.lagged:
                subscriber.lagged = False
                await ws.send_str('{"type": "lagged"}')
            await ws.send_str(orjson.dumps(event).decode())

    sender = asyncio.create_task(forward())
    try:
        async for message in ws:  # clients send nothing; this notices the close
            if message.type is WSMsgType.ERROR:
                break
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        hub.unsubscribe(subscriber)
        WEBSOCKET_CLIENTS.dec()
    return ws


async def close_streams(app: web.Application) -> None:
    open_streams = app[OPEN_STREAMS]
    for ws in list(open_streams):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def add_routes(app: web.Application) -> None:
    streams: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    app[OPEN_STREAMS] = streams
    app.on_shutdown.append(close_streams)
    app.router.add_get("/v1/stream", stream)
