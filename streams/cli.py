"""The ``kronwheel`` command line."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

from streams.config import InvalidSetting, Settings
from streams.core.model import Outcome
from streams.logs import configure_logging


def _require_bootstrap(settings: Settings) -> Settings:
    if not settings.bootstrap_servers:
        raise SystemExit(
            "KAFKA_BOOTSTRAP_SERVERS is not set. Roles run against a broker; "
            "`kronwheel dev` starts an embedded one for you."
        )
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kronwheel", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser(
        "dev", help="everything on one machine: embedded broker, SQLite, all roles, web page"
    )
    dev.add_argument("--port", type=int, help="API/web port (default 8080 or KRONWHEEL_API_PORT)")
    dev.add_argument(
        "--reset",
        action="store_true",
        help="delete the data directory first: start from nothing (tasks, history, tokens)",
    )
    commands.add_parser("api", help="run the REST API and web page")
    commands.add_parser("processor", help="run a timewheel processor")
    commands.add_parser("dispatcher", help="run a dispatcher")
    commands.add_parser("keeper", help="copy the embedded broker to disk (kronwheel dev runs it)")
    commands.add_parser(
        "bench", help="whole-pipeline benchmarks: steady | burst | capacity", add_help=False
    )
    topics = commands.add_parser("topics", help="create or describe the topics")
    topics.add_argument("action", choices=["create", "describe"])
    token = commands.add_parser("token", help="manage API tokens")
    token.add_argument("action", choices=["create"])
    token.add_argument("--tenant", required=True, help="the tenant the token acts for")
    token.add_argument("--name", default="cli", help="a label shown in the audit trail")
    token.add_argument(
        "--create-store",
        action="store_true",
        help="create the read model store if the data directory has none (a new deployment)",
    )
    status = commands.add_parser(
        "status", help="consumer lag, pending tasks per partition, dead letters"
    )
    _add_progress(status, default="never")
    _add_replay_parser(commands)
    return parser


def _add_progress(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default=default,
        help="progress bars on stderr (auto: when stderr is a terminal)",
    )


def _add_replay_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay", help="recover by replaying topics (safe to interrupt and re-run)"
    )
    kinds = replay.add_subparsers(dest="replay", required=True)
    window_help = "RFC 3339 (2026-11-23T10:00:00Z), now, or relative: --from=-2h, --to=-30m"
    history = kinds.add_parser(
        "history", help="rebuild or fill gaps in the history store from tasks.results"
    )
    due = kinds.add_parser("due", help="re-drive the firings of a window from tasks.due")
    for sub in (history, due):
        sub.add_argument("--from", dest="start", required=True, help=window_help)
        sub.add_argument("--to", dest="end", default="now", help=window_help + " (default now)")
        _add_progress(sub)
    due.add_argument("--task", help="only this task id")
    due.add_argument(
        "--status",
        choices=[Outcome.FAILED.value],
        help="only firings without a succeeded attempt, re-run as the next attempt",
    )
    due.add_argument("--dry-run", action="store_true", help="print what would be sent")
    state = kinds.add_parser(
        "state", help="rebuild the changelog tasks.state from tasks.commands (processors stopped)"
    )
    state.add_argument("--dry-run", action="store_true", help="count, write nothing")
    state.add_argument(
        "--force", action="store_true", help="run even while processors are in their group"
    )
    _add_progress(state)


def _progress(args: argparse.Namespace) -> bool:
    if args.progress == "auto":
        return sys.stderr.isatty()
    return bool(args.progress == "always")


def _run_bench(rest: list[str]) -> int:
    """The benchmarks live beside the package, not in it (they need the test
    support and chart libraries): run them as ``python -m bench`` from a checkout."""
    if importlib.util.find_spec("bench") is None:
        print("kronwheel bench runs from a source checkout: python -m bench ...", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "bench", *rest])


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        return _run_bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = Settings.from_env()
    except InvalidSetting as exc:
        raise SystemExit(f"kronwheel: {exc}") from None
    configure_logging(args.log_level, settings.log_format)

    if args.command == "dev":
        from streams.ops.dev import run_dev

        return run_dev(settings, port=args.port, reset=args.reset)
    if args.command == "api":
        from streams.api.app import run_api

        run_api(_require_bootstrap(settings))
    elif args.command == "processor":
        from streams.timewheel import run_processor

        run_processor(_require_bootstrap(settings))
    elif args.command == "dispatcher":
        from streams.dispatch import run_dispatcher

        run_dispatcher(_require_bootstrap(settings))
    elif args.command == "keeper":
        from streams.ops.keeper import run_keeper

        run_keeper(_require_bootstrap(settings))
    elif args.command == "topics":
        _topics(_require_bootstrap(settings), args.action)
    elif args.command == "status":
        from streams.ops.status import render_status

        print(render_status(_require_bootstrap(settings), progress=_progress(args)))
    elif args.command == "replay":
        from streams.ops.replay.cli import run_replay

        return run_replay(_require_bootstrap(settings), args, _progress(args))
    elif args.command == "token":
        return _create_token(settings, args.tenant, args.name, args.create_store)
    return 0


def _topics(settings: Settings, action: str) -> None:
    from streams.kafka.topics import describe_topics, ensure_topics
    from streams.ops.tables import render_table

    if action == "create":
        created = ensure_topics(settings)
        print("created: " + (", ".join(created) if created else "nothing (all exist)"))
        return
    rows = describe_topics(settings)
    print(
        render_table(
            ["topic", "exists", "partitions", "expected", "cleanup"],
            [
                (
                    r["topic"],
                    r["exists"],
                    r["partitions"],
                    r["expected_partitions"],
                    r["cleanup.policy"],
                )
                for r in rows
            ],
        )
    )


def _create_token(settings: Settings, tenant: str, name: str, create_store: bool = False) -> int:
    """Store a new token's hash in the read model and print the token (shown once).

    A data directory without a store is most likely the wrong one (another
    KRONWHEEL_DATA_DIR than the running API's): a token stored in a fresh store
    there would never be accepted, so that is refused unless asked for.
    """
    from streams.api.auth import ADMIN_TENANT, issue_token
    from streams.core.clock import SystemClock
    from streams.core.ids import is_valid_tenant
    from streams.views.readmodel import open_read_model

    if not is_valid_tenant(tenant) or tenant == ADMIN_TENANT:
        print(
            f"invalid tenant {tenant!r}: use [a-z0-9][a-z0-9_-]{{0,39}}, not {ADMIN_TENANT!r}",
            file=sys.stderr,
        )
        return 2
    no_store = not settings.cassandra_contact_points and not settings.history_db_path.exists()
    if no_store and not create_store:
        print(
            f"no read model store at {settings.history_db_path}: is KRONWHEEL_DATA_DIR the "
            "running API's? (pass --create-store to start a new one)",
            file=sys.stderr,
        )
        return 2
    store = open_read_model(settings)
    try:
        print(issue_token(store, tenant, name, SystemClock().now_ms()))
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
