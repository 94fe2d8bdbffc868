"""The timewheel processor role: tasks.commands -> wheels in local state -> tasks.due.

A consumer group over ``tasks.commands``. Each processor keeps the live tasks of
its partitions in hierarchical timing wheels (:mod:`streams.wheel.partition`)
over a local index (:mod:`streams.wheel.statestore`), backed by the compacted
changelog ``tasks.state``, and writes changelog records, due events and the
consumed offsets in one Kafka transaction per step
(:mod:`streams.wheel.processor` has the loop; ``docs/processor.md`` the design).
"""

from __future__ import annotations

import logging
import signal

from confluent_kafka import KafkaException

from streams.config import Settings
from streams.kafka.transactions import FatalKafkaError
from streams.wheel.processor import Processor, group_id, state_dir, transactional_id

__all__ = ["Processor", "group_id", "run_processor", "state_dir", "transactional_id"]

log = logging.getLogger(__name__)


def run_processor(settings: Settings) -> None:
    processor = Processor(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: processor.stop())
    try:
        processor.run()
    except (FatalKafkaError, KafkaException) as exc:
        # Fenced (another process took this slot) or another fatal error: this
        # process must not write again. Exit non-zero for the supervisor.
        log.error("processor stopped by a fatal Kafka error: %s", exc)
        raise SystemExit(1) from None
