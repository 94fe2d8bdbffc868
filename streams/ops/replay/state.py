"""``kronwheel replay state``: rebuild the changelog tasks.state from tasks.commands.

For a lost or corrupted changelog. Run it with the processors stopped (it
refuses while the processors' group has members, unless forced): it folds
every partition's commands, in order, through the processors' own state
machine (``streams.core.lifecycle.apply_command``, which derives everything
from each command's ``issued_at_ms``), so the rebuilt state is what the
processors computed when they applied them. Firings are not commands, so
tasks.due is read too: a task is moved past the runs it already fired, and
retries that were already emitted are dropped (a one-time task that fired is
over once its retry window is), otherwise the processors would fire every
past run again on restore. Dispatchers would drop those repeats by fire id,
but a long-running cron task with ``fire_all`` would flood tasks.due.

Then every live task's state is written to the changelog partition of its
commands partition (with the ``kw-due-ms`` header the processors restore
from), and merged with what the changelog holds: a key the changelog still
holds that the fold did not rebuild gets a tombstone only when the commands
show it ended, or when it claims to be created after the oldest command kept
in its partition and no command created it (it is not a task kronwheel made).
A task created before the oldest command kept (``tasks.commands`` is deleted
after its retention) cannot be rebuilt, and is kept as the changelog has it.
Re-running produces the same records (deterministic: no wall clock in the
fold), so an interrupted rebuild is finished by running it again. The
processors restore from the changelog when they start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from confluent_kafka import ConsumerGroupState, KafkaException, Message
from confluent_kafka.admin import AdminClient

from streams.config import Settings, kafka_config
from streams.core.errors import MalformedEvent
from streams.core.events import CommandKind, DueTask, TaskCommand, TaskState, TaskStatus
from streams.core.lifecycle import apply_command, next_due_ms
from streams.core.schedule import next_fire_ms
from streams.core.validation import Rules
from streams.kafka.records import decode_command, decode_due, decode_state, encode_state
from streams.kafka.topics import COMMANDS, DUE, STATE
from streams.ops.replay.produce import HeadedRecord, produce_all
from streams.ops.replay.scan import ScanStats, log_malformed, scan_window
from streams.ops.replay.window import Window
from streams.wheel.partition import DUE_HEADER

log = logging.getLogger(__name__)

# (partition, task id)
Slot = tuple[int, str]
_ACTIVE_GROUP_STATES = {
    ConsumerGroupState.STABLE,
    ConsumerGroupState.PREPARING_REBALANCING,
    ConsumerGroupState.COMPLETING_REBALANCING,
}


class CommandFold:
    """The state of every task after applying its partition's commands in order.

    Folds through the processor's own state machine (``apply_command``), so a
    rebuilt state is exactly the one the processor wrote: duplicates, rejected
    and ignored commands change nothing here either.
    """

    def __init__(self) -> None:
        self._states: dict[Slot, TaskState | None] = {}
        self.rejected = 0
        self.created: set[Slot] = set()  # tasks whose CREATE the commands still hold
        self.oldest_ms: dict[int, int] = {}  # per partition: the oldest command's time

    def apply(self, partition: int, command: TaskCommand, now_ms: int) -> None:
        slot = (partition, command.task_id)
        self.oldest_ms[partition] = min(self.oldest_ms.get(partition, now_ms), now_ms)
        transition = apply_command(self._states.get(slot), command, now_ms)
        if transition.rejected:
            # The processor refused it too (and logged why); it changed nothing.
            self.rejected += 1
            log.debug("command %s not applied: %s", command.command_id, transition.reason)
            return
        if command.kind is CommandKind.CREATE and transition.writes:
            self.created.add(slot)
        self._states[slot] = transition.state

    def live(self) -> dict[Slot, TaskState]:
        return {slot: state for slot, state in self._states.items() if state is not None}


def advance_past_firings(state: TaskState, fired: FiredRuns) -> TaskState | None:
    """The state once the runs and retries ``tasks.due`` shows were fired; None when
    nothing is left for the task to do.

    Pure. Runs already fired are not fired again; the runs between the last
    firing and now are left to the processor's misfire policy on restore. A
    task that finished stays while its retry window lasts, as the processor
    keeps it.
    """
    advanced = replace(
        state,
        pending_retries=tuple(
            r for r in state.pending_retries if (r.scheduled_at_ms, r.attempt) not in fired.retries
        ),
    )
    last = fired.last_scheduled_ms
    if (
        last is not None
        and state.status is TaskStatus.SCHEDULED
        and state.next_fire_ms is not None
        and last >= state.next_fire_ms
    ):
        following = next_fire_ms(state.spec.schedule, last)
        advanced = replace(
            advanced,
            next_fire_ms=following,
            last_fire_ms=last,
            fire_count=max(state.fire_count, fired.runs),
            status=TaskStatus.SCHEDULED if following is not None else TaskStatus.COMPLETED,
        )
    if advanced == state:
        return state
    # A finished task with no retry window left is over (the processor would
    # tombstone it at once); anything else stays, paused tasks included.
    if advanced.status is TaskStatus.COMPLETED and next_due_ms(advanced) is None:
        return None
    return advanced


@dataclass
class FiredRuns:
    """What tasks.due shows of one task: its latest scheduled run, how many runs
    fired (first attempts), and the retries (scheduled ms, attempt) emitted."""

    last_scheduled_ms: int | None = None
    runs: int = 0
    retries: set[tuple[int, int]] = field(default_factory=set)

    def add(self, due: DueTask) -> None:
        if due.attempt > 1:
            self.retries.add((due.scheduled_at_ms, due.attempt))
            return
        self.runs += 1
        if self.last_scheduled_ms is None or due.scheduled_at_ms > self.last_scheduled_ms:
            self.last_scheduled_ms = due.scheduled_at_ms


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
    kept: int = 0
    produced: int = 0
    per_partition: dict[int, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.commands.in_window} commands folded ({self.rejected} not applicable, "
            f"{self.malformed} malformed), {self.firings.in_window} firings read; "
            f"{self.live} live tasks ({self.advanced} moved past runs already fired), "
            f"{self.tombstones} stale changelog keys tombstoned, {self.kept} tasks older than "
            f"the oldest command kept as the changelog has them, {self.produced} records written"
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
                command = decode_command(
                    message.value() or b"", Rules(topic_prefix=settings.topic_prefix)
                )
            except MalformedEvent as exc:
                report.malformed += 1
                log_malformed(log, "command", message, exc)
                continue
            fold.apply(message.partition() or 0, command, message.timestamp()[1])
    report.rejected = fold.rejected
    live = fold.live()

    fired: dict[str, FiredRuns] = {}
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
                continue  # the dispatchers dead-lettered it; it fired nothing
            fired.setdefault(due.task_id, FiredRuns()).add(due)

    rebuilt: dict[Slot, TaskState] = {}
    for slot, state in live.items():
        runs = fired.get(slot[1])
        advanced = advance_past_firings(state, runs) if runs else state
        if advanced is not state:
            report.advanced += 1
        if advanced is not None:
            rebuilt[slot] = advanced
    report.live = len(rebuilt)
    for partition, _ in rebuilt:
        report.per_partition[partition] = report.per_partition.get(partition, 0) + 1

    unrebuilt = changelog_live_records(settings, report.changelog, set(rebuilt), progress=progress)
    stale, kept = merge_with_changelog(unrebuilt, fold.created, fold.oldest_ms)
    report.tombstones = len(stale)
    report.kept = len(kept)
    if kept:
        log.warning(
            "%d live tasks were created before the oldest command kept in tasks.commands: "
            "they cannot be rebuilt and stay as the changelog has them",
            len(kept),
        )
    if not dry_run:
        report.produced = write_changelog(settings, rebuilt, stale)
    return report


def merge_with_changelog(
    unrebuilt: dict[Slot, bytes], created: set[Slot], oldest_ms: dict[int, int]
) -> tuple[set[Slot], set[Slot]]:
    """Of the live changelog records the fold did not rebuild: (to tombstone, to keep).

    Pure. The fold's word is final for a task whose CREATE it saw (it ended).
    A record that claims a creation after the oldest command kept in its
    partition, with no CREATE for it, was never made by a command (a corrupted
    changelog): tombstoned, as is a record that does not decode. Anything
    else predates the commands kept: it cannot be rebuilt, so it is kept.
    """
    stale: set[Slot] = set()
    kept: set[Slot] = set()
    for slot, value in unrebuilt.items():
        if slot in created:
            stale.add(slot)
            continue
        try:
            state = decode_state(value)
        except MalformedEvent:
            stale.add(slot)
            continue
        oldest = oldest_ms.get(slot[0])
        if oldest is not None and state.created_at_ms >= oldest:
            stale.add(slot)
        else:
            kept.add(slot)
    return stale, kept


def changelog_live_records(
    settings: Settings, stats: ScanStats, rebuilt: set[Slot], *, progress: bool
) -> dict[Slot, bytes]:
    """The latest value of every live changelog key (not a tombstone) not in ``rebuilt``."""
    latest: dict[Slot, bytes | None] = {}
    for batch in scan_window(
        settings,
        settings.topic(STATE),
        Window(),
        stats,
        progress=progress,
        purpose="state-changelog",
    ):
        for message in batch:
            slot = _slot(message)
            if slot not in rebuilt:
                latest[slot] = message.value()
    return {slot: value for slot, value in latest.items() if value is not None}


def _slot(message: Message) -> Slot:
    return message.partition() or 0, (message.key() or b"").decode("utf-8", "replace")


def changelog_records(rebuilt: dict[Slot, TaskState], stale: set[Slot]) -> list[HeadedRecord]:
    """What the processors would write: each state with its timer in the header."""
    records: list[HeadedRecord] = []
    for (partition, task_id), state in rebuilt.items():
        due_ms = next_due_ms(state)
        header = b"" if due_ms is None else str(due_ms).encode()
        records.append((partition, task_id.encode(), encode_state(state), [(DUE_HEADER, header)]))
    for partition, task_id in sorted(stale):
        records.append((partition, task_id.encode(), None, [(DUE_HEADER, b"")]))
    return records


def write_changelog(settings: Settings, rebuilt: dict[Slot, TaskState], stale: set[Slot]) -> int:
    return produce_all(settings, settings.topic(STATE), changelog_records(rebuilt, stale))


def refuse_while_processors_run(settings: Settings) -> None:
    """A running processor would write the changelog at the same time: refuse."""
    from streams.ops.dev import dev_holds
    from streams.timewheel import group_id

    if dev_holds(settings.data_dir):  # its processor is in no group (static assignment)
        raise SystemExit(
            f"kronwheel dev is running on {settings.data_dir}: stop it first "
            "(its processor writes tasks.state too), or pass --force"
        )

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
