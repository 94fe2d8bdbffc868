"""``kronwheel dev``: every role on one machine, in one process tree.

Starts the embedded broker (unless KAFKA_BOOTSTRAP_SERVERS is set), creates the
topics, then runs the processor, the dispatcher and the API as child
processes, exactly as production runs them one per process, under a
supervisor that restarts a role that exits (streams.ops.supervisor). Only the
broker's death, Ctrl-C or SIGTERM stops everything; if this process is
SIGKILLed, the children die with it (see streams.ops.procs).

The banner is printed once every role answers /readyz: the processor and the
dispatcher own their partitions and the API's read model has caught up.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import IO, Any

from streams.config import Settings
from streams.kafka.broker import EmbeddedBroker, free_loopback_port
from streams.kafka.topics import DUE, STATE, ensure_topics, topic_partitions
from streams.ops.dev_partitions import dev_partitions
from streams.ops.durable import JOURNAL_ENV, open_kept_log
from streams.ops.restore import restore_broker
from streams.ops.server import start_ops_server
from streams.ops.supervisor import RoleSpec, Supervisor

log = logging.getLogger(__name__)

ROLES = ("processor", "dispatcher", "api")
DISPATCHER = "dispatcher"
# With the embedded broker, the keeper copies it to disk (streams.ops.keeper).
KEEPER = "keeper"
# Roles that serve /metrics on an ops port of their own; the API serves it on its port.
OPS_ROLES = (KEEPER, "processor", "dispatcher")
LOOPBACK_ALLOWLIST = ("127.0.0.0/8", "::1")
# The dev broker holds a group join for about half the session, after a dead
# member's whole session: 2 s brought a restarted processor's partitions back in
# 1.2-4.2 s (6 s: 11.3 s), and showed no spurious rebalance with both cores busy
# (docs/results.md). The tests use it too (tests/conftest.py).
DEV_SESSION_TIMEOUT_MS = 2000
# With an external broker: Apache Kafka refuses a join with less
# (group.min.session.timeout.ms is 6 s by default).
KAFKA_MIN_SESSION_TIMEOUT_MS = 6000


def dev_session_timeout_ms(embedded: bool) -> int:
    """The session dev's roles get (and the tests' and benchmarks' too)."""
    return DEV_SESSION_TIMEOUT_MS if embedded else KAFKA_MIN_SESSION_TIMEOUT_MS


def dev_assignment(embedded: bool) -> str:
    """How dev's processor and dispatchers get their partitions (and the tests' and
    benchmarks' that follow dev): ``static`` on the embedded broker, whose group
    coordinator holds a restarted member's join for seconds; ``group`` with an
    external broker, where the static argument does not hold (streams.kafka.assignment).
    KRONWHEEL_ASSIGNMENT=group selects group mode on the embedded broker too."""
    chosen = os.environ.get(Settings.env_name("assignment"), "").strip().lower()
    if not embedded:
        if chosen == "static":
            raise ValueError(
                "KRONWHEEL_ASSIGNMENT=static is only safe on dev's embedded broker, "
                "which dev owns with every member: unset it with KAFKA_BOOTSTRAP_SERVERS"
            )
        return "group"
    return chosen or "static"


def member_slot(role: str, dispatchers: int) -> tuple[int, int] | None:
    """(index, count) of a dev role's static member: the processor is 0 of 1;
    ``dispatcher`` is 0, ``dispatcher-N`` is N-1, of ``dispatchers``. None for
    the roles that own no partitions."""
    if role == "processor":
        return 0, 1
    if role == DISPATCHER:
        return 0, dispatchers
    if role.startswith(f"{DISPATCHER}-"):
        return int(role.rsplit("-", 1)[1]) - 1, dispatchers
    return None


CHECK_EVERY_S = 0.2
# While waiting for readiness, say which roles are slow after this long.
READY_NAG_S = 30.0
LOCK_FILE = "dev.lock"


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


def _dev_settings(settings: Settings, token: str, embedded: bool) -> Settings:
    """What dev changes for its roles: the token, loopback targets, a short session
    (shorter still on the embedded broker, which allows it), the assignment."""
    changes: dict[str, Any] = {
        "api_token": token,
        "target_allowlist": (*settings.target_allowlist, *LOOPBACK_ALLOWLIST),
        "assignment": dev_assignment(embedded),
    }
    if Settings.env_name("session_timeout_ms") not in os.environ:
        # The dev broker holds group joins for half the session timeout; keep it short.
        changes["session_timeout_ms"] = dev_session_timeout_ms(embedded)
    return replace(settings, **changes)


