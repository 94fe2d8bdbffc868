"""Unauthenticated operator endpoints on the API port: /metrics, /healthz, /readyz,
and the web page's static shell (the page asks for a token itself)."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.api.errors import json_response
from streams.api.keys import PROJECTOR_STATUS

# The projector polls at least every 0.2 s; silence longer than this means it is stuck.
PROJECTOR_STALL_S = 10.0
STATIC_DIR = Path(str(resources.files("streams.api").joinpath("static")))


async def metrics(_request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok", "role": "api"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the projector reaches the broker, owns its partitions and has caught up."""
    status = request.app[PROJECTOR_STATUS]
    silent_s = time.monotonic() - status.last_poll_monotonic
    polling = status.last_poll_monotonic > 0 and silent_s < PROJECTOR_STALL_S
    ready = (
        status.assigned
        and status.caught_up
        and polling
        and status.broker_reachable
        and status.error is None
    )
    body = {
        "ready": ready,
        "role": "api",
        "projector": {
            "broker_reachable": status.broker_reachable,
            "assigned": status.assigned,
            "caught_up": status.caught_up,
            "polling": polling,
            "error": status.error,
        },
    }
    return json_response(body, 200 if ready else 503)


# The page loads nothing from anywhere but this server, and the browser enforces it.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def index(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
