"""The ``kronwheel`` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from streams.config import Settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s",
        stream=sys.stderr,
    )


def _require_bootstrap(settings: Settings) -> Settings:
    if not settings.bootstrap_servers:
        raise SystemExit(
            "KAFKA_BOOTSTRAP_SERVERS is not set. Roles run against a broker; "
            "`kronwheel dev` starts an embedded one for you."
        )
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kronwheel", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser(
        "dev", help="everything on one machine: embedded broker, SQLite, all roles, web page"
    )
    dev.add_argument("--port", type=int, help="API/web port (default 8080 or KRONWHEEL_API_PORT)")
    commands.add_parser("api", help="run the REST API and web page")
    commands.add_parser("processor", help="run a timewheel processor")
    commands.add_parser("dispatcher", help="run a dispatcher")
    commands.add_parser(
        "bench", help="whole-pipeline benchmarks: steady | burst | capacity", add_help=False
    )
    topics = commands.add_parser("topics", help="create or describe the topics")
    topics.add_argument("action", choices=["create", "describe"])
    token = commands.add_parser("token", help="manage API tokens")
    token.add_argument("action", choices=["create"])
    token.add_argument("--tenant", required=True, help="the tenant the token acts for")
    token.add_argument("--name", default="cli", help="a label shown in the audit trail")
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from bench.scenarios import main as bench_main

        return bench_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    _configure_logging(args.log_level)
    settings = Settings.from_env()

    if args.command == "dev":
        from streams.dev import run_dev

        return run_dev(settings, port=args.port)
    if args.command == "api":
        from streams.api.app import run_api

        run_api(_require_bootstrap(settings))
    elif args.command == "processor":
        from streams.timewheel import run_processor

        run_processor(_require_bootstrap(settings))
    elif args.command == "dispatcher":
        from streams.dispatch import run_dispatcher

        run_dispatcher(_require_bootstrap(settings))
    elif args.command == "topics":
        from streams.topics import describe_topics, ensure_topics

        _require_bootstrap(settings)
        if args.action == "create":
            created = ensure_topics(settings)
            print("created: " + (", ".join(created) if created else "nothing (all exist)"))
        else:
            rows = describe_topics(settings)
            print(f"{'topic':<32} {'exists':<7} {'partitions':>10} {'expected':>8}  cleanup")
            for row in rows:
                print(
                    f"{row['topic']:<32} {row['exists']!s:<7} {row['partitions']:>10} "
                    f"{row['expected_partitions']:>8}  {row['cleanup.policy']}"
                )
    elif args.command == "token":
        return _create_token(settings, args.tenant, args.name)
    return 0


def _create_token(settings: Settings, tenant: str, name: str) -> int:
    """Store a new token's hash in the read model and print the token (shown once)."""
    from streams.api.auth import ADMIN_TENANT, issue_token
    from streams.core.clock import SystemClock
    from streams.core.ids import is_valid_tenant
    from streams.readmodel import open_read_model

    if not is_valid_tenant(tenant) or tenant == ADMIN_TENANT:
        print(
            f"invalid tenant {tenant!r}: use [a-z0-9][a-z0-9_-]{{0,39}}, not {ADMIN_TENANT!r}",
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