def reset_data_dir(settings: Settings) -> None:
    """``kronwheel dev --reset``: start from nothing (tasks, history, tokens, state).
    Called with the directory's lock held, which stays."""
    if not settings.data_dir.exists():
        return
    for entry in settings.data_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    log.warning("reset: emptied the data directory %s", settings.data_dir.resolve())


class DataDirInUse(Exception):
    pass


def lock_data_dir(data_dir: Path) -> IO[bytes]:
    """Hold ``<data dir>/dev.lock`` while this dev runs: two devs on one directory would
    both restore it into their own brokers and both write its kept log. The lock goes
    with the process, however it ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / LOCK_FILE).open("wb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(
            f"another kronwheel dev is using {data_dir.resolve()}; stop it, or set "
            "KRONWHEEL_DATA_DIR to another directory"
        ) from None
    return handle


def dev_holds(data_dir: Path) -> bool:
    """Whether a running ``kronwheel dev`` holds this data directory's lock. Its
    processor assigns partitions statically on the embedded broker, so no group
    shows it running: a tool that must not run beside it asks this too."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    with path.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def dev_dispatchers(settings: Settings, cores: int | None, partitions: int) -> int:
    """How many dispatchers dev runs: ``KRONWHEEL_DEV_DISPATCHERS``, else one per
    core and at least two, never more than tasks.due has partitions (a member
    without one would idle). One dispatcher process tops out at about 1.45 of
    two cores and, once behind, leaves the machine's other core unused (issue 15)."""
    if settings.dev_dispatchers is not None:
        return settings.dev_dispatchers
    return max(1, min(partitions, max(2, cores or 1)))


def role_names(dispatchers: int, keeper: bool) -> list[str]:
    """The supervised roles: ``dispatcher``, then ``dispatcher-2`` ... for the others."""
    names = [KEEPER] if keeper else []
    for role in ROLES:
        names.append(role)
        if role == DISPATCHER:
            names.extend(f"{DISPATCHER}-{n}" for n in range(2, dispatchers + 1))
    return names


def _ops_roles(dispatchers: int) -> list[str]:
    """The roles that serve /metrics on an ops port of their own (every dispatcher)."""
    return [
        role
        for role in role_names(dispatchers, keeper=True)
        if role in OPS_ROLES or role.startswith(f"{DISPATCHER}-")
    ]


def _role_specs(
    settings: Settings, ops_ports: dict[str, int], kept_path: Path | None, dispatchers: int
) -> list[RoleSpec]:
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    specs = []
    for role in role_names(dispatchers, keeper=kept_path is not None):
        # A fixed slot: a restarted role takes its predecessor's place (and fences it).
        own = replace(settings, slot=f"dev-{role}", metrics_port=ops_ports.get(role))
        member = member_slot(role, dispatchers)
        if settings.assignment == "static" and member is not None:
            # A fixed (index, count) per slot: the restarted role owns what its
            # predecessor owned, under the same transactional id (it fences it).
            own = replace(own, member_index=member[0], member_count=member[1])
        role_env = {**env, **own.to_env()}
        if role == "api" and kept_path is not None:
            role_env[JOURNAL_ENV] = str(kept_path)
        if role in ops_ports:
            ready = f"http://{settings.metrics_host}:{ops_ports[role]}/readyz"
        else:
            ready = f"http://{settings.api_host}:{settings.api_port}/readyz"
        command = [sys.executable, "-m", "streams.cli", DISPATCHER]
        is_extra_dispatcher = role.startswith(f"{DISPATCHER}-")
        specs.append(RoleSpec(role, role_env, ready, command if is_extra_dispatcher else []))
    return specs


