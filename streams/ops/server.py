"""/metrics, /healthz and /readyz for the roles that are not web servers.

The processor and the dispatcher are Kafka loops on threads; a tiny
``http.server`` on its own daemon thread is enough to serve a scrape and two
probes without pulling an event loop into them. The API serves the same three
paths from its aiohttp app instead.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

# Returns (ready, details): details explain a "not ready" to an operator.
ReadinessCheck = Callable[[], tuple[bool, dict[str, object]]]


class OpsServer:
    def __init__(self, host: str, port: int, readiness: ReadinessCheck, role: str) -> None:
        self._readiness = readiness
        self.role = role
        handler = self._handler_class()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"ops-{role}", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("%s serves /metrics /healthz /readyz on port %d", self.role, self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        ops = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest())
                elif self.path == "/healthz":
                    self._send_json(200, {"status": "ok", "role": ops.role})
                elif self.path == "/readyz":
                    ready, details = ops._readiness()
                    body = {"ready": ready, "role": ops.role, **details}
                    self._send_json(200 if ready else 503, body)
                else:
                    self._send_json(404, {"error": {"code": "not_found", "message": self.path}})

            def _send_json(self, status: int, body: dict[str, object]) -> None:
                self._send(status, "application/json", json.dumps(body).encode())

            def _send(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would drown the role's own log

        return Handler


def start_ops_server(
    host: str, port: int | None, readiness: ReadinessCheck, role: str
) -> OpsServer | None:
    """Start the server when a port is configured (0 picks a free one)."""
    if port is None:
        return None
    return OpsServer(host, port, readiness, role).start()
