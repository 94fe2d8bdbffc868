"""``kronwheel replay state``: rebuild the changelog tasks.state from tasks.commands.

For a lost or corrupted changelog. Run it with the processors stopped (it
refuses while the processors' group has members, unless forced): it folds
every partition's commands, in order, through the processor's own command
state machine, with each command's record timestamp as "now", so the rebuilt
state is what the processors computed when they applied them. Firings are not
commands, so tasks.due is read too: a task is moved past the runs it already
fired (a one-time task that fired is over), otherwise the processors would
fire every past run again on restore. Dispatchers would drop those repeats by
fire id, but a long-running cron task with ``fire_all`` would flood tasks.due.

Then every live task's state is written to the changelog partition of its
commands partition, and every key the changelog still holds that is no longer
live gets a tombstone. Re-running produces the same records (deterministic:
no wall clock in the fold), so an interrupted rebuild is finished by running
it again. The processors restore from the changelog when they start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient

from streams.config import Settings, kafka_config
from streams.core.errors import MalformedEvent
from streams.core.events import TaskCommand, TaskState
from streams.core.schedule import next_fire_ms
from streams.core.tasktable import TaskTable
from streams.records import decode_command, decode_due, encode_state
from streams.replay.produce import produce_all
from streams.replay.scan import ScanStats, log_malformed, scan_window
from streams.replay.window import Window
from streams.topics import COMMANDS, DUE, STATE

log = logging.getLogger(__name__)

# (partition, task id)
Slot = tuple[int, str]
_ACTIVE_GROUP_STATES = {
    ConsumerGroupState.STABLE,
    ConsumerGroupState.PREPARING_REBALANCING,
    ConsumerGroupState.COMPLETING_REBALANCING,
}


class CommandFold:
    """The live tasks of every partition after applying commands in order.

    Uses the processor's own command logic, so a rebuilt state is exactly the
    one the processor would have written.
    """

    def __init__(self) -> None:
        self._tables: dict[int, TaskTable] = {}
        self._states: dict[Slot, TaskState | None] = {}
        self.rejected = 0

    def apply(self, partition: int, command: TaskCommand, now_ms: int) -> None:
        table = self._tables.setdefault(partition, TaskTable())
        try:
            effects = table.apply(command, now_ms)
        except MalformedEvent as exc:
            # The processor sent this one to tasks.dead: it changed nothing then either.
            self.rejected += 1
            log.debug("command %s not applied: %s", command.command_id, exc)
            return
        for change in effects.changes:
            self._states[(partition, change.task_id)] = change.state

    def live(self) -> dict[Slot, TaskState]:
        return {slot: state for slot, state in self._states.items() if state is not None}


def advance_past_firings(state: TaskState, last_fired_ms: int, fired: int) -> TaskState | None:
    """The state after the runs up to ``last_fired_ms`` fired; None when that ends it.

    Pure. Runs already fired are not fired again; the runs between the last
    firing and now are left to the processor's misfire policy on restore.
    """
    if state.next_fire_ms is None or last_fired_ms < state.next_fire_ms:
        return state
    following = next_fire_ms(state.spec.schedule, last_fired_ms)
    if following is None:
        return None
    return replace(
        state,
        next_fire_ms=following,
        last_fire_ms=last_fired_ms,
        fire_count=max(state.fire_count, fired),
    )


@dataclass
class StateReplay:
    commands: ScanStats = field(default_factory=ScanStats)
    firings: ScanStats = field(default_factory=ScanStats)
    changelog: ScanStats = field(default_factory=ScanStats)
    malformed: int = 0
    rejected: int = 0
    live: int = 0
    advanced: int = 0
    tombstones: int = 0
    produced: int = 0
    per_partition: dict[int, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.commands.in_window} commands folded ({self.rejected} not applicable, "
            f"{self.malformed} malformed), {self.firings.in_window} firings read; "
            f"{self.live} live tasks ({self.advanced} moved past runs already fired), "
            f"{self.tombstones} stale changelog keys tombstoned, {self.produced} records written"
        )


def replay_state(
    settings: Settings,
    *,
    dry_run: bool = False,
    force: bool = False,
    progress: bool = True,
) -> StateReplay:
    if not force:
        refuse_while_processors_run(settings)
    report = StateReplay()
    fold = CommandFold()
    everything = Window()
    for batch in scan_window(
        settings,
        settings.topic(COMMANDS),
        everything,
        report.commands,
        progress=progress,
        purpose="state-commands",
    ):
        for message in batch:
            try:
                command = decode_command(message.value() or b"")
            except MalformedEvent as exc:
                report.malformed += 1
                log_malformed(log, "command", message, exc)
                continue
            fold.apply(message.partition() or 0, command, message.timestamp()[1])
    report.rejected = fold.rejected
    live = fold.live()

    last_fired: dict[str, tuple[int, int]] = {}  # task -> (latest scheduled ms, firings)
    for batch in scan_window(
        settings,
        settings.topic(DUE),
        everything,
        report.firings,
        progress=progress,
        purpose="state-due",
    ):
        for message in batch:
            try:
                due = decode_due(message.value() or b"")
            except MalformedEvent:
                continue
            latest, count = last_fired.get(due.task_id, (due.scheduled_at_ms, 0))
            first_attempt = 1 if due.attempt == 1 else 0
            last_fired[due.task_id] = (max(latest, due.scheduled_at_ms), count + first_attempt)

    rebuilt: dict[Slot, TaskState] = {}
    for slot, state in live.items():
        fired = last_fired.get(slot[1])
        advanced = advance_past_firings(state, *fired) if fired else state
        if advanced is not state:
            report.advanced += 1
        if advanced is not None:
            rebuilt[slot] = advanced
    report.live = len(rebuilt)
    for partition, _ in rebuilt:
        report.per_partition[partition] = report.per_partition.get(partition, 0) + 1

    stale = changelog_live_keys(settings, report.changelog, progress=progress) - set(rebuilt)
    report.tombstones = len(stale)
    if not dry_run:
        report.produced = write_changelog(settings, rebuilt, stale)
    return report


def changelog_live_keys(settings: Settings, stats: ScanStats, *, progress: bool) -> set[Slot]:
    """Keys whose latest changelog record is a value (not a tombstone)."""
    latest: dict[Slot, bool] = {}
    for batch in scan_window(
        settings,
        settings.topic(STATE),
        Window(),
        stats,
        progress=progress,
        purpose="state-changelog",
    ):
        for message in batch:
            key = (message.key() or b"").decode("utf-8", "replace")
            latest[(message.partition() or 0, key)] = message.value() is not None
    return {slot for slot, alive in latest.items() if alive}


def write_changelog(settings: Settings, rebuilt: dict[Slot, TaskState], stale: set[Slot]) -> int:
    records = [
        *((p, task_id.encode(), encode_state(state)) for (p, task_id), state in rebuilt.items()),
        *((p, task_id.encode(), None) for p, task_id in sorted(stale)),
    ]
    return produce_all(settings, settings.topic(STATE), records)


def refuse_while_processors_run(settings: Settings) -> None:
    """A running processor would write the changelog at the same time: refuse."""
    from streams.timewheel import group_id

    group = group_id(settings)
    admin = AdminClient(kafka_config(settings, "admin"))
    future = admin.describe_consumer_groups([group], request_timeout=10)[group]
    try:
        description = future.result()
    except KafkaException as exc:  # an unknown group has no members
        log.debug("describe %s: %s", group, exc)
        return
    # The dev broker lists no members of a live group, but reports its state.
    active = description.members or description.state in _ACTIVE_GROUP_STATES
    if active:
        raise SystemExit(
            f"processors are running in group {group} ({description.state.name}, "
            f"{len(description.members)} members listed): stop them first "
            "(they write tasks.state too), or pass --force"
        )
