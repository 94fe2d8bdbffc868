"""Every Prometheus series kronwheel exports, defined in one place.

Roles import the objects they update; names and labels are part of the
operator contract (dashboards and alert rules in ``infra/`` use them), so
change them only with a note. Histogram buckets are in seconds and chosen
around the targets: lateness well under a second, restores within 20 s.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Gauge, Histogram

LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)

FIRING_LATENESS = Histogram(
    "kronwheel_firing_lateness_seconds",
    "Due event emitted minus scheduled time, per firing (processor).",
    buckets=LATENESS_BUCKETS,
)
CALLBACK_LATENESS = Histogram(
    "kronwheel_dispatch_lateness_seconds",
    "Target call started minus scheduled time, per attempt (dispatcher).",
    buckets=LATENESS_BUCKETS,
)
FIRINGS = Counter(
    "kronwheel_firings_total",
    "Due events emitted by processors (rate() gives firings/s).",
    ["reason"],  # schedule | trigger | retry | misfire
)
COMMANDS = Counter(
    "kronwheel_commands_total",
    "Task commands applied by processors, by kind and result.",
    ["kind", "result"],  # result: applied | duplicate | rejected
)
DISPATCH_OUTCOMES = Counter(
    "kronwheel_dispatch_outcomes_total",
    "Attempts finished by dispatchers, by outcome.",
    ["outcome"],  # succeeded | failed | skipped_duplicate | reemitted (recorded before a crash)
)
DISPATCH_DURATION = Histogram(
    "kronwheel_dispatch_duration_seconds",
    "Target call started (its host's and tenant's slots held) to answered, per attempt.",
    buckets=LATENESS_BUCKETS,
)
DISPATCH_QUEUE_WAIT = Histogram(
    "kronwheel_dispatch_queue_wait_seconds",
    "Due record fetched by the dispatcher to its target call started, per attempt: the "
    "wait for a place in flight, then for the host's and the tenant's slots.",
    buckets=LATENESS_BUCKETS,
)


class NotificationResult(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"  # too many pending


NOTIFICATIONS = Counter(
    "kronwheel_notifications_total",
    "Outcome notifications (task notify webhooks) by result.",
    ["result"],  # a NotificationResult
)
RETRIES = Counter("kronwheel_retries_total", "Retry commands sent back through the wheel.")
DEAD_LETTERS = Counter(
    "kronwheel_dead_letters_total",
    "Events written to tasks.dead, by the role that wrote them and why.",
    ["role", "reason"],
)
CONSUMER_LAG = Gauge(
    "kronwheel_consumer_lag_messages",
    "Records between a role's position and the partition's end.",
    ["group", "topic", "partition"],
)
WHEEL_TIMERS = Gauge(
    "kronwheel_wheel_timers",
    "Timers held in memory by the hierarchical wheel, per partition.",
    ["partition"],
)
INDEX_TASKS = Gauge(
    "kronwheel_index_tasks",
    "Live tasks in the on-disk local index, per partition.",
    ["partition"],
)
RESTORE_DURATION = Histogram(
    "kronwheel_restore_duration_seconds",
    "Time to restore one partition from the changelog on assignment.",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0, 300.0),
)
TRANSACTIONS = Counter(
    "kronwheel_transactions_total",
    "Kafka transactions finished by processors.",
    ["result"],  # committed | aborted
)
API_REQUESTS = Counter(
    "kronwheel_api_requests_total",
    "REST calls answered by the API, by route and status.",
    ["method", "route", "status"],
)
API_COMMANDS = Counter(
    "kronwheel_api_commands_total",
    "Task commands the API published to tasks.commands, by kind.",
    ["kind"],
)
PROJECTED_EVENTS = Counter(
    "kronwheel_projector_events_total",
    "Records the API's projector applied to the read model, by topic.",
    ["topic"],  # state | results | commands
)
WEBSOCKET_CLIENTS = Gauge("kronwheel_api_websocket_clients", "Open /v1/stream connections.")
PROJECTOR_SKIPPED = Counter(
    "kronwheel_projector_skipped_total",
    "Records the API's projector could not project and skipped, by the error's class.",
    ["reason"],
)
# `kronwheel dev` only: its supervisor's view of the roles it runs.
DEV_ROLE_RESTARTS = Counter(
    "kronwheel_dev_role_restarts_total",
    "Roles restarted by the kronwheel dev supervisor after they exited.",
    ["role"],
)
DEV_ROLE_UP = Gauge(
    "kronwheel_dev_role_up", "1 while the role's process runs under kronwheel dev.", ["role"]
)
DEV_ROLE_CRASH_LOOPING = Gauge(
    "kronwheel_dev_role_crash_looping",
    "1 while the role keeps exiting soon after each restart (kronwheel dev).",
    ["role"],
)