def run_dev(settings: Settings, port: int | None = None, reset: bool = False) -> int:
    if port is not None:
        settings = replace(settings, api_port=port)
    try:
        lock = lock_data_dir(settings.data_dir)
    except DataDirInUse as exc:
        log.error("%s", exc)
        return 1
    if reset:
        reset_data_dir(settings)
    token = settings.api_token or secrets.token_urlsafe(24)
    broker: EmbeddedBroker | None = None
    supervisor: Supervisor | None = None
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        if not settings.bootstrap_servers:
            broker = EmbeddedBroker(log_path=settings.data_dir / "broker.log").start()
            settings = settings.with_embedded_broker(broker.bootstrap_servers)
            # An external broker's topics keep their own count (infra/topics.toml).
            settings = replace(settings, partitions=dev_partitions(settings))
        ensure_topics(settings)
        kept_path = _restore(settings) if broker is not None else None
        settings = _dev_settings(settings, token, embedded=broker is not None)
        dispatchers = dev_dispatchers(settings, os.cpu_count(), topic_partitions(settings, DUE))
        ops_ports = {role: free_loopback_port() for role in _ops_roles(dispatchers)}
        specs = _role_specs(settings, ops_ports, kept_path, dispatchers)
        supervisor = Supervisor(specs, clock=time.monotonic)
        supervisor.start_all()
        ops = start_ops_server(
            settings.metrics_host, 0, lambda: _readiness(supervisor), "dev supervisor"
        )
        metrics_urls = _metrics_urls(settings, ops_ports)
        if ops is not None:
            metrics_urls["supervisor"] = f"http://{settings.metrics_host}:{ops.port}/metrics"
        exit_code = _supervise(supervisor, broker, settings, token, metrics_urls, dispatchers)
    except _Stop:
        pass
    except Exception as exc:
        log.error("kronwheel dev failed: %s", exc)
        exit_code = 1
    finally:
        # Ignore further Ctrl-C while stopping, so a second one cannot orphan anything.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        if supervisor is not None:
            supervisor.stop_all()
        if broker is not None:
            broker.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        lock.close()
        print("kronwheel dev stopped", flush=True)
    return exit_code


def _restore(settings: Settings) -> Path:
    """Fill the fresh embedded broker from the kept log; returns the log's path."""
    kept = open_kept_log(settings.data_dir, settings.topic(STATE))
    try:
        report = restore_broker(settings, kept)
        counts = kept.counts()
    finally:
        kept.close()
    print(
        f"kronwheel dev: {report.describe()} from {kept.path} "
        f"({', '.join(f'{t}: {n}' for t, n in sorted(counts.items())) or 'nothing kept yet'})",
        flush=True,
    )
    return kept.path


def _supervise(
    supervisor: Supervisor,
    broker: EmbeddedBroker | None,
    settings: Settings,
    token: str,
    metrics_urls: dict[str, str],
    dispatchers: int,
) -> int:
    """Keep the roles running until the broker dies (1) or a signal stops us."""
    started = time.monotonic()
    nagged = started
    announced = False
    while True:
        code = broker.exit_code() if broker is not None else None
        if code is not None:
            log.error("the embedded broker exited with code %s; stopping everything", code)
            return 1
        supervisor.check()
        if not announced:
            waiting = supervisor.not_ready()
            if not waiting:
                announced = True
                log.info("every role is ready, %.1f s after start", time.monotonic() - started)
                _print_banner(settings, token, broker, metrics_urls, dispatchers)
            elif time.monotonic() - nagged > READY_NAG_S:
                nagged = time.monotonic()
                log.warning("still waiting for %s to be ready", ", ".join(waiting))
        time.sleep(CHECK_EVERY_S)


def _readiness(supervisor: Supervisor) -> tuple[bool, dict[str, object]]:
    waiting = supervisor.not_ready()
    return not waiting, {"not_ready": waiting, "pids": supervisor.pids()}


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
    dispatchers: int,
) -> None:
    where = (
        f"embedded broker (Tansu, in memory, kept on disk) on {settings.bootstrap_servers}"
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
                f"  data directory   : {settings.data_dir.resolve()}",
                f"  history (SQLite) : {settings.history_db_path}",
                f"  targets          : loopback ({','.join(LOOPBACK_ALLOWLIST)}) is ALLOWED in dev",
                f"  dispatchers      : {dispatchers} (KRONWHEEL_DEV_DISPATCHERS)",
                "  metrics          :",
                *(f"    {role:<14} {url}" for role, url in metrics_urls.items()),
                "  roles            : restarted when they exit; all ready (see /readyz of "
                "the supervisor)",
                "  stop             : Ctrl-C    start from nothing: kronwheel dev --reset",
                "",
            ]
        ),
        flush=True,
    )
    sys.stdout.flush()
