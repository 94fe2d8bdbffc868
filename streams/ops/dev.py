"""``kronwheel dev``: every role on one machine, in one process tree.

Starts the embedded broker (unless KAFKA_BOOTSTRAP_SERVERS is set), creates the
topics, then runs the processor, the dispatcher and the API as child
processes, exactly as production runs them one per process. Ctrl-C (or
SIGTERM) stops them all; if this process is SIGKILLed, the children die with
it (see streams.ops.procs).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import replace
from types import FrameType
from typing import Any

from streams.config import Settings
from streams.kafka.broker import EmbeddedBroker, free_loopback_port
from streams.kafka.topics import ensure_topics
from streams.ops.procs import spawn, stop, wait_for_http_ok

log = logging.getLogger(__name__)

ROLES = ("processor", "dispatcher", "api")
# Roles that serve /metrics on an ops port of their own; the API serves it on its port.
OPS_ROLES = ("processor", "dispatcher")
LOOPBACK_ALLOWLIST = ("127.0.0.0/8", "::1")
DEV_SESSION_TIMEOUT_MS = 6000


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


def _dev_settings(settings: Settings, token: str) -> Settings:
    """What dev changes for its roles: the token, loopback targets, a short session."""
    changes: dict[str, Any] = {
        "api_token": token,
        "target_allowlist": (*settings.target_allowlist, *LOOPBACK_ALLOWLIST),
    }
    if Settings.env_name("session_timeout_ms") not in os.environ:
        # The dev broker holds group joins for half the session timeout; keep it short.
        changes["session_timeout_ms"] = DEV_SESSION_TIMEOUT_MS
    return replace(settings, **changes)


def run_dev(settings: Settings, port: int | None = None) -> int:
    if port is not None:
        settings = replace(settings, api_port=port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = settings.api_token or secrets.token_urlsafe(24)
    broker: EmbeddedBroker | None = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        if not settings.bootstrap_servers:
            broker = EmbeddedBroker(log_path=settings.data_dir / "broker.log").start()
            settings = settings.with_bootstrap(broker.bootstrap_servers)
            # The embedded broker starts empty, so history from an earlier run
            # would describe tasks that no longer exist anywhere.
            for suffix in ("", "-wal", "-shm"):
                path = settings.history_db_path.with_name(settings.history_db_path.name + suffix)
                path.unlink(missing_ok=True)
        ensure_topics(settings)
        settings = _dev_settings(settings, token)
        env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
        metrics_ports = {role: free_loopback_port() for role in OPS_ROLES}
        for role in ROLES:
            own = replace(settings, slot=f"dev-{role}", metrics_port=metrics_ports.get(role))
            role_env = {**env, **own.to_env()}
            children[role] = spawn([sys.executable, "-m", "streams.cli", role], env=role_env)
        wait_for_http_ok(f"http://{settings.api_host}:{settings.api_port}/healthz", children)
        _print_banner(settings, token, broker, _metrics_urls(settings, metrics_ports))
        while True:
            for role, child in children.items():
                if child.poll() is not None:
                    log.error("the %s exited with code %s; stopping", role, child.returncode)
                    exit_code = 1
                    raise _Stop
            time.sleep(0.2)
    except _Stop:
        pass
    except Exception as exc:
        log.error("kronwheel dev failed: %s", exc)
        exit_code = 1
    finally:
        # Ignore further Ctrl-C while stopping, so a second one cannot orphan anything.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        for role in reversed(ROLES):
            if role in children:
                stop(children[role])
        if broker is not None:
            broker.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        print("kronwheel dev stopped", flush=True)
    return exit_code


def _metrics_urls(settings: Settings, ports: dict[str, int]) -> dict[str, str]:
    """Where each role serves /metrics: its ops port, or the API's own port."""
    urls = {role: f"http://{settings.metrics_host}:{port}/metrics" for role, port in ports.items()}
    urls["api"] = f"http://{settings.api_host}:{settings.api_port}/metrics"
    return urls


def _print_banner(
    settings: Settings,
    token: str,
    broker: EmbeddedBroker | None,
    metrics_urls: dict[str, str],
) -> None:
    where = (
        f"embedded broker (Tansu, in memory) on {settings.bootstrap_servers}"
        if broker
        else f"broker {settings.bootstrap_servers}"
    )
    print(
        "\n".join(
            [
                "",
                "kronwheel dev is running",
                f"  web page and API : http://{settings.api_host}:{settings.api_port}",
                f"  admin token      : {token}",
                f"  kafka            : {where}",
                f"  history (SQLite) : {settings.history_db_path}",
                f"  targets          : loopback ({','.join(LOOPBACK_ALLOWLIST)}) is ALLOWED in dev",
                "  metrics          :",
                *(f"    {role:<14} {url}" for role, url in metrics_urls.items()),
                "  stop             : Ctrl-C",
                "",
            ]
        ),
        flush=True,
    )
