"""Commands in: turn a validated request into a TaskCommand on tasks.commands.

The REST API uses this; other services produce the same Avro TaskCommand
straight to the topic (schemas/task_command.avsc, key = task id as UTF-8).
A command is accepted once the broker has it (acks=all): from then on it is
the processors' job, and nothing the API process does can lose it.
"""

from __future__ import annotations

import logging

from streams.config import Settings
from streams.core.events import CommandKind, TaskCommand
from streams.core.ids import new_command_id, new_task_id
from streams.core.model import TaskSpec
from streams.kafka_io import AsyncProducer
from streams.records import encode_command
from streams.topics import COMMANDS

log = logging.getLogger(__name__)


def create_command(
    spec: TaskSpec, *, tenant: str, issuer: str, now_ms: int, task_id: str | None = None
) -> TaskCommand:
    return TaskCommand(
        command_id=new_command_id(),
        task_id=task_id or new_task_id(),
        tenant=tenant,
        kind=CommandKind.CREATE,
        issued_at_ms=now_ms,
        issuer=issuer,
        spec=spec,
    )


class CommandPublisher:
    """Publishes TaskCommands keyed by task id, so a task's commands stay in order."""

    def __init__(self, settings: Settings, producer: AsyncProducer) -> None:
        self._topic = settings.topic(COMMANDS)
        self._producer = producer

    async def publish(self, command: TaskCommand) -> None:
        message = await self._producer.produce(
            self._topic,
            encode_command(command),
            key=command.task_id.encode(),
            headers=[("kw-schema", b"TaskCommand")],
        )
        log.info(
            "command %s %s task=%s -> %s[%s]@%s",
            command.kind.value,
            command.command_id,
            command.task_id,
            message.topic(),
            message.partition(),
            message.offset(),
        )
